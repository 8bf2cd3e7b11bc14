"""Grids (网格) and the history of their boundaries."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

GRID_KINDS = ("city", "rural", "special")


class Grid(Base):
    __tablename__ = "grids"
    __table_args__ = (
        CheckConstraint("kind IN ('city', 'rural', 'special')", name="kind"),
        CheckConstraint("households IS NULL OR households >= 0", name="households"),
        CheckConstraint("population IS NULL OR population >= 0", name="population"),
        Index(
            "ix_grids_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    community_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    households: Mapped[int | None] = mapped_column(Integer)
    population: Mapped[int | None] = mapped_column(Integer)
    derived_households: Mapped[int | None] = mapped_column(Integer)
    """Counted from the base data (app.basedata) when it has any; None: the typed number holds."""
    derived_population: Mapped[int | None] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class GridBoundary(Base):
    """One version of a grid's boundary, valid over [valid_from, valid_to).

    The current version has valid_to NULL. Editing a boundary closes the current version and opens
    a new one, so a lookup `at` a past time finds the grid a point belonged to then.
    """

    __tablename__ = "grid_boundaries"
    __table_args__ = (
        CheckConstraint("valid_to IS NULL OR valid_to > valid_from", name="period"),
        Index(
            "ix_grid_boundaries_current",
            "boundary",
            postgresql_using="gist",
            postgresql_where=text("valid_to IS NULL"),
        ),
        Index("ix_grid_boundaries_all", "boundary", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    boundary = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
    )
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    """Who drew this version (NULL for versions older than migration 0018)."""
