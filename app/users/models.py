"""People and their posts (岗位). A person can hold several posts; each post has a role and scope."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.auth.models import User
from app.auth.rules import ROLES
from app.db import Base

__all__ = ["ROLES", "WORKER_TYPES", "Post", "PostGrid", "User"]

WORKER_TYPES = ("full_time", "part_time", "party_member")


class Post(Base):
    """A role held by a user over a scope: grids (workers, leaders), an area, or a department."""

    __tablename__ = "posts"
    __table_args__ = (
        CheckConstraint(
            "role IN ('grid_worker', 'grid_leader', 'community', 'governance', 'street', "
            "'department', 'centre', 'admin')",
            name="role",
        ),
        CheckConstraint(
            "worker_type IS NULL OR worker_type IN ('full_time', 'part_time', 'party_member')",
            name="worker_type",
        ),
        CheckConstraint(
            "(role IN ('community', 'governance', 'street', 'centre')) = (area_id IS NOT NULL)",
            name="area_scope",
        ),
        CheckConstraint("(role = 'department') = (department_id IS NOT NULL)", name="dept_scope"),
        CheckConstraint("ends_on IS NULL OR ends_on >= starts_on", name="period"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    worker_type: Mapped[str | None] = mapped_column(String(20))
    area_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str | None] = mapped_column(String(100))
    work_phone: Mapped[str | None] = mapped_column(String(40))
    """Work phone: public on the grid's service card by design."""
    starts_on: Mapped[date] = mapped_column(Date, server_default=func.current_date())
    ends_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PostGrid(Base):
    """The grids a grid worker or grid leader serves (the grid staff roster)."""

    __tablename__ = "post_grids"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    grid_id: Mapped[int] = mapped_column(
        ForeignKey("grids.id", ondelete="CASCADE"), primary_key=True, index=True
    )
