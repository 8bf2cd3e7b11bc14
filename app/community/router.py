"""/api/v1/areas/{area_id}/units and /tasks — co-building units (the big party committee's members
among them) and the tracked tasks every community mechanism produces.

Paths name the community (`{area_id}`), so the policy layer checks the caller's scope; reads also
accept a street or district and cover every community below it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Query, Request, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.auth.policy import CommunityDepartment, CommunityManager, CommunityReader
from app.community import labels, service
from app.community.models import Unit
from app.community.schemas import (
    CommunityFigures,
    IdPath,
    IdQuery,
    StepOut,
    TaskAction,
    TaskDetail,
    TaskOut,
    UnitCreate,
    UnitDetail,
    UnitOut,
    UnitUpdate,
)
from app.db import DbSession
from app.departments.models import Department
from app.errors import ApiError, not_found
from app.http import ApiRoute
from app.i18n import Lang, RequestLang
from app.schemas import reject_nulls

router = APIRouter(prefix="/api/v1/areas", tags=["community"], route_class=ApiRoute)
dept_router = APIRouter(prefix="/api/v1/department-tasks", tags=["community"], route_class=ApiRoute)


def now_utc() -> datetime:
    return datetime.now(UTC)


@router.get("/{area_id}/units", response_model=list[UnitOut], summary="Co-building units")
async def list_units(
    area_id: int,
    session: DbSession,
    who: CommunityReader,
    member: bool | None = Query(None, description="Only member units of the big party committee"),
) -> Any:
    communities = await service.communities_under(session, area_id)
    stmt = select(Unit).where(Unit.community_id.in_(communities))
    if member is not None:
        stmt = stmt.where(Unit.is_member == member)
    return (await session.execute(stmt.order_by(Unit.community_id, Unit.id))).scalars().all()


@router.post(
    "/{area_id}/units",
    response_model=UnitOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a co-building unit (or a member unit of the big party committee)",
)
async def create_unit(
    area_id: int, body: UnitCreate, request: Request, session: DbSession, who: CommunityManager
) -> Any:
    c = await service.community_of(session, area_id)
    if body.department_id is not None and await session.get(Department, body.department_id) is None:
        raise ApiError(
            "validation_error",
            field="department_id",
            detail=f"部门不存在：{body.department_id}",
            detail_en=f"No such department: {body.department_id}",
        )
    data = body.model_dump(exclude={"location"})
    u = Unit(district_id=c.district_id, community_id=c.id, **data)
    if body.location:
        u.location = func.ST_SetSRID(func.ST_MakePoint(body.location.lon, body.location.lat), 4326)
    session.add(u)
    try:
        await session.flush()
    except IntegrityError:  # the unique name per community
        await session.rollback()
        raise ApiError(
            "conflict",
            field="name",
            detail=f"本社区已有该单位：{body.name}",
            detail_en=f"The unit exists already in this community: {body.name}",
        ) from None
    await service.step(session, c, "unit", u.id, "created", who, note=u.name, detail=data)
    await service.audit(
        session, "community_unit_created", who, request, "community_unit", u.id, data
    )
    await session.commit()
    await session.refresh(u)
    return u


@router.get(
    "/{area_id}/units/{unit_id}", response_model=UnitDetail, summary="A unit and its timeline"
)
async def get_unit(area_id: int, unit_id: IdPath, session: DbSession, who: CommunityReader) -> Any:
    u = await session.get(Unit, unit_id)
    if u is None or u.community_id not in await service.communities_under(session, area_id):
        raise not_found("共建单位", "Unit", unit_id)
    steps = await service.timeline(session, "unit", u.id)
    return {
        **UnitOut.model_validate(u).model_dump(),
        "timeline": [StepOut.model_validate(s) for s in steps],
    }


@router.patch("/{area_id}/units/{unit_id}", response_model=UnitOut, summary="Change a unit")
async def update_unit(
    area_id: int,
    unit_id: IdPath,
    body: UnitUpdate,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    reject_nulls(body, "is_member", "active")
    c = await service.community_of(session, area_id)
    u = await service.get_unit(session, c, unit_id)
    changes = body.model_dump(exclude_unset=True)
    for k, v in changes.items():
        setattr(u, k, v)
    await service.step(session, c, "unit", u.id, "updated", who, detail=changes)
    await service.audit(
        session, "community_unit_updated", who, request, "community_unit", u.id, changes
    )
    await session.commit()
    await session.refresh(u)
    return u


@router.get(
    "/{area_id}/community-figures",
    response_model=CommunityFigures,
    summary="The community mechanisms of a quarter in numbers (consoles, evaluation)",
)
async def community_figures(
    area_id: int,
    session: DbSession,
    who: CommunityReader,
    period: str | None = Query(None, pattern=service.PERIOD_PATTERN, description="Default: now"),
) -> Any:
    communities = await service.communities_under(session, area_id)
    return await service.figures(
        session, communities, period or service.quarter(now_utc()), now_utc()
    )


@router.get("/{area_id}/tasks", response_model=list[TaskOut], summary="Tracked tasks")
async def list_tasks(
    area_id: int,
    session: DbSession,
    who: CommunityReader,
    lang: RequestLang,
    state: Literal["open", "done", "cancelled"] | None = None,
    unit_id: IdQuery = None,
    overdue: bool | None = None,
    source: Literal["meeting", "project", "matter"] | None = None,
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Any:
    communities = await service.communities_under(session, area_id)
    rows = await service.list_tasks(
        session,
        communities,
        now_utc(),
        state=state,
        unit_id=unit_id,
        overdue=overdue,
        source=source,
        limit=limit,
        offset=offset,
    )
    return service.json_response(list[TaskOut], [_task(r, lang) for r in rows])


def _task(row: Any, lang: Lang) -> dict[str, Any]:
    return labels.add(dict(row._mapping), lang, state=labels.TASK_STATE)


async def task_detail(
    session: DbSession, task_id: IdPath, community_ids: list[int], lang: Lang = "zh"
) -> TaskDetail:
    rows = await service.list_tasks(session, community_ids, now_utc(), task_id=task_id)
    row = rows[0] if rows else None
    if row is None:
        raise not_found("任务", "Task", task_id)
    steps = await service.timeline(session, "task", task_id)
    return TaskDetail.model_validate(
        {**_task(row, lang), "timeline": [StepOut.model_validate(s) for s in steps]}
    )


@router.get(
    "/{area_id}/tasks/{task_id}", response_model=TaskDetail, summary="A task and its timeline"
)
async def get_task(
    area_id: int, task_id: IdPath, session: DbSession, who: CommunityReader, lang: RequestLang
) -> Any:
    communities = await service.communities_under(session, area_id)
    return await task_detail(session, task_id, communities, lang)


@router.post(
    "/{area_id}/tasks/{task_id}/actions/{action}",
    response_model=TaskDetail,
    summary="Report progress on a task, mark it done, or cancel it",
    responses={409: {"description": "Not allowed in the task's state; see `allowed_actions`"}},
)
async def task_action(
    area_id: int,
    task_id: IdPath,
    action: Literal["progress", "done", "cancel"],
    body: TaskAction,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    lang: RequestLang,
) -> Any:
    c = await service.community_of(session, area_id)
    await service.act_on_task(
        session, c, task_id, action, who, request, body.progress, body.note, now_utc()
    )
    return await task_detail(session, task_id, [c.id], lang)


# --- a department's own tasks (it is the responsible unit) -----------------------------------


@dept_router.get(
    "",
    response_model=list[TaskOut],
    summary="Community tasks my department is responsible for (as a co-building unit)",
)
async def my_department_tasks(
    session: DbSession,
    who: CommunityDepartment,
    lang: RequestLang,
    state: Literal["open", "done", "cancelled"] | None = None,
    limit: int = Query(200, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> Any:
    rows = await service.department_tasks(
        session, who, now_utc(), state, limit=limit, offset=offset
    )
    return service.json_response(list[TaskOut], [_task(r, lang) for r in rows])


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
    lang: RequestLang,
) -> Any:
    await service.department_act(
        session, who, task_id, action, request, body.progress, body.note, now_utc()
    )
    rows = await service.department_tasks(session, who, now_utc(), task_id=task_id)
    return _task(rows[0], lang)
