"""Dual registration (双报到): in-service party members register with the community where they live
and serve there; and the grid support list (网格支持清单) departments publish for grids."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.community.models import CommunityScoped, one_of
from app.db import Base

SERVICE_STATES = ("claimed", "recorded", "confirmed", "rejected", "withdrawn")


class PartyMember(CommunityScoped, Base):
    """An in-service party member registered with their home community (not an account)."""

    __tablename__ = "party_members"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(50))
    unit_id: Mapped[int | None] = mapped_column(
        ForeignKey("community_units.id", ondelete="SET NULL"), index=True
    )
    """Their work unit when it reported to this community too."""
    work_unit: Mapped[str] = mapped_column(String(200))
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))
    availability: Mapped[str] = mapped_column(String(200), server_default="")
    phone: Mapped[str | None] = mapped_column(String(40))
    registered_on: Mapped[date] = mapped_column(Date, server_default=func.current_date())
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class VolunteerTask(CommunityScoped, Base):
    """A volunteer task the community publishes for registered members to claim."""

    __tablename__ = "volunteer_tasks"
    __table_args__ = (
        one_of("status", ("open", "closed")),
        CheckConstraint("slots >= 1", name="slots"),
        CheckConstraint("hours > 0", name="hours"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    place: Mapped[str] = mapped_column(String(200), server_default="")
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    hours: Mapped[Decimal] = mapped_column(Numeric(5, 1))
    slots: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(8), server_default="open")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Service(CommunityScoped, Base):
    """A member's service: claimed from a task (or recorded directly), confirmed by the community."""

    __tablename__ = "volunteer_services"
    __table_args__ = (
        one_of("status", SERVICE_STATES),
        CheckConstraint("hours IS NULL OR (hours > 0 AND hours <= 24)", name="hours"),
        CheckConstraint(
            "status NOT IN ('recorded', 'confirmed') OR hours IS NOT NULL", name="done_hours"
        ),
        Index(
            "uq_volunteer_services_claim",
            "task_id",
            "member_id",
            unique=True,
            postgresql_where=text("task_id IS NOT NULL AND status <> 'withdrawn'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    member_id: Mapped[int] = mapped_column(
        ForeignKey("party_members.id", ondelete="CASCADE"), index=True
    )
    task_id: Mapped[int | None] = mapped_column(
        ForeignKey("volunteer_tasks.id", ondelete="SET NULL"), index=True
    )
    what: Mapped[str] = mapped_column(String(300))
    place: Mapped[str] = mapped_column(String(200), server_default="")
    served_on: Mapped[date | None] = mapped_column(Date)
    hours: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    status: Mapped[str] = mapped_column(String(10), server_default="claimed")
    confirmed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, server_default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class SupportMeasure(Base):
    """A department's support measure for grids (网格支持清单), linked to case categories."""

    __tablename__ = "grid_support_measures"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="RESTRICT"), index=True
    )
    code: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    category_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(32)), server_default=text("'{}'")
    )
    """Case categories (catalogue codes) the measure helps with."""
    contact: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
