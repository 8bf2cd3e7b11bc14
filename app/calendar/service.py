"""The official working-day schedule (调休) that deadlines are counted in: a year as the
deadlines see it, and loading a year (which recomputes the provisional deadlines). Takes the
request's session; never commits."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.policy import Principal
from app.errors import ApiError
from app.loop import deadlines
from app.worktime.calendar import YearSchedule, builtin_schedule

_LOADED = text("SELECT schedule FROM work_schedules WHERE year = :y")


async def get_year(session: AsyncSession, year: int) -> dict[str, Any]:
    loaded = (await session.execute(_LOADED, {"y": year})).scalar()
    if loaded is not None:
        return {"year": year, "source": "loaded", "provisional": False, "schedule": loaded}
    builtin = builtin_schedule(year)
    if builtin is not None:
        return {
            "year": year,
            "source": "builtin",
            "provisional": False,
            "schedule": builtin.to_json(),
        }
    return {"year": year, "source": "none", "provisional": True, "schedule": None}


async def load_year(
    session: AsyncSession, request: Request, who: Principal, year: int, schedule: dict[str, Any]
) -> dict[str, Any]:
    try:
        ys = YearSchedule.from_json(schedule)
    except (ValueError, TypeError) as e:
        raise ApiError(
            "validation_error",
            field="schedule",
            detail=f"日程无效：{e}",
            detail_en=f"Invalid schedule: {e}",
        ) from None
    if ys.year != year:
        raise ApiError(
            "validation_error",
            field="year",
            detail="路径中的年份与日程不一致",
            detail_en="The year in the path and in the schedule differ",
        )
    recomputed = await deadlines.load_year(session, ys, who.user_id)
    await record(
        session,
        "calendar_loaded",
        actor=who,
        request=request,
        object_type="calendar",
        object_id=year,
        detail={
            "holidays": len(ys.holidays),
            "workdays": len(ys.workdays),
            "recomputed": recomputed,
        },
    )
    return {
        "year": year,
        "source": "loaded",
        "provisional": False,
        "schedule": ys.to_json(),
        "recomputed": recomputed,
    }
