"""Duty rosters (排班): who is on duty in a community, or in one grid of it, from when to when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

WORKER_TYPES = ("full_time", "part_time", "party_member")


class DutySlot(Base):
    """One person's duty: a worker's account (专职/兼职网格员) or an in-service party member
    registered with the community (双报到, `party_members`). At most 24 hours long."""

    __tablename__ = "duty_slots"
    __table_args__ = (
        CheckConstraint("(user_id IS NULL) <> (party_member_id IS NULL)", name="who"),
        CheckConstraint(
            "worker_type IN ('full_time', 'part_time', 'party_member')", name="worker_type"
        ),
        CheckConstraint(
            "ends_at > starts_at AND ends_at <= starts_at + interval '24 hours'", name="period"
        ),
        Index("ix_duty_slots_community", "district_id", "community_id", "starts_at"),
        Index(
            "ix_duty_slots_user",
            "district_id",
            "user_id",
            "starts_at",
            postgresql_where=sql_text("user_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    """None: on duty for the whole community."""
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    party_member_id: Mapped[int | None] = mapped_column(
        ForeignKey("party_members.id", ondelete="CASCADE")
    )
    worker_type: Mapped[str] = mapped_column(String(20))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
