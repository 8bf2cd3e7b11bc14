"""Open311 integrators' API keys and what an Open311 request adds to its case."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.cases.models import CaseEvent
from app.db import Base, district_key

KEY_CHANNELS = ("hotline", "qr", "department")
"""Intake channels an integrator's key can be tied to (cases.channel)."""


class ApiKey(Base):
    """One integrator's key. Only the SHA-256 of the key is stored; the key is shown once.

    Each key has its own service account (`user_id`, inactive: it can never log in) that reports
    its cases and scopes its Idempotency-Keys."""

    __tablename__ = "open311_keys"
    __table_args__ = (
        CheckConstraint("channel IN ('hotline', 'qr', 'department')", name="channel"),
        Index("uq_open311_keys_builtin", "builtin", unique=True, postgresql_where=text("builtin")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16))
    """The key's first characters, to recognise it in lists (not enough to use it)."""
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    integrator: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(12))
    area_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    """Scope: requests must lie under one of these areas (empty: anywhere)."""
    note: Mapped[str] = mapped_column(Text, server_default="")
    builtin: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """The key the residents' QR form posts with (made on first use, never shown)."""
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), unique=True)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Open311Request(Base):
    """What an Open311 request brings beyond the case: its token, the key it came with, the
    media link (never fetched), the attribute answers and the e-mail (personal data)."""

    __tablename__ = "open311_requests"
    __table_args__ = (
        UniqueConstraint("token", "district_id"),
        district_key(
            "case_id", "cases", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"
        ),
    )

    case_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True, index=True)
    key_id: Mapped[int] = mapped_column(ForeignKey("open311_keys.id"), index=True)
    token: Mapped[uuid.UUID] = mapped_column(Uuid)
    media_url: Mapped[str | None] = mapped_column(String(1000))
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    email: Mapped[str | None] = mapped_column(String(200))
    """Personal data: never in public answers."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


# The update feed (servicerequestupdates) reads the timeline by time: its own index.
Index("ix_case_events_at", CaseEvent.__table__.c.at, CaseEvent.__table__.c.id)
