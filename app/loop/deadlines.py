"""Deadlines in working time: the official calendar (调休 included) from chinesecalendar, plus any
year an administrator loaded; a year with neither counts plain weekends and is provisional."""

from __future__ import annotations

import time
from datetime import datetime
from datetime import time as dtime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import get_settings
from app.events.outbox import changed
from app.worktime.calendar import (
    Deadline,
    OfficeHours,
    WorkCalendar,
    YearSchedule,
    default_calendar,
)

_cache: tuple[float, WorkCalendar] | None = None
_TTL = 60.0


def forget() -> None:
    """Drop the cached calendar (after a schedule is loaded)."""
    global _cache
    _cache = None


async def calendar(db: AsyncSession | AsyncConnection) -> WorkCalendar:
    """The calendar: builtin schedules overridden by loaded ones (cached a minute per process)."""
    global _cache
    if _cache is not None and _cache[0] > time.monotonic():
        return _cache[1]
    rows = await db.execute(text("SELECT schedule FROM work_schedules ORDER BY year"))
    extra = {}
    for (schedule,) in rows:
        ys = YearSchedule.from_json(schedule)
        extra[ys.year] = ys
    cal = default_calendar(extra, hours=office_hours())
    _cache = (time.monotonic() + _TTL, cal)
    return cal


def office_hours() -> OfficeHours:
    """`WANGGE_OFFICE_HOURS`, e.g. "08:30-12:00,14:30-17:30"."""

    def t(v: str) -> dtime:
        h, m = v.split(":")
        return dtime(int(h), int(m))

    morning, afternoon = get_settings().office_hours.split(",")
    return OfficeHours(
        morning=(t(morning[:5]), t(morning[6:])), afternoon=(t(afternoon[:5]), t(afternoon[6:]))
    )


async def due(
    db: AsyncSession | AsyncConnection, start: datetime, value: float, unit: str
) -> Deadline:
    cal = await calendar(db)
    return cal.deadline(start, value, unit)  # type: ignore[arg-type]


async def extended(
    db: AsyncSession | AsyncConnection, deadline: datetime, value: float, unit: str
) -> Deadline:
    """An approved extension: `value` working hours or days after the old deadline's working
    day (see `WorkCalendar.extend`)."""
    cal = await calendar(db)
    return cal.extend(deadline, value, unit)  # type: ignore[arg-type]


def limit_for(limits: dict[str, Any], urgency: str) -> dict[str, Any]:
    return (
        limits.get(urgency)
        or limits.get("normal")
        or {"sign_in_hours": 2, "handle": 5, "handle_unit": "days"}
    )


_OPEN_PROVISIONAL = text(
    """
    SELECT a.id, a.case_id, a.state, a.dispatched_at, a.sign_in_due, a.signed_in_at,
           a.handle_due, a.limits, c.urgency, a.extension, a.rework_count, a.district_id
    FROM case_assignments a
    LEFT JOIN cases c ON c.id = a.case_id AND c.district_id = a.district_id
    WHERE a.district_id = :d AND a.provisional
      AND a.state IN ('dispatched', 'handling', 'rework', 'suspended')
    FOR UPDATE OF a
    """
)


_DISTRICTS = text("SELECT id FROM areas WHERE level = 'district' ORDER BY id")


async def load_year(session: AsyncSession, ys: YearSchedule, loaded_by: int | None) -> int:
    """Store an official year (not committed) and recompute the provisional deadlines that can
    be recomputed from their start (not extended, reworked or suspended ones). Returns how many."""
    await session.execute(
        text(
            """
        INSERT INTO work_schedules (year, schedule, loaded_by) VALUES (:y, CAST(:s AS jsonb), :by)
        ON CONFLICT (year) DO UPDATE SET schedule = EXCLUDED.schedule,
            loaded_by = EXCLUDED.loaded_by, loaded_at = EXCLUDED.loaded_at
        """
        ),
        {"y": ys.year, "s": orjson.dumps(ys.to_json()).decode(), "by": loaded_by},
    )
    forget()
    cal = await calendar(session)
    recomputed = 0
    touched: list[int] = []
    # District by district: on Citus each is locked on its own shard (a router statement).
    districts = (await session.execute(_DISTRICTS)).scalars().all()
    rows = [a for d in districts for a in await session.execute(_OPEN_PROVISIONAL, {"d": d})]
    for a in rows:
        lim = limit_for(a.limits, a.urgency or "normal")
        sign_in = cal.deadline(a.dispatched_at, float(lim["sign_in_hours"]), "hours")
        values: dict[str, Any] = {
            "id": a.id,
            "sign_in_due": sign_in.at,
            "provisional": sign_in.provisional,
        }
        handle = None
        plain = not a.extension and not a.rework_count and a.state != "suspended"
        if a.signed_in_at is not None and plain:
            handle = cal.deadline(a.signed_in_at, float(lim["handle"]), lim["handle_unit"])
            values["provisional"] = values["provisional"] or handle.provisional
        await session.execute(
            text(
                "UPDATE case_assignments SET sign_in_due = :sign_in_due, provisional = :provisional, "
                "handle_due = coalesce(:handle_due, handle_due) WHERE id = :id AND district_id = :d"
            ),
            {**values, "handle_due": handle.at if handle else None, "d": a.district_id},
        )
        recomputed += 1
        touched.append(a.case_id)
    await changed(session, touched)
    return recomputed
