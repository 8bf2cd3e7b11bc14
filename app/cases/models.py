"""Cases (事件/案件), their timeline, their photos, and the idempotency keys of intake."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from geoalchemy2 import Geometry
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, district_key

STATUSES = (
    "reported",
    "registered",
    "rejected",
    "whistled",
    "dispatched",
    "signed_in",
    "returned",
    "handling",
    "suspended",
    "feedback",
    "verified",
    "rework",
    "closed",
)
OPEN_STATUSES = tuple(s for s in STATUSES if s not in ("rejected", "closed"))
URGENCIES = ("normal", "urgent", "critical")
CaseChannel = Literal["app", "hotline", "qr", "department", "console"]
CHANNELS: tuple[str, ...] = get_args(CaseChannel)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("status IN (" + ", ".join(f"'{s}'" for s in STATUSES) + ")", name="status"),
        CheckConstraint("urgency IN ('normal', 'urgent', 'critical')", name="urgency"),
        CheckConstraint(
            "channel IN (" + ", ".join(f"'{c}'" for c in CHANNELS) + ")", name="channel"
        ),
        CheckConstraint("duplicate_of IS NULL OR duplicate_of <> id", name="not_own_duplicate"),
        UniqueConstraint("number", "district_id"),
        district_key("duplicate_of", "cases", deferrable=True, initially="IMMEDIATE"),
        Index("ix_cases_location", "location", postgresql_using="gist"),
        Index("ix_cases_change", "change_seq", "id"),
        Index("ix_cases_grid_status", "grid_id", "status"),
        Index("ix_cases_category_reported", "category_code", "reported_at"),
        Index("ix_cases_reporter", "reporter_id", "id"),
        Index("ix_cases_reported", text("reported_at DESC"), text("id DESC")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    number: Mapped[str] = mapped_column(String(24))
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    location = mapped_column(Geometry("POINT", srid=4326, spatial_index=False), nullable=False)
    input_crs: Mapped[str] = mapped_column(String(12), server_default="wgs84")
    accuracy_m: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str | None] = mapped_column(String(300))
    building_id: Mapped[int | None] = mapped_column(ForeignKey("buildings.id", ondelete="SET NULL"))
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    urgency: Mapped[str] = mapped_column(String(10), server_default="normal")
    channel: Mapped[str] = mapped_column(String(12), server_default="app")
    resident_name: Mapped[str | None] = mapped_column(String(100))
    resident_phone: Mapped[str | None] = mapped_column(String(20))
    """Personal data: masked on read unless the caller's role needs it."""
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    prev_grid_id: Mapped[int | None] = mapped_column(BigInteger)
    """The grid the case was in before it was moved (so phones that had it drop it)."""
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    district_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id"), primary_key=True, index=True, server_default=FetchedValue()
    )
    """Never null (a trigger fills it from the place): the future distribution key."""
    boundary_id: Mapped[int | None] = mapped_column(ForeignKey("grid_boundaries.id"))
    unlocated: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    nearest_grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id"))
    nearest_distance_m: Mapped[float | None] = mapped_column(Float)
    off_patch_m: Mapped[float | None] = mapped_column(Float)
    """Set when the reporter is a grid worker reporting this far outside their own grids."""
    evidence_flags: Mapped[list[str]] = mapped_column(
        ARRAY(String(40)), server_default=text("'{}'")
    )
    status: Mapped[str] = mapped_column(String(16), server_default="reported")
    duplicate_of: Mapped[int | None] = mapped_column(BigInteger, index=True)
    lead_department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    first_unit: Mapped[str | None] = mapped_column(String(100))
    """首接负责: the unit that first received the case and stays responsible for coordinating it."""
    rework_count: Mapped[int] = mapped_column(Integer, server_default="0")
    reopen_count: Mapped[int] = mapped_column(Integer, server_default="0")
    satisfaction: Mapped[str | None] = mapped_column(String(20))
    on_spot: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    managed_by: Mapped[str | None] = mapped_column(String(16))
    """The case kind above the loop that carries its own lifecycle on this case (`dispute`), or
    None: the loop's generic actions that would bypass it are refused (`app.cases.managed`)."""
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    change_seq: Mapped[int] = mapped_column(
        BigInteger, server_default=text("sync_number()"), onupdate=text("sync_number()")
    )
    """The transaction that last changed the case, numbered on the coordinator
    (`sync_number()`, migration 0032): the sync cursor orders by it. Every UPDATE sets it."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class CaseEvent(Base):
    """One step on a case's timeline."""

    __tablename__ = "case_events"
    __table_args__ = (
        district_key(
            "case_id", "cases", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"
        ),
        # A case's timeline in order, and its last step (the hash chain's lookup, migration 0025).
        Index("ix_case_events_case_id_id", "case_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    post_id: Mapped[int | None] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(32))
    district_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id"), primary_key=True, server_default=FetchedValue()
    )
    """The case's district (a trigger copies it from the case): the future distribution key."""
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, server_default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    prev_hash: Mapped[str] = mapped_column(Text, server_default=FetchedValue())
    hash: Mapped[str] = mapped_column(Text, server_default=FetchedValue())
    """The case's own hash chain (migration 0018): `case_event_hash` of the row, linking the
    previous step's hash; written by the database, verified by `cases.service.verify_timeline`."""


class Attachment(Base):
    """A photo on a case step, stored once by content hash, served with EXIF stripped."""

    __tablename__ = "attachments"
    __table_args__ = (
        UniqueConstraint("event_id", "sha256", "district_id", name="uq_attachments_event_sha"),
        district_key(
            "case_id", "cases", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"
        ),
        district_key(
            "event_id", "case_events", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger, index=True)
    event_id: Mapped[int] = mapped_column(BigInteger)
    district_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id"), primary_key=True, server_default=FetchedValue()
    )
    """The case's district (a trigger copies it from the case): the future distribution key."""
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(40))
    bytes: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(200))
    taken_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    taken_lon: Mapped[float | None] = mapped_column(Float)
    taken_lat: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class IdempotencyKey(Base):
    """IETF httpapi Idempotency-Key: one request per (user, key); the first response replays."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    method_path: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(12))
    lease_until: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[bytes | None] = mapped_column(LargeBinary)
    result_id: Mapped[int | None] = mapped_column(BigInteger)
    """What the first request created (a case id), written by the same statement: a retry after
    a crash between that statement and the stored response gets it back instead of a copy."""
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )
