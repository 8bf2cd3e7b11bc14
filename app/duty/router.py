"""Duty rosters (排班): a community's roster, who is on duty in a grid, one's own duty."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Response, status

from app.auth.policy import DutyManager, DutyReader, OwnWork
from app.auth.scope import districts_of
from app.community.areas import community_of
from app.db import DbSession
from app.duty import service
from app.duty.schemas import DutyRosterIn, DutySlotOut
from app.errors import ApiError, not_found
from app.http import ApiRoute
from app.i18n import request_lang
from app.schemas import IdPath, IdQuery, TimeQuery

router = APIRouter(
    prefix="/api/v1", tags=["duty"], route_class=ApiRoute, dependencies=[Depends(request_lang)]
)


def _now() -> datetime:
    return datetime.now(UTC)


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    since = since or _now() - timedelta(days=1)
    try:
        until = until or since + timedelta(days=14)
    except OverflowError:
        until = since
    if until <= since or until - since > timedelta(days=93):
        raise ApiError(
            "validation_error",
            detail="时间范围须为正且不超过 93 天",
            detail_en="The period must be positive and at most 93 days",
            field="until",
        )
    return since, until


@router.get(
    "/areas/{area_id}/duty",
    response_model=list[DutySlotOut],
    summary="The community's duty roster (排班) over a period (default: from yesterday, 14 days)",
)
async def roster(
    area_id: IdPath,
    session: DbSession,
    who: DutyReader,
    since: TimeQuery = None,
    until: TimeQuery = None,
    grid_id: IdQuery = None,
) -> Any:
    community = await community_of(session, area_id)
    since, until = _window(since, until)
    return await service.list_slots(
        session,
        community.district_id,
        community_id=community.id,
        grid_id=grid_id,
        since=since,
        until=until,
    )


@router.post(
    "/areas/{area_id}/duty",
    response_model=list[DutySlotOut],
    status_code=status.HTTP_201_CREATED,
    summary="Add slots to the roster: workers (full-time, part-time) and party members (双报到)",
    description="All or none: a slot that overlaps another of the same person answers 409 "
    "`duty_overlap`; a person who is not this community's worker or party member answers 422 "
    "`invalid_duty` with the slot's field.",
)
async def add(area_id: IdPath, body: DutyRosterIn, session: DbSession, who: DutyManager) -> Any:
    community = await community_of(session, area_id)
    ids = await service.add_slots(session, community, who, body.slots)
    return await service.list_slots(session, community.district_id, ids=ids)


@router.delete(
    "/areas/{area_id}/duty/{slot_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a slot from the roster",
)
async def remove(
    area_id: IdPath, slot_id: IdPath, session: DbSession, who: DutyManager
) -> Response:
    community = await community_of(session, area_id)
    await service.delete_slot(session, community, slot_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/grids/{grid_id}/on-duty",
    response_model=list[DutySlotOut],
    summary="Who is on duty in the grid at a moment (default: now); full-time workers first",
)
async def on_duty(
    grid_id: IdPath, session: DbSession, who: DutyReader, at: TimeQuery = None
) -> Any:
    row = (await session.execute(service.GRID_DISTRICT, {"id": grid_id})).first()
    if row is None:
        raise not_found("网格", "Grid", grid_id)
    people = await service.on_duty(session, row.district_id, grid_id, at or _now())
    if not people:
        return []
    rows = await service.list_slots(session, row.district_id, ids=[p.slot_id for p in people])
    order = {p.slot_id: i for i, p in enumerate(people)}
    return sorted(rows, key=lambda r: order[r.id])


@router.get(
    "/me/duty",
    response_model=list[DutySlotOut],
    summary="My duty slots over a period (default: from yesterday, 14 days)",
)
async def my_duty(
    session: DbSession, who: OwnWork, since: TimeQuery = None, until: TimeQuery = None
) -> Any:
    since, until = _window(since, until)
    out: list[Any] = []
    for district in await districts_of(session, who):
        out += await service.list_slots(
            session, district, user_id=who.user_id, since=since, until=until
        )
    return out
