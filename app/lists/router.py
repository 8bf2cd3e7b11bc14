"""The three lists (三张清单) of a community: needs, resources, projects, quarterly reviews.

Under `/api/v1/areas/{area_id}/…` (community staff; street, centre and admin read every community
below their area) and `/api/v1/grids/{grid_id}/needs` (grid workers collect needs in their grids)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.auth.policy import CommunityCollector, CommunityManager, CommunityReader
from app.community.schemas import TaskIn
from app.db import DbSession
from app.http import ApiRoute
from app.i18n import request_lang
from app.lists import service
from app.lists.schemas import (
    CaseCandidate,
    CloseIn,
    MatchOut,
    NeedCategory,
    NeedDetail,
    NeedFromCases,
    NeedIn,
    NeedOut,
    NeedStatus,
    ProjectAction,
    ProjectDetail,
    ProjectIn,
    ProjectOut,
    ProjectStatus,
    ResourceIn,
    ResourceKind,
    ResourceOut,
    ReviewDetail,
    ReviewIn,
    ReviewOut,
)
from app.responses import json_response
from app.schemas import SHANGHAI, IdPath, IdQuery

router = APIRouter(
    prefix="/api/v1",
    tags=["community lists"],
    route_class=ApiRoute,
    dependencies=[Depends(request_lang)],
)


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return datetime.now(SHANGHAI).date()


# --- needs ------------------------------------------------------------------------------------


@router.get("/areas/{area_id}/needs", response_model=list[NeedOut], summary="The needs list")
async def list_needs(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    status_: NeedStatus | None = Query(None, alias="status"),
    category: NeedCategory | None = None,
    grid_id: IdQuery = None,
    unmatched: bool | None = Query(None, description="Open needs with no project yet"),
) -> Any:
    rows = await service.list_needs(
        session,
        area_id,
        status=status_,
        category=category,
        grid_id=grid_id,
        unmatched=unmatched,
    )
    return json_response(list[NeedOut], [dict(r._mapping) for r in rows])


@router.post(
    "/areas/{area_id}/needs",
    response_model=NeedDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Add a need to the list",
)
async def create_need(
    area_id: IdPath,
    body: NeedIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    response: Response,
) -> Any:
    need = await service.create_need(session, area_id, body, who, request)
    response.headers["Location"] = f"/api/v1/areas/{need['community_id']}/needs/{need['id']}"
    return need


@router.get(
    "/areas/{area_id}/needs/case-candidates",
    response_model=list[CaseCandidate],
    summary="Case types that keep recurring in the community (candidates for the needs list)",
)
async def case_candidates(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    days: int = Query(90, ge=7, le=730),
    min_cases: int = Query(3, ge=2, le=1000),
) -> Any:
    return await service.case_candidates(session, area_id, days, min_cases, _now())


@router.post(
    "/areas/{area_id}/needs/from-cases",
    response_model=NeedDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Turn a recurring case type into a need",
)
async def need_from_cases(
    area_id: IdPath,
    body: NeedFromCases,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    response: Response,
) -> Any:
    need = await service.need_from_cases(session, area_id, body, who, request, _now())
    response.headers["Location"] = f"/api/v1/areas/{need['community_id']}/needs/{need['id']}"
    return need


@router.get("/areas/{area_id}/needs/{need_id}", response_model=NeedDetail, summary="A need")
async def get_need(
    area_id: IdPath, need_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    return await service.get_need(session, area_id, need_id)


@router.post(
    "/areas/{area_id}/needs/{need_id}/actions/close",
    response_model=NeedDetail,
    summary="Close a need (solved otherwise, or no longer wanted)",
    responses={409: {"description": "Not allowed in the need's state"}},
)
async def close_need(
    area_id: IdPath,
    need_id: IdPath,
    body: CloseIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    return await service.close_need(session, area_id, need_id, body, who, request)


@router.get(
    "/areas/{area_id}/needs/{need_id}/matches",
    response_model=list[MatchOut],
    summary="Suggested resources for a need (by category, kind and distance)",
)
async def need_matches(
    area_id: IdPath,
    need_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    limit: int = Query(10, ge=1, le=100),
) -> Any:
    matches = await service.need_matches(session, area_id, need_id, _today(), limit)
    return json_response(list[MatchOut], matches)


@router.get(
    "/grids/{grid_id}/needs", response_model=list[NeedOut], summary="The needs collected in a grid"
)
async def grid_needs(grid_id: IdPath, session: DbSession, who: CommunityCollector) -> Any:
    return [dict(r._mapping) for r in await service.grid_needs(session, grid_id)]


@router.post(
    "/grids/{grid_id}/needs",
    response_model=NeedDetail,
    status_code=status.HTTP_201_CREATED,
    summary="A grid worker collects a need in their grid",
)
async def collect_need(
    grid_id: IdPath,
    body: NeedIn,
    request: Request,
    session: DbSession,
    who: CommunityCollector,
    response: Response,
) -> Any:
    need = await service.collect_need(session, grid_id, body, who, request)
    response.headers["Location"] = f"/api/v1/areas/{need['community_id']}/needs/{need['id']}"
    return need


# --- resources --------------------------------------------------------------------------------


@router.get(
    "/areas/{area_id}/resources", response_model=list[ResourceOut], summary="The resources list"
)
async def list_resources(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    kind: ResourceKind | None = None,
    unit_id: IdQuery = None,
    valid: bool | None = Query(None, description="Valid today"),
) -> Any:
    rows = await service.list_resources(
        session, area_id, _today(), kind=kind, unit_id=unit_id, valid=valid
    )
    return [dict(r._mapping) for r in rows]


@router.post(
    "/areas/{area_id}/resources",
    response_model=ResourceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a co-building unit's resource",
)
async def create_resource(
    area_id: IdPath,
    body: ResourceIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    return await service.create_resource(session, area_id, body, who, request, _today())


# --- projects ---------------------------------------------------------------------------------


@router.get(
    "/areas/{area_id}/projects", response_model=list[ProjectOut], summary="The projects list"
)
async def list_projects(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    status_: ProjectStatus | None = Query(None, alias="status"),
) -> Any:
    return await service.list_projects(session, area_id, status_)


@router.post(
    "/areas/{area_id}/projects",
    response_model=ProjectDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Match a need with resources: a project, with its units and tasks",
)
async def create_project(
    area_id: IdPath,
    body: ProjectIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    response: Response,
) -> Any:
    project = await service.create_project(session, area_id, body, who, request, _now(), _today())
    response.headers["Location"] = (
        f"/api/v1/areas/{project['community_id']}/projects/{project['id']}"
    )
    return project


@router.get(
    "/areas/{area_id}/projects/{project_id}", response_model=ProjectDetail, summary="A project"
)
async def get_project(
    area_id: IdPath, project_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    return await service.get_project(session, area_id, project_id, _now(), _today())


@router.post(
    "/areas/{area_id}/projects/{project_id}/actions/{action}",
    response_model=ProjectDetail,
    summary="Start a project, report progress, complete it (with its evaluation) or cancel it",
    responses={409: {"description": "Not allowed in the project's state; see `allowed_actions`"}},
)
async def project_action(
    area_id: IdPath,
    project_id: IdPath,
    action: service.ProjectActionName,
    body: ProjectAction,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    return await service.act_on_project(
        session, area_id, project_id, action, body, who, request, _now(), _today()
    )


@router.post(
    "/areas/{area_id}/projects/{project_id}/tasks",
    response_model=ProjectDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Add a tracked task to a project",
)
async def add_project_task(
    area_id: IdPath,
    project_id: IdPath,
    body: TaskIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    return await service.add_project_task(
        session, area_id, project_id, body, who, request, _now(), _today()
    )


# --- reviews ----------------------------------------------------------------------------------


@router.get(
    "/areas/{area_id}/list-reviews",
    response_model=list[ReviewOut],
    summary="Quarterly reviews of the three lists",
)
async def list_reviews(area_id: IdPath, session: DbSession, who: CommunityReader) -> Any:
    return await service.list_reviews(session, area_id)


@router.post(
    "/areas/{area_id}/list-reviews",
    response_model=ReviewDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Review the three lists for a quarter: keep an immutable snapshot",
    responses={409: {"description": "The quarter was already reviewed"}},
)
async def create_review(
    area_id: IdPath,
    body: ReviewIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    return await service.create_review(
        session, area_id, body.period, body.note, who, request, _now(), _today()
    )


@router.get(
    "/areas/{area_id}/list-reviews/{review_id}",
    response_model=ReviewDetail,
    summary="A review and its snapshot",
)
async def get_review(
    area_id: IdPath, review_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    return await service.get_review(session, area_id, review_id)
