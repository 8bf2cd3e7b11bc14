"""Disputes (矛盾纠纷排查化解): screened by grid workers (from patrols, visits or reports),
mediated by the community's mediators in sessions with an outcome, referred to a joint review
meeting (会商研判, a community meeting) when hard, followed up after an agreement (回访), closed
only once the follow-ups hold. Every row carries `district_id` (distributed on it on Citus)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, district_key

KINDS = ("family", "neighbour", "property", "labour", "land", "contract", "other")
RISKS = ("low", "medium", "high")
STATES = ("screened", "mediating", "referred", "follow_up", "closed", "failed")
SOURCES = ("patrol", "visit", "report", "hotline")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        CheckConstraint(_in("kind", KINDS), name="kind"),
        CheckConstraint(_in("risk", RISKS), name="risk"),
        CheckConstraint(_in("status", STATES), name="status"),
        CheckConstraint(_in("source", SOURCES), name="source"),
        Index("ix_disputes_grid", "district_id", "grid_id", "reported_at"),
        Index("ix_disputes_status", "district_id", "status"),
        Index("ix_disputes_case", "district_id", "case_id"),
        Index(
            "uq_disputes_client",
            "district_id",
            "reported_by",
            "client_id",
            unique=True,
            postgresql_where=text("client_id IS NOT NULL"),
        ),
        district_key("case_id", "cases", ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    community_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    grid_id: Mapped[int] = mapped_column(ForeignKey("grids.id"))
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    risk: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), server_default="screened")
    source: Mapped[str] = mapped_column(String(16), server_default="report")
    visit_id: Mapped[int | None] = mapped_column(BigInteger)
    patrol_id: Mapped[int | None] = mapped_column(BigInteger)
    """The patrol the screening report was raised on."""
    case_id: Mapped[int | None] = mapped_column(BigInteger)
    """The case of the 矛盾纠纷 class that carries the dispute on the engine (its number, place,
    timeline, the loop's dispatch, the clock)."""
    reported_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    client_id: Mapped[str | None] = mapped_column(String(64))
    """The phone's id of a report sent from the field app's outbox (a resend finds it)."""
    reported_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=text("now()")
    )
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    """Mediation deadline, in working days by risk (`DUE_DAYS`)."""
    escalated_to: Mapped[str | None] = mapped_column(String(16))
    """'centre' for a high-risk dispute (at once) or one past its deadline."""
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("community_meetings.id"))
    """The joint review meeting it was referred to (会商研判)."""
    agreement: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Party(Base):
    __tablename__ = "dispute_parties"
    __table_args__ = (
        district_key("dispute_id", "disputes", ondelete="CASCADE"),
        Index("ix_dispute_parties_dispute", "district_id", "dispute_id"),
        Index("ix_dispute_parties_resident", "district_id", "resident_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    dispute_id: Mapped[int] = mapped_column(BigInteger)
    resident_id: Mapped[int | None] = mapped_column(BigInteger)
    organisation_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(100))
    """A free name, or the resident's / organisation's at the time."""


class Session(Base):
    __tablename__ = "dispute_sessions"
    __table_args__ = (
        district_key("dispute_id", "disputes", ondelete="CASCADE"),
        CheckConstraint("outcome IN ('agreed', 'continued', 'failed')", name="outcome"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    dispute_id: Mapped[int] = mapped_column(BigInteger)
    mediator_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=text("now()"))
    outcome: Mapped[str] = mapped_column(String(16))
    note: Mapped[str | None] = mapped_column(Text)
    agreement: Mapped[str | None] = mapped_column(Text)
    signed_by: Mapped[str | None] = mapped_column(String(200))


class FollowUp(Base):
    __tablename__ = "dispute_followups"
    __table_args__ = (district_key("dispute_id", "disputes", ondelete="CASCADE"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    dispute_id: Mapped[int] = mapped_column(BigInteger)
    n: Mapped[int] = mapped_column(SmallInteger)
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    done_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    holds: Mapped[bool | None] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    worker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
