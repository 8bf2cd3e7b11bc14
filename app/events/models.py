"""The outbox: every event of the loop is written in the same transaction as the change it
describes, then fanned out to live consoles (SSE) and to departments' systems (webhooks)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
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


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        district_key(
            "case_id", "cases", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    type: Mapped[str] = mapped_column(String(40), index=True)
    case_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    district_id: Mapped[int] = mapped_column(
        ForeignKey("areas.id"), primary_key=True, server_default=FetchedValue()
    )
    """The case's district (a trigger copies it), or the district a system notice is about."""
    area_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    """The case's community, street and district: who may see the event."""
    department_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'")
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class EventIntent(Base):
    """An event committed with its writer, not yet published (the outbox, migration 0038): a
    deferred trigger completes a case's intent at COMMIT, the relay (`events_publish`) turns it
    into an `events` row with its id and deletes it."""

    __tablename__ = "event_intents"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    """The writer's time: the event's."""
    type: Mapped[str] = mapped_column(String(40))
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    district_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    """No key to `areas` (migration 0026): the table stays a plain table of the Citus
    coordinator, whose trigger is then the events' sequencer."""
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    """For an event not about a case: the grid whose workers see it (a worker's task)."""
    area_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), server_default=text("'{}'"))
    """For an event not about a case: the areas whose staff see it."""
    department_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'")
    )
    """For an event not about a case: the departments that see it (and get its webhooks)."""
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class CaseChange(Base):
    """A case whose evaluation facts are out of date (migration 0025): added by the writer in the
    transaction of the change (`app.events.outbox.changed`), taken out by `stats_catch_up`."""

    __tablename__ = "case_changes"

    district_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger)


class WebhookSubscription(Base):
    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret: Mapped[str] = mapped_column(String(200))
    event_types: Mapped[list[str]] = mapped_column(ARRAY(String(40)), server_default=text("'{}'"))
    """Empty: every event of the department."""
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("delivered_at IS NULL AND NOT gave_up"),
        ),
        district_key(
            "event_id", "events", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(
        ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[int] = mapped_column(BigInteger)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    """The event's district (the distribution key, with the event's)."""
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    gave_up: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
