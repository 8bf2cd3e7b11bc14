"""The three lists (三张清单) as their routes see them: the community or area a path names, then
the work of `needs`, `resources`, `projects` and `reviews`; each answer with its timeline."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import records
from app.community.areas import (
    communities_under,
    community_of,
    grid_community,
    row_under,
    rows_under,
)
from app.community.schemas import TaskIn
from app.lists import needs, projects, resources, reviews
from app.lists.models import ListReview, Project
from app.lists.schemas import CloseIn, NeedFromCases, NeedIn, ProjectAction, ProjectIn, ResourceIn

ProjectActionName = projects.ProjectActionName

# --- needs ------------------------------------------------------------------------------------


async def need_detail(
    session: AsyncSession, communities: list[int], need_id: int
) -> dict[str, Any]:
    row = await needs.need_row(session, communities, need_id)
    return {**dict(row._mapping), "timeline": await records.timeline(session, "need", need_id)}


async def list_needs(session: AsyncSession, area_id: int, **filters: Any) -> list[Any]:
    return await needs.list_needs(session, await communities_under(session, area_id), **filters)


async def get_need(session: AsyncSession, area_id: int, need_id: int) -> dict[str, Any]:
    return await need_detail(session, await communities_under(session, area_id), need_id)


async def create_need(
    session: AsyncSession, area_id: int, body: NeedIn, who: Principal, request: Request | None
) -> dict[str, Any]:
    c = await community_of(session, area_id)
    nid = await needs.create_need(session, c, body, who, request)
    return await need_detail(session, [c.id], nid)


async def collect_need(
    session: AsyncSession, grid_id: int, body: NeedIn, who: Principal, request: Request | None
) -> dict[str, Any]:
    """A need collected by a grid worker belongs to the grid's community."""
    c = await grid_community(session, grid_id)
    body = body.model_copy(update={"grid_id": grid_id})
    nid = await needs.create_need(session, c, body, who, request)
    return await need_detail(session, [c.id], nid)


async def grid_needs(session: AsyncSession, grid_id: int) -> list[Any]:
    c = await grid_community(session, grid_id)
    return await needs.list_needs(session, [c.id], grid_id=grid_id)


async def case_candidates(
    session: AsyncSession, area_id: int, days: int, min_cases: int, now: datetime
) -> list[dict[str, Any]]:
    c = await community_of(session, area_id)
    rows = await needs.case_candidates(session, c, days, min_cases, now)
    return [dict(r._mapping) for r in rows]


async def need_from_cases(
    session: AsyncSession,
    area_id: int,
    body: NeedFromCases,
    who: Principal,
    request: Request | None,
    now: datetime,
) -> dict[str, Any]:
    c = await community_of(session, area_id)
    nid = await needs.need_from_cases(session, c, body, who, request, now)
    return await need_detail(session, [c.id], nid)


async def close_need(
    session: AsyncSession,
    area_id: int,
    need_id: int,
    body: CloseIn,
    who: Principal,
    request: Request | None,
) -> dict[str, Any]:
    c = await community_of(session, area_id)
    await needs.close_need(session, c, need_id, body.reason, who, request)
    return await need_detail(session, [c.id], need_id)


async def need_matches(
    session: AsyncSession, area_id: int, need_id: int, today: date, limit: int
) -> list[dict[str, Any]]:
    need = await needs.need_row(session, await communities_under(session, area_id), need_id)
    return await resources.matches(session, need, today, limit)


# --- resources --------------------------------------------------------------------------------


async def list_resources(
    session: AsyncSession, area_id: int, today: date, **filters: Any
) -> list[Any]:
    communities = await communities_under(session, area_id)
    return await resources.list_resources(session, communities, today, **filters)


async def create_resource(
    session: AsyncSession,
    area_id: int,
    body: ResourceIn,
    who: Principal,
    request: Request | None,
    today: date,
) -> dict[str, Any]:
    c = await community_of(session, area_id)
    rid = await resources.create_resource(session, c, body, who, request)
    return dict((await resources.list_resources(session, [c.id], today, ids=[rid]))[0]._mapping)


# --- projects ---------------------------------------------------------------------------------


async def list_projects(session: AsyncSession, area_id: int, status: str | None) -> list[Project]:
    return await rows_under(session, Project, area_id, order_by=(Project.id.desc(),), status=status)


async def get_project(
    session: AsyncSession, area_id: int, project_id: int, now: datetime, today: date
) -> dict[str, Any]:
    communities = await communities_under(session, area_id)
    return await projects.project_detail(session, communities, project_id, now, today)


async def create_project(
    session: AsyncSession,
    area_id: int,
    body: ProjectIn,
    who: Principal,
    request: Request | None,
    now: datetime,
    today: date,
) -> dict[str, Any]:
    c = await community_of(session, area_id)
    pid = await projects.create_project(session, c, body, who, request, now, today)
    return await projects.project_detail(session, [c.id], pid, now, today)


async def act_on_project(
    session: AsyncSession,
    area_id: int,
    project_id: int,
    action: str,
    body: ProjectAction,
    who: Principal,
    request: Request | None,
    now: datetime,
    today: date,
) -> dict[str, Any]:
    c = await community_of(session, area_id)
    await projects.act_on_project(
        session,
        c,
        project_id,
        action,
        who,
        request,
        body.progress,
        body.evaluation,
        body.note,
        now,
    )
    return await projects.project_detail(session, [c.id], project_id, now, today)


async def add_project_task(
    session: AsyncSession,
    area_id: int,
    project_id: int,
    body: TaskIn,
    who: Principal,
    request: Request | None,
    now: datetime,
    today: date,
) -> dict[str, Any]:
    c = await community_of(session, area_id)
    await projects.add_task(session, c, project_id, body, who, request, now)
    return await projects.project_detail(session, [c.id], project_id, now, today)


# --- reviews ----------------------------------------------------------------------------------

_REVIEW = ("清单评审", "Review")


async def list_reviews(session: AsyncSession, area_id: int) -> list[ListReview]:
    return await rows_under(
        session, ListReview, area_id, order_by=(ListReview.period.desc(), ListReview.id.desc())
    )


async def get_review(session: AsyncSession, area_id: int, review_id: int) -> ListReview:
    return await row_under(session, ListReview, area_id, review_id, _REVIEW)


async def create_review(
    session: AsyncSession,
    area_id: int,
    period: str | None,
    note: str,
    who: Principal,
    request: Request | None,
    now: datetime,
    today: date,
) -> ListReview:
    c = await community_of(session, area_id)
    rid = await reviews.review(
        session, c, period or records.quarter(now), note, who, request, today
    )
    return await row_under(session, ListReview, c.id, rid, _REVIEW)
