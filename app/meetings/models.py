"""Joint meetings (联席会议) of a community's big party committee, and the two-way evaluation
(双向评议) of its member units. A meeting's resolutions are tracked tasks (community_tasks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.community.models import CommunityScoped, one_of
from app.db import Base

MEETING_STATES = ("planned", "held")
RATER_LEVELS = ("street", "community", "grid", "resident")
RATINGS = ("excellent", "qualified", "unqualified")


class Meeting(CommunityScoped, Base):
    __tablename__ = "community_meetings"
    __table_args__ = (
        one_of("status", MEETING_STATES),
        CheckConstraint("period ~ '^20[0-9]{2}Q[1-4]$'", name="period"),
        Index("ix_community_meetings_period", "community_id", "period"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    period: Mapped[str] = mapped_column(String(7))
    """The quarter it counts for (from held_at, Asia/Shanghai)."""
    place: Mapped[str] = mapped_column(String(200), server_default="")
    status: Mapped[str] = mapped_column(String(8), server_default="planned")
    attendees: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    """[{unit_id, name, representative}]"""
    topics: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default="[]")
    """[{kind: need|case|matter|other, ref_id, title}]"""
    minutes: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class UnitRating(CommunityScoped, Base):
    """One rater's verdict on a member unit for a period (优秀/合格/不合格)."""

    __tablename__ = "community_unit_ratings"
    __table_args__ = (
        one_of("rater_level", RATER_LEVELS),
        one_of("rating", RATINGS),
        CheckConstraint("period ~ '^20[0-9]{2}(Q[1-4]|H[12]|Y)$'", name="period"),
        UniqueConstraint(
            "unit_id", "period", "rater_level", "rater_name", name="uq_community_unit_ratings_rater"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("community_units.id", ondelete="CASCADE"), index=True
    )
    period: Mapped[str] = mapped_column(String(7))
    rater_level: Mapped[str] = mapped_column(String(10))
    rater_name: Mapped[str] = mapped_column(String(100))
    rating: Mapped[str] = mapped_column(String(12))
    note: Mapped[str] = mapped_column(Text, server_default="")
    rated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
