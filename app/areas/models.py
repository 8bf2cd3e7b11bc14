"""Administrative areas: city → district → street/town → community/village."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

AREA_LEVELS = ("city", "district", "street", "community")
PARENT_LEVEL = {"district": "city", "street": "district", "community": "street"}


class Area(Base):
    __tablename__ = "areas"
    __table_args__ = (
        CheckConstraint("level IN ('city', 'district', 'street', 'community')", name="level"),
        CheckConstraint("code ~ '^[0-9]{12}$'", name="code_format"),
        Index("ix_areas_level", "level"),
        Index("ix_areas_boundary", "boundary", postgresql_using="gist"),
        Index(
            "ix_areas_name_trgm",
            "name",
            postgresql_using="gin",
            postgresql_ops={"name": "gin_trgm_ops"},
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    level: Mapped[str] = mapped_column(String(16))
    code: Mapped[str] = mapped_column(String(12), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("areas.id", ondelete="RESTRICT"), index=True
    )
    boundary = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=True
    )
    address: Mapped[str | None] = mapped_column(Text)
    phone: Mapped[str | None] = mapped_column(String(40))
    service_hours: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
