"""Working time in SQL: `work_calendar` (one row per day, 2004–2035) and `work_hours` (the office
periods) mirror the loop's WorkCalendar (chinesecalendar + loaded years, WANGGE_OFFICE_HOURS), so
`stats_wh` / `stats_wh_add` count exactly what app.loop.deadlines counts."""

from __future__ import annotations

from datetime import date, timedelta
from datetime import time as dtime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.loop import deadlines
from app.worktime.calendar import default_calendar

FIRST_YEAR, LAST_YEAR = 2004, 2035


def _secs(t: dtime) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


async def sync_calendar(conn: AsyncConnection) -> int:
    """Rewrite both tables from the calendar in force (not committed); returns the days."""
    deadlines.forget()
    cal = await deadlines.calendar(conn)
    hours = cal.hours
    await conn.execute(text("DELETE FROM work_hours"))
    await conn.execute(
        text("INSERT INTO work_hours VALUES (true, :a, :b, :c, :d)"),
        {
            "a": _secs(hours.morning[0]),
            "b": _secs(hours.morning[1]),
            "c": _secs(hours.afternoon[0]),
            "d": _secs(hours.afternoon[1]),
        },
    )
    base = default_calendar(hours=hours)
    days, flags, base_flags = [], [], []
    d = date(FIRST_YEAR, 1, 1)
    while d.year <= LAST_YEAR:
        days.append(d)
        flags.append(cal.is_workday(d))
        base_flags.append(base.is_workday(d))
        d += timedelta(days=1)
    await conn.execute(text("DELETE FROM work_calendar"))
    await conn.execute(
        text(
            "INSERT INTO work_calendar (day, workday, base_workday) SELECT * FROM "
            "unnest(CAST(:days AS date[]), CAST(:flags AS boolean[]), CAST(:base AS boolean[]))"
        ),
        {"days": days, "flags": flags, "base": base_flags},
    )
    await conn.execute(text("SELECT stats_calendar_cumulate()"))
    return len(days)
