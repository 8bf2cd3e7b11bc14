"""The three lists (三张清单) of a community: needs, resources, projects, quarterly reviews.

Under `/api/v1/areas/{area_id}/…` (community staff; street, centre and admin read every community
below their area) and `/api/v1/grids/{grid_id}/needs` (grid workers collect needs in their grids)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request, Response, status
from sqlalchemy import select

from app.auth.policy import CommunityCollector, CommunityManager, CommunityReader
from app.community import labels
from app.community import service as cs
from app.community.schemas import IdPath, IdQuery, StepOut
from app.db import DbSession
from app.errors import not_found
from app.http import ApiRoute
from app.i18n import Lang, RequestLang
from app.lists import service
from app.lists.models import ListReview
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
from app.schemas import SHANGHAI

router = APIRouter(prefix="/api/v1", tags=["community lists"], route_class=ApiRoute)


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return datetime.now(SHANGHAI).date()


def _need(row: Any, lang: Lang) -> dict[str, Any]:
    return labels.add(
        dict(row._mapping), lang, category=labels.NEED_CATEGORY, status=labels.NEED_STATUS
    )


def _resource(row: Any, lang: Lang) -> dict[str, Any]:
    return labels.add(dict(row._mapping), lang, kind=labels.RESOURCE_KIND)


async def _need_detail(
    session: DbSession, communities: list[int], need_id: IdPath, lang: Lang = "zh"
) -> NeedDetail:
    row = await service.need_row(session, communities, need_id)
    steps = await cs.timeline(session, "need", need_id)
    return NeedDetail.model_validate(
        {**_need(row, lang), "timeline": [StepOut.model_validate(s) for s in steps]}
    )


# --- needs ------------------------------------------------------------------------------------


@router.get("/areas/{area_id}/needs", response_model=list[NeedOut], summary="The needs list")
async def list_needs(
    area_id: int,
    session: DbSession,
    who: CommunityReader,
    lang: RequestLang,
    status_: NeedStatus | None = Query(None, alias="status"),
    category: NeedCategory | None = None,
    grid_id: IdQuery = None,
    unmatched: bool | None = Query(None, description="Open needs with no project yet"),
) -> Any:
    communities = await cs.communities_under(session, area_id)
    rows = await service.list_needs(
        session,
        communities,
        status=status_,
        category=category,
        grid_id=grid_id,
        unmatched=unmatched,
    )
    return cs.json_response(list[NeedOut], [_need(r, lang) for r in rows])


@router.post(
    "/areas/{area_id}/needs",
    response_model=NeedDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Add a need to the list",
)
async def create_need(
    area_id: int,
    body: NeedIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    response: Response,
    lang: RequestLang,
) -> Any:
    c = await cs.community_of(session, area_id)
    nid = await service.create_need(session, c, body, who, request)
    response.headers["Location"] = f"/api/v1/areas/{c.id}/needs/{nid}"
    return await _need_detail(session, [c.id], nid, lang)


@router.get(
    "/areas/{area_id}/needs/case-candidates",
    response_model=list[CaseCandidate],
    summary="Case types that keep recurring in the community (candidates for the needs list)",
)
async def case_candidates(
    area_id: int,
    session: DbSession,
    who: CommunityReader,
    days: int = Query(90, ge=7, le=730),
    min_cases: int = Query(3, ge=2, le=1000),
) -> Any:
    c = await cs.community_of(session, area_id)
    return [
        dict(r._mapping) for r in await service.case_candidates(session, c, days, min_cases, _now())
    ]


@router.post(
    "/areas/{area_id}/needs/from-cases",
    response_model=NeedDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Turn a recurring case type into a need",
)
async def need_from_cases(
    area_id: int,
    body: NeedFromCases,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    response: Response,
    lang: RequestLang,
) -> Any:
    c = await cs.community_of(session, area_id)
    nid = await service.need_from_cases(session, c, body, who, request, _now())
    response.headers["Location"] = f"/api/v1/areas/{c.id}/needs/{nid}"
    return await _need_detail(session, [c.id], nid, lang)


@router.get("/areas/{area_id}/needs/{need_id}", response_model=NeedDetail, summary="A need")
async def get_need(
    area_id: int, need_id: IdPath, session: DbSession, who: CommunityReader, lang: RequestLang
) -> Any:
    return await _need_detail(session, await cs.communities_under(session, area_id), need_id, lang)


@router.post(
    "/areas/{area_id}/needs/{need_id}/actions/close",
    response_model=NeedDetail,
    summary="Close a need (solved otherwise, or no longer wanted)",
    responses={409: {"description": "Not allowed in the need's state"}},
)
async def close_need(
    area_id: int,
    need_id: IdPath,
    body: CloseIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    lang: RequestLang,
) -> Any:
    c = await cs.community_of(session, area_id)
    await service.close_need(session, c, need_id, body.reason, who, request)
    return await _need_detail(session, [c.id], need_id, lang)


@router.get(
    "/areas/{area_id}/needs/{need_id}/matches",
    response_model=list[MatchOut],
    summary="Suggested resources for a need (by category, kind and distance)",
)
async def need_matches(
    area_id: int,
    need_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    limit: int = Query(10, ge=1, le=100),
) -> Any:
    need = await service.need_row(session, await cs.communities_under(session, area_id), need_id)
    return cs.json_response(list[MatchOut], await service.matches(session, need, _today(), limit))


@router.get(
    "/grids/{grid_id}/needs", response_model=list[NeedOut], summary="The needs collected in a grid"
)
async def grid_needs(
    grid_id: int, session: DbSession, who: CommunityCollector, lang: RequestLang
) -> Any:
    community = await cs.grid_community(session, grid_id)
    rows = await service.list_needs(session, [community.id], grid_id=grid_id)
    return [_need(r, lang) for r in rows]


@router.post(
    "/grids/{grid_id}/needs",
    response_model=NeedDetail,
    status_code=status.HTTP_201_CREATED,
    summary="A grid worker collects a need in their grid",
)
async def collect_need(
    grid_id: int,
    body: NeedIn,
    request: Request,
    session: DbSession,
    who: CommunityCollector,
    response: Response,
    lang: RequestLang,
) -> Any:
    community = await cs.grid_community(session, grid_id)
    body = body.model_copy(update={"grid_id": grid_id})
    nid = await service.create_need(session, community, body, who, request)
    response.headers["Location"] = f"/api/v1/areas/{community.id}/needs/{nid}"
    return await _need_detail(session, [community.id], nid, lang)


# --- resources --------------------------------------------------------------------------------


@router.get(
    "/areas/{area_id}/resources", response_model=list[ResourceOut], summary="The resources list"
)
async def list_resources(
    area_id: int,
    session: DbSession,
    who: CommunityReader,
    lang: RequestLang,
    kind: ResourceKind | None = None,
    unit_id: IdQuery = None,
    valid: bool | None = Query(None, description="Valid today"),
) -> Any:
    communities = await cs.communities_under(session, area_id)
    rows = await service.list_resources(
        session, communities, _today(), kind=kind, unit_id=unit_id, valid=valid
    )
    return [_resource(r, lang) for r in rows]


@router.post(
    "/areas/{area_id}/resources",
    response_model=ResourceOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a co-building unit's resource",
)
async def create_resource(
    area_id: int,
    body: ResourceIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    lang: RequestLang,
) -> Any:
    c = await cs.community_of(session, area_id)
    rid = await service.create_resource(session, c, body, who, request)
    return _resource((await service.list_resources(session, [c.id], _today(), ids=[rid]))[0], lang)


# --- projects ---------------------------------------------------------------------------------


@router.get(
    "/areas/{area_id}/projects", response_model=list[ProjectOut], summary="The projects list"
)
async def list_projects(
    area_id: int,
    session: DbSession,
    who: CommunityReader,
    status_: ProjectStatus | None = Query(None, alias="status"),
) -> Any:
    from app.lists.models import Project

    communities = await cs.communities_under(session, area_id)
    stmt = select(Project).where(Project.community_id.in_(communities))
    if status_:
        stmt = stmt.where(Project.status == status_)
    return (await session.execute(stmt.order_by(Project.id.desc()))).scalars().all()


@router.post(
    "/areas/{area_id}/projects",
    response_model=ProjectDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Match a need with resources: a project, with its units and tasks",
)
async def create_project(
    area_id: int,
    body: ProjectIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    response: Response,
) -> Any:
    c = await cs.community_of(session, area_id)
    pid = await service.create_project(session, c, body, who, request, _now(), _today())
    response.headers["Location"] = f"/api/v1/areas/{c.id}/projects/{pid}"
    return await service.project_detail(session, [c.id], pid, _now(), _today())


@router.get(
    "/areas/{area_id}/projects/{project_id}", response_model=ProjectDetail, summary="A project"
)
async def get_project(
    area_id: int, project_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    communities = await cs.communities_under(session, area_id)
    return await service.project_detail(session, communities, project_id, _now(), _today())


@router.post(
    "/areas/{area_id}/projects/{project_id}/actions/{action}",
    response_model=ProjectDetail,
    summary="Start a project, report progress, complete it (with its evaluation) or cancel it",
    responses={409: {"description": "Not allowed in the project's state; see `allowed_actions`"}},
)
async def project_action(
    area_id: int,
    project_id: IdPath,
    action: service.ProjectActionName,
    body: ProjectAction,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await cs.community_of(session, area_id)
    await service.act_on_project(
        session,
        c,
        project_id,
        action,
        who,
        request,
        body.progress,
        body.evaluation,
        body.note,
        _now(),
    )
    return await service.project_detail(session, [c.id], project_id, _now(), _today())


@router.post(
    "/areas/{area_id}/projects/{project_id}/tasks",
    response_model=ProjectDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Add a tracked task to a project",
)
async def add_project_task(
    area_id: int,
    project_id: IdPath,
    body: service.TaskIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await cs.community_of(session, area_id)
    await service.add_task(session, c, project_id, body, who, request, _now())
    return await service.project_detail(session, [c.id], project_id, _now(), _today())


# --- reviews ----------------------------------------------------------------------------------


@router.get(
    "/areas/{area_id}/list-reviews",
    response_model=list[ReviewOut],
    summary="Quarterly reviews of the three lists",
)
async def list_reviews(area_id: int, session: DbSession, who: CommunityReader) -> Any:
    communities = await cs.communities_under(session, area_id)
    stmt = (
        select(ListReview)
        .where(ListReview.community_id.in_(communities))
        .order_by(ListReview.period.desc(), ListReview.id.desc())
    )
    return (await session.execute(stmt)).scalars().all()


@router.post(
    "/areas/{area_id}/list-reviews",
    response_model=ReviewDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Review the three lists for a quarter: keep an immutable snapshot",
    responses={409: {"description": "The quarter was already reviewed"}},
)
async def create_review(
    area_id: int,
    body: ReviewIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await cs.community_of(session, area_id)
    period = body.period or cs.quarter(_now())
    rid = await service.review(session, c, period, body.note, who, request, _today())
    return await session.get(ListReview, rid)


@router.get(
    "/areas/{area_id}/list-reviews/{review_id}",
    response_model=ReviewDetail,
    summary="A review and its snapshot",
)
async def get_review(
    area_id: int, review_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    rv = await session.get(ListReview, review_id)
    if rv is None or rv.community_id not in await cs.communities_under(session, area_id):
        raise not_found("清单评审", "Review", review_id)
    return rv
