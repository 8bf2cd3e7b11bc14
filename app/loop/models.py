"""The closed loop (闭环): which departments a case was dispatched to, their deadlines, routing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, district_key

ASSIGNMENT_STATES = (
    "dispatched",
    "returned",
    "handling",
    "suspended",
    "feedback",
    "rework",
    "done",
    "withdrawn",
)


class Assignment(Base):
    """A case dispatched to one department (报到): the lead, or a co-department of joint handling."""

    __tablename__ = "case_assignments"
    __table_args__ = (
        CheckConstraint("role IN ('lead', 'co')", name="role"),
        CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in ASSIGNMENT_STATES) + ")", name="state"
        ),
        Index("ix_case_assignments_queue", "department_id", "state", "sign_in_due"),
        Index(
            "uq_case_assignments_open",
            "case_id",
            "department_id",
            "district_id",
            unique=True,
            postgresql_where=text("state NOT IN ('returned', 'withdrawn', 'done')"),
        ),
        district_key(
            "case_id", "cases", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    district_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id"), primary_key=True, server_default=FetchedValue()
    )
    """The case's district (a trigger copies it from the case): the future distribution key."""
    role: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(12), server_default="dispatched")
    dispatched_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    dispatched_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    limits: Mapped[dict[str, Any]] = mapped_column(JSONB)
    """The category's limits at dispatch time: a later catalogue change does not touch them."""
    sign_in_due: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    signed_in_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    handle_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provisional: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """A deadline crossed a year whose official holiday schedule is not loaded yet."""
    feedback_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    extension: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """A pending or decided extension request: {amount, unit, reason, state, decided_by}."""
    rework_count: Mapped[int] = mapped_column(Integer, server_default="0")
    escalation_level: Mapped[int] = mapped_column(Integer, server_default="0")
    """0 none, 1 the street was told (督办), 2 the centre was told."""
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the street was told: the centre is told `escalate_to_centre_hours` later."""
    note: Mapped[str] = mapped_column(Text, server_default="")
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the scheduler last reminded the department of the running deadline."""


class RoutingRule(Base):
    """Which department leads a category (optionally only in one street: a local agency)."""

    __tablename__ = "routing_rules"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))


class WorkSchedule(Base):
    """An official year's holiday schedule (调休) loaded by an administrator."""

    __tablename__ = "work_schedules"

    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    schedule: Mapped[dict[str, Any]] = mapped_column(JSONB)
    loaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    loaded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
