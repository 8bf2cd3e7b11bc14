"""Tasks for a named person (个人任务): the centre, a street, a community or a department gives a
worker a task with a deadline in working time."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
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

from app.db import Base, district_key

KINDS = ("verification", "callback", "inspection", "meeting_resolution")
STATES = ("pending_approval", "refused", "open", "accepted", "done", "declined", "cancelled")
RUNNING = ("open", "accepted")
ISSUERS = ("admin", "centre", "street", "community", "department", "system")


def _one_of(column: str, values: tuple[str, ...], name: str) -> CheckConstraint:
    return CheckConstraint(f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")", name=name)


class WorkerTask(Base):
    __tablename__ = "worker_tasks"
    __table_args__ = (
        district_key(
            "case_id", "cases", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"
        ),
        _one_of("kind", KINDS, "kind"),
        _one_of("state", STATES, "state"),
        _one_of("issuer_role", ISSUERS, "issuer"),
        CheckConstraint("due_unit IN ('hours', 'days')", name="due_unit"),
        CheckConstraint(
            "state IN ('pending_approval', 'refused') OR due_at IS NOT NULL", name="delivered"
        ),
        CheckConstraint("kind <> 'verification' OR case_id IS NOT NULL", name="case"),
        Index("ix_worker_tasks_worker", "district_id", "worker_id", "state", "due_at"),
        Index("ix_worker_tasks_community", "district_id", "community_id", "state"),
        Index(
            "ix_worker_tasks_running",
            "due_at",
            postgresql_where=text("state IN ('open', 'accepted')"),
        ),
        Index(
            "uq_worker_tasks_verification",
            "case_id",
            "district_id",
            unique=True,
            postgresql_where=text("kind = 'verification' AND state IN ('open', 'accepted')"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    """With the id, the key (a case-side table: the district is in every key, migration 0014)."""
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("community_meetings.id", ondelete="SET NULL")
    )
    issuer_role: Mapped[str] = mapped_column(String(20))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    """The department that pushed it down (the admission list applies)."""
    matter_code: Mapped[str | None] = mapped_column(String(32))
    """The kind of work (an admission item's code) the department named."""
    admission_item_id: Mapped[int | None] = mapped_column(
        ForeignKey("admission_items.id", ondelete="SET NULL")
    )
    outside_list: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    state: Mapped[str] = mapped_column(String(20))
    due_value: Mapped[Decimal] = mapped_column(Numeric(6, 1))
    due_unit: Mapped[str] = mapped_column(String(8))
    starts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    provisional: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    result: Mapped[str] = mapped_column(Text, server_default="")
    reason: Mapped[str] = mapped_column(Text, server_default="")
    """Why the worker declined."""
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision_reason: Mapped[str] = mapped_column(Text, server_default="")
    """Why the street refused a task outside the admission list."""
    escalation_level: Mapped[int] = mapped_column(Integer, server_default="0")
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
