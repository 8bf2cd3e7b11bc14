"""Patrols (巡查), their track points, the coverage lattice, check-in points (打卡点), check-ins
and visits (走访). Every row carries `district_id` (the future distribution key, as on the case
side); rows of one patrol refer to it by `(patrol_id, district_id)`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, district_key

PATROL_STATUSES = ("active", "paused", "ended")
POINT_FLAGS = ("accuracy", "speed", "paused")
SCHEDULES = ("working_day", "weekly")
OUTCOMES = ("done", "not_home", "follow_up", "case_raised")


class Patrol(Base):
    __tablename__ = "patrols"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in PATROL_STATUSES) + ")", name="status"
        ),
        CheckConstraint("ended_at IS NULL OR ended_at >= started_at", name="ends_after_start"),
        Index("ix_patrols_worker_started", "district_id", "worker_id", "started_at"),
        Index("ix_patrols_grid_started", "district_id", "grid_id", "started_at"),
        Index(
            "uq_patrols_worker_client",
            "district_id",
            "worker_id",
            "client_id",
            unique=True,
            postgresql_where=text("client_id IS NOT NULL"),
        ),
        Index("ix_patrols_track", "track", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    client_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    paused_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """Start of the pause in progress."""
    pauses: Mapped[list[Any]] = mapped_column(JSONB, server_default="[]")
    """Closed pauses, [[from, to], ...] (ISO 8601)."""
    paused_s: Mapped[float] = mapped_column(Float, server_default="0")
    """Seconds of the closed pauses."""
    note: Mapped[str | None] = mapped_column(String(500))
    points: Mapped[int] = mapped_column(Integer, server_default="0")
    kept: Mapped[int] = mapped_column(Integer, server_default="0")
    distance_m: Mapped[float] = mapped_column(Float, server_default="0")
    track = mapped_column(Geometry("MULTILINESTRING", srid=4326, spatial_index=False))
    """The kept points as lines (one line per stretch between pauses); outlives the points."""
    track_display = mapped_column(Geometry("MULTILINESTRING", srid=4326, spatial_index=False))
    derived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    dirty: Mapped[bool] = mapped_column(Boolean, server_default="true")
    """Points arrived since the track was derived."""
    purged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    """The points were removed (retention); only the track is left."""
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class PatrolPoint(Base):
    __tablename__ = "patrol_points"
    __table_args__ = (
        district_key("patrol_id", "patrols", ondelete="CASCADE"),
        CheckConstraint("flag IS NULL OR flag IN ('accuracy', 'speed', 'paused')", name="flag"),
        Index(
            "uq_patrol_points_client",
            "district_id",
            "patrol_id",
            "client_id",
            unique=True,
            postgresql_where=text("client_id IS NOT NULL"),
        ),
    )

    district_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patrol_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    client_id: Mapped[str | None] = mapped_column(String(64))
    geom = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    accuracy_m: Mapped[float] = mapped_column(Float)
    speed_mps: Mapped[float | None] = mapped_column(Float)
    input_crs: Mapped[str] = mapped_column(String(10))
    flag: Mapped[str | None] = mapped_column(String(16))
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class PatrolCell(Base):
    """The coverage lattice: square cells (`size_m`) whose centre lies inside the grid."""

    __tablename__ = "patrol_cells"
    __table_args__ = (
        Index("ix_patrol_cells_geom", "geom", postgresql_using="gist"),
        Index("ix_patrol_cells_grid", "grid_id", "district_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"))
    size_m: Mapped[int] = mapped_column(SmallInteger)
    geom = mapped_column(Geometry("POLYGON", srid=4326, spatial_index=False), nullable=False)
    center = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)


class PatrolCellHit(Base):
    """A patrol's kept track passed within `coverage_radius_m` of the cell's centre."""

    __tablename__ = "patrol_cell_hits"
    __table_args__ = (
        district_key("cell_id", "patrol_cells", ondelete="CASCADE"),
        district_key("patrol_id", "patrols", ondelete="CASCADE"),
        Index("ix_patrol_cell_hits_grid_at", "district_id", "grid_id", "at"),
    )

    district_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    cell_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    patrol_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(BigInteger)
    worker_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """When the patrol began (the day the cell was visited)."""


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (
        CheckConstraint("schedule IN ('working_day', 'weekly')", name="schedule"),
        CheckConstraint("schedule <> 'weekly' OR (per_week BETWEEN 1 AND 7)", name="per_week"),
        CheckConstraint("radius_m > 0", name="radius"),
        Index("ix_checkpoints_community", "district_id", "community_id"),
        Index("ix_checkpoints_location", "location", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    name: Mapped[str] = mapped_column(String(100))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    radius_m: Mapped[float] = mapped_column(Float)
    schedule: Mapped[str] = mapped_column(String(16))
    per_week: Mapped[int | None] = mapped_column(SmallInteger)
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class Checkin(Base):
    __tablename__ = "checkins"
    __table_args__ = (
        district_key("checkpoint_id", "checkpoints", ondelete="CASCADE"),
        Index("ix_checkins_checkpoint_at", "district_id", "checkpoint_id", "at"),
        Index("ix_checkins_worker_at", "district_id", "worker_id", "at"),
        Index(
            "uq_checkins_worker_client",
            "district_id",
            "worker_id",
            "client_id",
            unique=True,
            postgresql_where=text("client_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    checkpoint_id: Mapped[int] = mapped_column(BigInteger)
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    patrol_id: Mapped[int | None] = mapped_column(BigInteger)
    client_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    input_crs: Mapped[str] = mapped_column(String(10))
    accuracy_m: Mapped[float] = mapped_column(Float)
    distance_m: Mapped[float] = mapped_column(Float)
    accepted: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )


class VisitPurpose(Base):
    __tablename__ = "visit_purposes"

    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    name_en: Mapped[str] = mapped_column(String(80))
    sort: Mapped[int] = mapped_column(SmallInteger, server_default="0")
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")


class Visit(Base):
    __tablename__ = "visits"
    __table_args__ = (
        CheckConstraint(
            "outcome IN (" + ", ".join(f"'{o}'" for o in OUTCOMES) + ")", name="outcome"
        ),
        Index("ix_visits_building_at", "district_id", "building_id", "at"),
        Index("ix_visits_worker_at", "district_id", "worker_id", "at"),
        Index("ix_visits_household_at", "district_id", "household_id", "at"),
        Index(
            "uq_visits_worker_client",
            "district_id",
            "worker_id",
            "client_id",
            unique=True,
            postgresql_where=text("client_id IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id"))
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    patrol_id: Mapped[int | None] = mapped_column(BigInteger)
    client_id: Mapped[str | None] = mapped_column(String(64))
    purpose_code: Mapped[str] = mapped_column(ForeignKey("visit_purposes.code"))
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    """The case the visit raised (same district)."""
    household_id: Mapped[int | None] = mapped_column(BigInteger)
    """The household visited (base data, same district; optional)."""
    resident_id: Mapped[int | None] = mapped_column(BigInteger)
    """The person visited (base data, same district; optional)."""
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
