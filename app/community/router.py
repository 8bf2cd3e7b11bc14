"""/api/v1/areas/{area_id}/units and /tasks — co-building units (the big party committee's members
among them) and the tracked tasks every community mechanism produces.

Paths name the community (`{area_id}`), so the policy layer checks the caller's scope; reads also
accept a street or district and cover every community below it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, status

from app.auth.policy import CommunityDepartment, CommunityManager, CommunityReader
from app.community import service
from app.community.schemas import (
    PERIOD_PATTERN,
    CommunityFigures,
    TaskAction,
    TaskDetail,
    TaskOut,
    UnitCreate,
    UnitDetail,
    UnitOut,
    UnitUpdate,
)
from app.db import DbSession
from app.http import ApiRoute
from app.i18n import request_lang
from app.responses import json_response
from app.schemas import IdPath, IdQuery

_lang = [Depends(request_lang)]
router = APIRouter(
    prefix="/api/v1/areas", tags=["community"], route_class=ApiRoute, dependencies=_lang
)
dept_router = APIRouter(
    prefix="/api/v1/department-tasks", tags=["community"], route_class=ApiRoute, dependencies=_lang
)


def now_utc() -> datetime:
    return datetime.now(UTC)


@router.get("/{area_id}/units", response_model=list[UnitOut], summary="Co-building units")
async def list_units(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    member: bool | None = Query(None, description="Only member units of the big party committee"),
) -> Any:
    return await service.list_units(session, area_id, member)


@router.post(
    "/{area_id}/units",
    response_model=UnitOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a co-building unit (or a member unit of the big party committee)",
)
async def create_unit(
    area_id: IdPath, body: UnitCreate, request: Request, session: DbSession, who: CommunityManager
) -> Any:
    return await service.create_unit(session, area_id, body, who, request)


@router.get(
    "/{area_id}/units/{unit_id}", response_model=UnitDetail, summary="A unit and its timeline"
)
async def get_unit(
    area_id: IdPath, unit_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    return await service.unit_detail(session, area_id, unit_id)


@router.patch("/{area_id}/units/{unit_id}", response_model=UnitOut, summary="Change a unit")
async def update_unit(
    area_id: IdPath,
    unit_id: IdPath,
    body: UnitUpdate,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    return await service.update_unit(session, area_id, unit_id, body, who, request)


@router.get(
    "/{area_id}/community-figures",
    response_model=CommunityFigures,
    summary="The community mechanisms of a quarter in numbers (consoles, evaluation)",
)
async def community_figures(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    period: str | None = Query(None, pattern=PERIOD_PATTERN, description="Default: now"),
) -> Any:
    return await service.figures(session, area_id, period, now_utc())


@router.get("/{area_id}/tasks", response_model=list[TaskOut], summary="Tracked tasks")
async def list_tasks(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    state: Literal["open", "done", "cancelled"] | None = None,
    unit_id: IdQuery = None,
    overdue: bool | None = None,
    source: Literal["meeting", "project", "matter"] | None = None,
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Any:
    rows = await service.list_tasks(
        session,
        area_id,
        now_utc(),
        state=state,
        unit_id=unit_id,
        overdue=overdue,
        source=source,
        limit=limit,
        offset=offset,
    )
    return json_response(list[TaskOut], [dict(r._mapping) for r in rows])


@router.get(
    "/{area_id}/tasks/{task_id}", response_model=TaskDetail, summary="A task and its timeline"
)
async def get_task(
    area_id: IdPath, task_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    return await service.area_task_detail(session, area_id, task_id, now_utc())


@router.post(
    "/{area_id}/tasks/{task_id}/actions/{action}",
    response_model=TaskDetail,
    summary="Report progress on a task, mark it done, or cancel it",
    responses={409: {"description": "Not allowed in the task's state; see `allowed_actions`"}},
)
async def task_action(
    area_id: IdPath,
    task_id: IdPath,
    action: Literal["progress", "done", "cancel"],
    body: TaskAction,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    return await service.act_on_task(
        session, area_id, task_id, action, who, request, body.progress, body.note, now_utc()
    )


# --- a department's own tasks (it is the responsible unit) -----------------------------------


@dept_router.get(
    "",
    response_model=list[TaskOut],
    summary="Community tasks my department is responsible for (as a co-building unit)",
)
async def my_department_tasks(
    session: DbSession,
    who: CommunityDepartment,
    state: Literal["open", "done", "cancelled"] | None = None,
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Any:
    rows = await service.department_tasks(session, who, now_utc(), state, limit, offset)
    return json_response(list[TaskOut], [dict(r._mapping) for r in rows])


@dept_router.post(
    "/{task_id}/actions/{action}",
    response_model=TaskOut,
    summary="My department reports progress on a task, or finishes it",
    responses={409: {"description": "Not allowed in the task's state; see `allowed_actions`"}},
)
async def my_department_task_action(
    task_id: IdPath,
    action: Literal["progress", "done"],
    body: TaskAction,
    request: Request,
    session: DbSession,
    who: CommunityDepartment,
) -> Any:
    row = await service.department_act(
        session, who, task_id, action, request, body.progress, body.note, now_utc()
    )
    return dict(row._mapping)
