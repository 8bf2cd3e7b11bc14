"""/api/v1/calendar/{year} — the official working-day schedule (调休) deadlines are counted in.

Years chinesecalendar knows are built in; an administrator loads any other year (the State
Council publishes it each November). Until then that year counts plain weekends and every
deadline crossing it is marked provisional; loading the year recomputes those deadlines.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Request
from sqlalchemy import text

from app.audit.service import record
from app.auth.policy import SignedIn, UserAdmin
from app.db import DbSession
from app.errors import ApiError
from app.http import ApiRoute
from app.loop import deadlines
from app.schemas import ResponseModel
from app.worktime.calendar import YearSchedule, builtin_schedule

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"], route_class=ApiRoute)

YearPath = Annotated[int, Path(ge=2000, le=2100)]


class ScheduleOut(ResponseModel):
    year: int
    source: str
    """builtin (chinesecalendar), loaded (by an administrator) or none (weekends only)"""
    provisional: bool
    schedule: dict[str, Any] | None


class LoadResult(ScheduleOut):
    recomputed: int


@router.get("/{year}", response_model=ScheduleOut, summary="A year's holidays and make-up days")
async def get_year(year: YearPath, session: DbSession, who: SignedIn) -> dict[str, Any]:
    loaded = (
        await session.execute(
            text("SELECT schedule FROM work_schedules WHERE year = :y"), {"y": year}
        )
    ).scalar()
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


@router.put(
    "/{year}",
    response_model=LoadResult,
    summary="Load a year's official schedule; recompute provisional deadlines",
)
async def load_year(
    year: YearPath,
    request: Request,
    session: DbSession,
    who: UserAdmin,
    schedule: Annotated[
        dict[str, Any],
        Body(
            description='{"year": 2027, "holidays": '
            '[{"date": "2027-01-01", "name": "元旦"}], '
            '"workdays": ["2027-02-20"]}'
        ),
    ],
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
