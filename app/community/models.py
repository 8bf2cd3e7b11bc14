"""What the community mechanisms share: co-building units (共建单位, some of them members of the
big party committee), one timeline of steps for every community object, and tracked tasks (from a
joint meeting's resolutions, a project, or a deliberated matter) with working-time deadlines."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


def one_of(column: str, values: tuple[str, ...], name: str | None = None) -> CheckConstraint:
    """A check constraint: `column` takes one of `values` (states, kinds, categories)."""
    return CheckConstraint(
        f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")", name=name or column
    )


class CommunityScoped:
    """Every community table carries its district and its community (areas)."""

    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id", ondelete="RESTRICT"))
    community_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )


UNIT_KINDS = (
    "party_org",
    "government",
    "public_institution",
    "enterprise",
    "property",
    "owners_committee",
    "social_org",
    "other",
)


class Unit(CommunityScoped, Base):
    """A co-building unit (共建单位) of a community; members sit on the big party committee."""

    __tablename__ = "community_units"
    __table_args__ = (
        one_of("kind", UNIT_KINDS),
        UniqueConstraint("community_id", "name", name="uq_community_units_name"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(24))
    department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    is_member: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """A member unit of the community's big party committee (社区大党委成员单位)."""
    representative: Mapped[str | None] = mapped_column(String(100))
    duties: Mapped[str | None] = mapped_column(Text)
    contact: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    dual_registered_on: Mapped[date | None] = mapped_column(Date)
    """The unit's party organisation reported to the community (双报到)."""
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


STEP_OBJECTS = (
    "unit",
    "need",
    "resource",
    "project",
    "review",
    "meeting",
    "task",
    "rating",
    "matter",
    "member",
    "volunteer_task",
    "service",
)


class Step(CommunityScoped, Base):
    """One step of a community object's timeline: who did what, when."""

    __tablename__ = "community_steps"
    __table_args__ = (
        one_of("object_type", STEP_OBJECTS),
        Index("ix_community_steps_object", "object_type", "object_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    object_type: Mapped[str] = mapped_column(String(20))
    object_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(40))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor: Mapped[str | None] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, server_default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


TASK_SOURCES = ("meeting", "project", "matter")
TASK_STATES = ("open", "done", "cancelled")


class Task(CommunityScoped, Base):
    """A tracked task: a resolution's task, a project's task or a deliberated matter's execution,
    with a responsible unit and a deadline in working days; the clock reminds and escalates."""

    __tablename__ = "community_tasks"
    __table_args__ = (
        one_of("source", TASK_SOURCES),
        one_of("state", TASK_STATES),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
        CheckConstraint("due_days >= 0", name="due_days"),
        CheckConstraint(
            "(source = 'meeting') = (meeting_id IS NOT NULL) "
            "AND (source = 'project') = (project_id IS NOT NULL) "
            "AND (source = 'matter') = (matter_id IS NOT NULL)",
            name="source_ref",
        ),
        Index("ix_community_tasks_running", "state", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    source: Mapped[str] = mapped_column(String(10))
    meeting_id: Mapped[int | None] = mapped_column(
        ForeignKey("community_meetings.id", ondelete="CASCADE"), index=True
    )
    project_id: Mapped[int | None] = mapped_column(
        ForeignKey("community_projects.id", ondelete="CASCADE"), index=True
    )
    matter_id: Mapped[int | None] = mapped_column(
        ForeignKey("community_matters.id", ondelete="CASCADE"), index=True
    )
    title: Mapped[str] = mapped_column(String(300))
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("community_units.id", ondelete="RESTRICT"), index=True
    )
    due_days: Mapped[int] = mapped_column(Integer)
    """The limit in working days, counted from the task's start."""
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    provisional: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    state: Mapped[str] = mapped_column(String(10), server_default="open")
    progress: Mapped[int] = mapped_column(Integer, server_default="0")
    progress_note: Mapped[str] = mapped_column(Text, server_default="")
    escalation_level: Mapped[int] = mapped_column(Integer, server_default="0")
    """0 none, 1 the street was told (督办), 2 the centre was told."""
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """When the street was told; the centre is told `escalate_to_centre_hours` after it."""
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
