"""Buildings (楼栋): the nodes of a grid."""

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
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Building(Base):
    __tablename__ = "buildings"
    __table_args__ = (
        CheckConstraint("households >= 0", name="households"),
        CheckConstraint("units >= 0", name="units"),
        Index("ix_buildings_geom", "geom", postgresql_using="gist"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(200))
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    units: Mapped[int] = mapped_column(Integer, server_default="0")
    derived_households: Mapped[int | None] = mapped_column(Integer)
    """Counted from the base data (app.basedata) when it has any; None: the typed number holds."""
    geom = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
