"""The three lists (三张清单): residents' needs, co-building units' resources, and the projects that
match them; a quarterly review keeps an immutable snapshot of what each list held."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.community.models import CommunityScoped, one_of
from app.db import Base

NEED_CATEGORIES = (
    "elderly",
    "children",
    "disability",
    "environment",
    "facilities",
    "safety",
    "parking",
    "culture",
    "health",
    "employment",
    "legal",
    "other",
)
URGENCIES = ("low", "normal", "high")
NEED_SOURCES = ("grid_visit", "case", "meeting", "proposal", "hotline", "other")
NEED_STATES = ("open", "matched", "done", "closed")
RESOURCE_KINDS = ("money", "venue", "volunteers", "skills", "equipment")
PROJECT_STATES = ("planned", "in_progress", "done", "cancelled")
RATINGS = ("excellent", "qualified", "unqualified")


class Need(CommunityScoped, Base):
    """需求清单: a need of residents, collected in a grid or grown out of recurring cases."""

    __tablename__ = "community_needs"
    __table_args__ = (
        one_of("category", NEED_CATEGORIES),
        one_of("urgency", URGENCIES),
        one_of("source", NEED_SOURCES),
        one_of("status", NEED_STATES),
        CheckConstraint("households >= 0", name="households"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    category: Mapped[str] = mapped_column(String(16))
    households: Mapped[int] = mapped_column(Integer)
    urgency: Mapped[str] = mapped_column(String(8), server_default="normal")
    source: Mapped[str] = mapped_column(String(12))
    case_category: Mapped[str | None] = mapped_column(
        ForeignKey("categories.code", ondelete="SET NULL")
    )
    """The case category a recurring-case need grew out of."""
    case_count: Mapped[int | None] = mapped_column(Integer)
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    status: Mapped[str] = mapped_column(String(8), server_default="open")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Resource(CommunityScoped, Base):
    """资源清单: what a co-building unit offers, for a period."""

    __tablename__ = "community_resources"
    __table_args__ = (
        one_of("kind", RESOURCE_KINDS),
        CheckConstraint("valid_until IS NULL OR valid_until >= valid_from", name="validity"),
        CheckConstraint("amount IS NULL OR amount >= 0", name="amount"),
        CheckConstraint("capacity IS NULL OR capacity >= 0", name="capacity"),
        Index("ix_community_resources_district_id", "district_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("community_units.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(12))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    """Money in yuan."""
    capacity: Mapped[int | None] = mapped_column(Integer)
    """People, seats, hours or items, as `measure` says."""
    measure: Mapped[str | None] = mapped_column(String(20))
    categories: Mapped[list[str]] = mapped_column(ARRAY(String(16)), server_default=text("'{}'"))
    """The need categories it can serve."""
    contact: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Project(CommunityScoped, Base):
    """项目清单: a need matched with resources, led by one unit with others taking part."""

    __tablename__ = "community_projects"
    __table_args__ = (
        one_of("status", PROJECT_STATES),
        one_of("evaluation", RATINGS),
        CheckConstraint("progress BETWEEN 0 AND 100", name="progress"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    need_id: Mapped[int] = mapped_column(
        ForeignKey("community_needs.id", ondelete="RESTRICT"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    lead_unit_id: Mapped[int] = mapped_column(ForeignKey("community_units.id", ondelete="RESTRICT"))
    status: Mapped[str] = mapped_column(String(12), server_default="planned")
    progress: Mapped[int] = mapped_column(Integer, server_default="0")
    due_on: Mapped[date | None] = mapped_column(Date)
    evaluation: Mapped[str | None] = mapped_column(String(12))
    """Completion evaluation (优秀/合格/不合格)."""
    evaluation_note: Mapped[str | None] = mapped_column(Text)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class ProjectResource(CommunityScoped, Base):
    __tablename__ = "community_project_resources"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("community_projects.id", ondelete="CASCADE"), primary_key=True
    )
    resource_id: Mapped[int] = mapped_column(
        ForeignKey("community_resources.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class ProjectUnit(CommunityScoped, Base):
    """A unit taking part in a project (the lead unit is on the project itself)."""

    __tablename__ = "community_project_units"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("community_projects.id", ondelete="CASCADE"), primary_key=True
    )
    unit_id: Mapped[int] = mapped_column(
        ForeignKey("community_units.id", ondelete="RESTRICT"), primary_key=True, index=True
    )


class ListReview(CommunityScoped, Base):
    """A quarterly review of the three lists: what each held then. Rows cannot change (trigger)."""

    __tablename__ = "community_list_reviews"
    __table_args__ = (
        UniqueConstraint("community_id", "period", name="uq_community_list_reviews_period"),
        CheckConstraint("period ~ '^20[0-9]{2}Q[1-4]$'", name="period"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    period: Mapped[str] = mapped_column(String(7))
    note: Mapped[str] = mapped_column(Text, server_default="")
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB)
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONB)
    reviewed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
