"""Dual registration (双报到): party members, volunteer tasks, claims, services, unit reports;
and the grid support list (网格支持清单) at /api/v1/support-measures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.auth.policy import CommunityManager, CommunityReader, SupportPublisher, SupportReader
from app.db import DbSession
from app.errors import not_found
from app.http import ApiRoute
from app.i18n import request_lang
from app.schemas import SHANGHAI, IdPath, IdQuery, LocalDate
from app.volunteers import service
from app.volunteers.schemas import (
    ClaimIn,
    MeasureIn,
    MeasureOut,
    MeasureUpdate,
    MemberIn,
    MemberOut,
    ServiceAction,
    ServiceActionIn,
    ServiceIn,
    ServiceOut,
    ServiceReport,
    ServiceStatus,
    VolunteerTaskIn,
    VolunteerTaskOut,
)

router = APIRouter(
    prefix="/api/v1",
    tags=["dual registration"],
    route_class=ApiRoute,
    dependencies=[Depends(request_lang)],
)


def _now() -> datetime:
    return datetime.now(UTC)


@router.get(
    "/areas/{area_id}/party-members",
    response_model=list[MemberOut],
    summary="In-service party members registered with the community (双报到)",
)
async def list_members(
    area_id: IdPath, session: DbSession, who: CommunityReader, unit_id: IdQuery = None
) -> Any:
    return await service.list_members(session, area_id, unit_id)


@router.post(
    "/areas/{area_id}/party-members",
    response_model=MemberOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register an in-service party member with their home community",
)
async def register_member(
    area_id: IdPath, body: MemberIn, request: Request, session: DbSession, who: CommunityManager
) -> Any:
    c = await service.community_of(session, area_id)
    return await service.register_member(session, c, body, who, request)


@router.get(
    "/areas/{area_id}/volunteer-tasks",
    response_model=list[VolunteerTaskOut],
    summary="Volunteer tasks and how many claimed them",
)
async def list_volunteer_tasks(area_id: IdPath, session: DbSession, who: CommunityReader) -> Any:
    rows = await service.list_tasks(session, await service.communities_under(session, area_id))
    return [dict(r._mapping) for r in rows]


@router.post(
    "/areas/{area_id}/volunteer-tasks",
    response_model=VolunteerTaskOut,
    status_code=status.HTTP_201_CREATED,
    summary="Publish a volunteer task",
)
async def create_volunteer_task(
    area_id: IdPath,
    body: VolunteerTaskIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await service.community_of(session, area_id)
    tid = await service.create_task(session, c, body, who, request)
    return dict((await service.list_tasks(session, [c.id], tid))[0]._mapping)


@router.post(
    "/areas/{area_id}/volunteer-tasks/{volunteer_task_id}/claims",
    response_model=ServiceOut,
    status_code=status.HTTP_201_CREATED,
    summary="A registered member claims a volunteer task",
    responses={409: {"description": "Closed or full, or claimed already"}},
)
async def claim_task(
    area_id: IdPath,
    volunteer_task_id: IdPath,
    body: ClaimIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await service.community_of(session, area_id)
    sid = await service.claim(session, c, volunteer_task_id, body.member_id, who, request)
    return await service.get_service(session, c, sid)


@router.get("/areas/{area_id}/services", response_model=list[ServiceOut], summary="Service records")
async def list_services(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    status_: ServiceStatus | None = Query(None, alias="status"),
    member_id: IdQuery = None,
) -> Any:
    return await service.list_services(session, area_id, status_, member_id)


@router.post(
    "/areas/{area_id}/services",
    response_model=ServiceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Record a member's service done outside a published task",
)
async def record_service(
    area_id: IdPath, body: ServiceIn, request: Request, session: DbSession, who: CommunityManager
) -> Any:
    c = await service.community_of(session, area_id)
    sid = await service.record_service(session, c, body, who, request)
    return await service.get_service(session, c, sid)


@router.post(
    "/areas/{area_id}/services/{service_id}/actions/{action}",
    response_model=ServiceOut,
    summary="Record the hours of a claimed service, confirm or reject it, or withdraw a claim",
    responses={409: {"description": "Not allowed in the service's state; see `allowed_actions`"}},
)
async def service_action(
    area_id: IdPath,
    service_id: IdPath,
    action: ServiceAction,
    body: ServiceActionIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await service.community_of(session, area_id)
    await service.act(session, c, service_id, action, body, who, request, _now())
    return await service.get_service(session, c, service_id)


@router.get(
    "/areas/{area_id}/volunteer-report",
    response_model=ServiceReport,
    summary="Each unit's members and their confirmed service in a period (双报告)",
)
async def volunteer_report(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    since: LocalDate | None = Query(None, description="Default: 90 days before until"),
    until: LocalDate | None = Query(None, description="Default: today"),
    unit_id: IdQuery = None,
) -> Any:
    end = until or datetime.now(SHANGHAI).date()
    start = since or end - timedelta(days=90)
    return await service.report(
        session, await service.communities_under(session, area_id), start, end, unit_id
    )


# --- grid support list ------------------------------------------------------------------------


@router.get(
    "/support-measures",
    response_model=list[MeasureOut],
    summary="The grid support list: departments' measures for grids, by case category",
)
async def list_measures(
    session: DbSession,
    who: SupportReader,
    department_id: IdQuery = None,
    category: str | None = Query(None, max_length=32, description="A case category or class code"),
    q: str | None = Query(None, max_length=50),
) -> Any:
    rows = await service.list_measures(session, department_id=department_id, category=category, q=q)
    return [dict(r._mapping) for r in rows]


@router.post(
    "/support-measures",
    response_model=MeasureOut,
    status_code=status.HTTP_201_CREATED,
    summary="A department publishes a support measure for grids",
)
async def publish_measure(
    body: MeasureIn, request: Request, session: DbSession, who: SupportPublisher, response: Response
) -> Any:
    mid = await service.publish(session, body, who, request)
    response.headers["Location"] = f"/api/v1/support-measures/{mid}"
    return dict((await service.list_measures(session, measure_id=mid, active=None))[0]._mapping)


@router.patch(
    "/support-measures/{measure_id}",
    response_model=MeasureOut,
    summary="Change or withdraw one of the department's measures",
)
async def update_measure(
    measure_id: IdPath,
    body: MeasureUpdate,
    request: Request,
    session: DbSession,
    who: SupportPublisher,
) -> Any:
    await service.update_measure(session, measure_id, body, who, request)
    rows = await service.list_measures(session, measure_id=measure_id, active=None)
    if not rows:
        raise not_found("支持举措", "Measure", measure_id)
    return dict(rows[0]._mapping)
