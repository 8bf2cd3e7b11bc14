"""Deadlines in working time: the official calendar (调休 included) from chinesecalendar, plus any
year an administrator loaded; a year with neither counts plain weekends and is provisional."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.worktime.calendar import Deadline, WorkCalendar, YearSchedule, default_calendar

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
    cal = default_calendar(extra)
    _cache = (time.monotonic() + _TTL, cal)
    return cal


async def due(
    db: AsyncSession | AsyncConnection, start: datetime, value: float, unit: str
) -> Deadline:
    cal = await calendar(db)
    return cal.deadline(start, value, unit)  # type: ignore[arg-type]


def limit_for(limits: dict[str, Any], urgency: str) -> dict[str, Any]:
    return (
        limits.get(urgency)
        or limits.get("normal")
        or {"sign_in_hours": 2, "handle": 5, "handle_unit": "days"}
    )
