"""/api/v1/calendar/{year} — the official working-day schedule (调休) deadlines are counted in.

Years chinesecalendar knows are built in; an administrator loads any other year (the State
Council publishes it each November). Until then that year counts plain weekends and every
deadline crossing it is marked provisional; loading the year recomputes those deadlines.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request

from app.auth.policy import SignedIn, UserAdmin
from app.calendar import service
from app.calendar.schemas import LoadResult, ScheduleOut, YearPath
from app.db import DbSession
from app.http import ApiRoute

router = APIRouter(prefix="/api/v1/calendar", tags=["calendar"], route_class=ApiRoute)


@router.get("/{year}", response_model=ScheduleOut, summary="A year's holidays and make-up days")
async def get_year(year: YearPath, session: DbSession, who: SignedIn) -> dict[str, Any]:
    return await service.get_year(session, year)


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
    return await service.load_year(session, request, who, year, schedule)
