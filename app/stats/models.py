"""Evaluation tables (migration 0007). The fact tables are written only by database triggers
(from the views `stats_case_facts_v` / `stats_dept_facts_v`); the models describe them for
Alembic's comparison and for readers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, district_key

TS = DateTime(timezone=True)


class WorkHours(Base):
    """The office periods in seconds after midnight (one row), for working hours in SQL."""

    __tablename__ = "work_hours"

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    morning_start: Mapped[float] = mapped_column(Float)
    morning_end: Mapped[float] = mapped_column(Float)
    afternoon_start: Mapped[float] = mapped_column(Float)
    afternoon_end: Mapped[float] = mapped_column(Float)


class WorkCalendarDay(Base):
    """One day of the official calendar: working day? and the office hours before it."""

    __tablename__ = "work_calendar"
    __table_args__ = (
        Index("ix_work_calendar_wh_before", "wh_before", postgresql_where=text("workday")),
    )

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    workday: Mapped[bool] = mapped_column(Boolean)
    base_workday: Mapped[bool] = mapped_column(Boolean)
    """The built-in schedule's answer (chinesecalendar, else plain weekends): restored when a
    loaded year is deleted."""
    wh_before: Mapped[float] = mapped_column(Float, server_default="0")


class CaseFact(Base):
    __tablename__ = "stats_case_facts"
    __table_args__ = (
        Index("ix_stats_case_facts_reported_at", "reported_at"),
        Index("ix_stats_case_facts_street_id_reported_at", "street_id", "reported_at"),
        Index("ix_stats_case_facts_community_id_reported_at", "community_id", "reported_at"),
        Index("ix_stats_case_facts_grid_id_reported_at", "grid_id", "reported_at"),
        Index("ix_stats_case_facts_reporter_id_reported_at", "reporter_id", "reported_at"),
        # Checked at each statement (migration 0037; deferred only while a case moves to
        # another district, until a catch-up has rebuilt its facts), not cascaded on update.
        district_key("id", "cases", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("areas.id"), primary_key=True)
    street_id: Mapped[int | None] = mapped_column(BigInteger)
    community_id: Mapped[int | None] = mapped_column(BigInteger)
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    reporter_id: Mapped[int | None] = mapped_column(BigInteger)
    category_code: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(12))
    urgency: Mapped[str | None] = mapped_column(String(10))
    reported_at: Mapped[datetime | None] = mapped_column(TS)
    closed_at: Mapped[datetime | None] = mapped_column(TS)
    status: Mapped[str | None] = mapped_column(String(16))
    on_spot: Mapped[bool | None] = mapped_column(Boolean)
    rework_count: Mapped[int | None] = mapped_column(Integer)
    reopen_count: Mapped[int | None] = mapped_column(Integer)
    satisfaction: Mapped[str | None] = mapped_column(String(20))
    lead_department_id: Mapped[int | None] = mapped_column(BigInteger)
    accepted: Mapped[bool | None] = mapped_column(Boolean)
    dispatched: Mapped[bool | None] = mapped_column(Boolean)
    returned: Mapped[bool | None] = mapped_column(Boolean)
    handed_in: Mapped[bool | None] = mapped_column(Boolean)
    next_due: Mapped[datetime | None] = mapped_column(TS)
    lead_state: Mapped[str | None] = mapped_column(String(12))
    lead_dispatched_at: Mapped[datetime | None] = mapped_column(TS)
    lead_sign_in_due: Mapped[datetime | None] = mapped_column(TS)
    lead_signed_in_at: Mapped[datetime | None] = mapped_column(TS)
    lead_handle_due: Mapped[datetime | None] = mapped_column(TS)
    lead_feedback_at: Mapped[datetime | None] = mapped_column(TS)
    sign_in_wh: Mapped[float | None] = mapped_column(Float)
    close_wh: Mapped[float | None] = mapped_column(Float)


class DeptFact(Base):
    __tablename__ = "stats_dept_facts"
    __table_args__ = (
        Index("ix_stats_dept_facts_department_id_reported_at", "department_id", "reported_at"),
        Index("ix_stats_dept_facts_reported_at", "reported_at"),
        district_key("id", "cases", ondelete="CASCADE", deferrable=True, initially="IMMEDIATE"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    department_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("areas.id"), primary_key=True)
    street_id: Mapped[int | None] = mapped_column(BigInteger)
    community_id: Mapped[int | None] = mapped_column(BigInteger)
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    reporter_id: Mapped[int | None] = mapped_column(BigInteger)
    category_code: Mapped[str | None] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(12))
    reported_at: Mapped[datetime | None] = mapped_column(TS)
    case_status: Mapped[str | None] = mapped_column(String(16))
    satisfaction: Mapped[str | None] = mapped_column(String(20))
    assignment_id: Mapped[int | None] = mapped_column(BigInteger)
    role: Mapped[str | None] = mapped_column(String(8))
    state: Mapped[str | None] = mapped_column(String(12))
    dispatched_at: Mapped[datetime | None] = mapped_column(TS)
    sign_in_due: Mapped[datetime | None] = mapped_column(TS)
    signed_in_at: Mapped[datetime | None] = mapped_column(TS)
    handle_due: Mapped[datetime | None] = mapped_column(TS)
    feedback_at: Mapped[datetime | None] = mapped_column(TS)
    rework_count: Mapped[int | None] = mapped_column(Integer)
    returned: Mapped[bool | None] = mapped_column(Boolean)
    sign_in_wh: Mapped[float | None] = mapped_column(Float)
    handle_wh: Mapped[float | None] = mapped_column(Float)
    close_wh: Mapped[float | None] = mapped_column(Float)


class Thresholds(Base):
    """Rating thresholds and weights (one row; defaults in app.stats.service)."""

    __tablename__ = "stats_thresholds"

    id: Mapped[bool] = mapped_column(Boolean, primary_key=True, server_default=text("true"))
    config: Mapped[dict[str, Any]] = mapped_column(JSONB)
    updated_by: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(TS, server_default=func.now())


# --- the monthly rollups and the indexes the figures read (built like migration 0007) ----------

_SCOPE = ("reported_at", "district_id", "street_id", "community_id", "grid_id", "reporter_id")


def _rollup(name: str, keys: tuple[str, ...], durations: tuple[str, ...]) -> Table:
    from app.stats.definitions import MEASURES

    cols: list[Any] = [Column("month", Date, nullable=False)]
    for k in keys:
        fk = [ForeignKey("areas.id")] if k == "district_id" else []
        cols.append(Column(k, BigInteger, *fk))
    cols += [Column(m, Integer, nullable=False, server_default="0") for m in MEASURES]
    for d in durations:
        cols += [
            Column(f"{d}_n", Integer, nullable=False, server_default="0"),
            Column(f"{d}_sum", Numeric, nullable=False, server_default="0"),
        ]
    return Table(
        name,
        Base.metadata,
        *cols,
        Index(f"ix_{name}_month", "month"),
    )


CaseMonthly = _rollup(
    "stats_case_monthly",
    ("district_id", "street_id", "community_id", "grid_id", "reporter_id"),
    ("sign_in_wh", "close_wh"),
)
DeptMonthly = _rollup(
    "stats_dept_monthly",
    ("department_id", "district_id", "street_id", "community_id", "grid_id", "reporter_id"),
    ("sign_in_wh", "handle_wh", "close_wh"),
)
for _name, _table, _units, _durs in (
    ("stats_case_facts", CaseFact.__table__, ("district_id", "street_id", "community_id", "grid_id", "reporter_id"),
     ("sign_in_wh", "close_wh")),
    ("stats_dept_facts", DeptFact.__table__, ("department_id",), ("sign_in_wh", "handle_wh", "close_wh")),
):  # fmt: skip
    for _unit in _units:
        for _d in _durs:
            Index(
                f"ix_{_name}_{_unit}_{_d}",
                _table.c[_unit],
                _table.c[_d],
                postgresql_include=[c for c in _SCOPE if c != _unit],
            )
Index(
    "ix_stats_case_facts_open",
    CaseFact.__table__.c.reported_at,
    postgresql_where=text("next_due IS NOT NULL"),
)
Index(
    "ix_stats_dept_facts_open",
    DeptFact.__table__.c.department_id,
    DeptFact.__table__.c.reported_at,
    postgresql_where=text("state IN ('dispatched', 'handling', 'rework')"),
)


HotspotMonthly = Table(
    "stats_hotspot_monthly",
    Base.metadata,
    Column("month", Date, nullable=False),
    Column("district_id", BigInteger, ForeignKey("areas.id")),
    Column("street_id", BigInteger),
    Column("community_id", BigInteger),
    Column("grid_id", BigInteger),
    Column("reporter_id", BigInteger),
    Column("category_code", String(16)),
    Column("received", Integer, nullable=False, server_default="0"),
    Index("ix_stats_hotspot_monthly_month", "month"),
)
