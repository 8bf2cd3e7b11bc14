"""/api/v1/areas/{area_id}/meetings, /unit-ratings, /evaluations/summary — the big party
committee's joint meetings (联席会议), resolutions as tracked tasks, 述职 reports, and the two-way
evaluation (双向评议) of member units."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.auth.policy import CommunityManager, CommunityRater, CommunityReader
from app.community.schemas import PERIOD_PATTERN
from app.db import DbSession
from app.http import ApiRoute
from app.i18n import request_lang
from app.meetings import service
from app.meetings.schemas import (
    EvaluationSummary,
    HoldIn,
    MeetingCoverage,
    MeetingDetail,
    MeetingIn,
    MeetingOut,
    MeetingReport,
    RatingIn,
    RatingOut,
    ResolutionsIn,
)
from app.responses import json_response
from app.schemas import IdPath, IdQuery

router = APIRouter(
    prefix="/api/v1/areas",
    tags=["community meetings"],
    route_class=ApiRoute,
    dependencies=[Depends(request_lang)],
)


def _now() -> datetime:
    return datetime.now(UTC)


async def _detail(session: DbSession, communities: list[int], meeting_id: int) -> dict[str, Any]:
    return await service.meeting_detail(session, communities, meeting_id, _now())


@router.get("/{area_id}/meetings", response_model=list[MeetingOut], summary="Joint meetings")
async def list_meetings(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    period: str | None = Query(None, pattern=PERIOD_PATTERN),
) -> Any:
    return await service.list_meetings(session, area_id, period)


@router.post(
    "/{area_id}/meetings",
    response_model=MeetingDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Plan (or record) a joint meeting: attendees, topics from needs, cases and matters",
)
async def create_meeting(
    area_id: IdPath,
    body: MeetingIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    response: Response,
) -> Any:
    c = await service.community_of(session, area_id)
    mid = await service.create_meeting(session, c, body, who, request, _now())
    response.headers["Location"] = f"/api/v1/areas/{c.id}/meetings/{mid}"
    return await _detail(session, [c.id], mid)


@router.get(
    "/{area_id}/meetings/coverage",
    response_model=MeetingCoverage,
    summary="Quarters each community's big party committee met in (and those it missed)",
)
async def meeting_coverage(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    year: int = Query(description="e.g. 2026", ge=2000, le=2100),
) -> Any:
    communities = await service.communities_under(session, area_id)
    return await service.coverage(session, communities, year, service.quarter(_now()))


@router.get(
    "/{area_id}/meetings/{meeting_id}",
    response_model=MeetingDetail,
    summary="A meeting: minutes, resolutions (tasks), timeline",
)
async def get_meeting(
    area_id: IdPath, meeting_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    return await _detail(session, await service.communities_under(session, area_id), meeting_id)


@router.post(
    "/{area_id}/meetings/{meeting_id}/actions/hold",
    response_model=MeetingDetail,
    summary="Record that a planned meeting was held, with its minutes",
    responses={409: {"description": "Not allowed in the meeting's state"}},
)
async def hold_meeting(
    area_id: IdPath,
    meeting_id: IdPath,
    body: HoldIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await service.community_of(session, area_id)
    await service.hold(
        session, c, meeting_id, body.minutes, body.attendee_unit_ids, who, request, _now()
    )
    return await _detail(session, [c.id], meeting_id)


@router.post(
    "/{area_id}/meetings/{meeting_id}/resolutions",
    response_model=MeetingDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Record resolutions (task, responsible unit, deadline in working days): tracked tasks",
    responses={409: {"description": "The meeting has not been held"}},
)
async def add_resolutions(
    area_id: IdPath,
    meeting_id: IdPath,
    body: ResolutionsIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await service.community_of(session, area_id)
    await service.resolve(session, c, meeting_id, body.resolutions, who, request, _now())
    return await _detail(session, [c.id], meeting_id)


@router.get(
    "/{area_id}/meetings/{meeting_id}/report",
    response_model=MeetingReport,
    summary="The 述职 report of each member unit for this meeting, prepared from the record",
)
async def meeting_report(
    area_id: IdPath, meeting_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    communities = await service.communities_under(session, area_id)
    m = await service.get_meeting(session, communities, meeting_id)
    return json_response(MeetingReport, await service.report(session, m.community_id, m))


@router.get(
    "/{area_id}/unit-ratings", response_model=list[RatingOut], summary="Two-way evaluation ratings"
)
async def list_ratings(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    period: str | None = Query(None, pattern=r"^20[0-9]{2}(Q[1-4]|H[12]|Y)$"),
    unit_id: IdQuery = None,
) -> Any:
    return await service.list_ratings(session, area_id, period, unit_id)


@router.post(
    "/{area_id}/unit-ratings",
    response_model=RatingOut,
    status_code=status.HTTP_201_CREATED,
    summary="Rate a member unit for a period (优秀/合格/不合格); a rater's later rating replaces theirs",
)
async def rate_unit(
    area_id: IdPath, body: RatingIn, request: Request, session: DbSession, who: CommunityRater
) -> Any:
    return await service.rate_unit(session, area_id, body, who, request)


@router.get(
    "/{area_id}/evaluations/summary",
    response_model=EvaluationSummary,
    summary="Two-way evaluation per member unit for a period (for the evaluation figures)",
)
async def evaluation_summary(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    period: str = Query(pattern=r"^20[0-9]{2}(Q[1-4]|H[12]|Y)$"),
) -> Any:
    return await service.summary(session, await service.communities_under(session, area_id), period)
