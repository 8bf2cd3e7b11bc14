"""Co-building units (the big party committee's members among them), the tracked tasks of a
community as its routes see them, and the figures of a quarter. What every community mechanism
shares lives next to this: `areas` (the community a path names, rows under an area), `records`
(timeline steps, audit, events, state conflicts), `tasks` (tracked tasks), `figures`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import figures as community_figures
from app.community import tasks
from app.community.areas import Community, communities_under, community_of, row_under, rows_under
from app.community.models import Unit
from app.community.records import audit, quarter, step, timeline
from app.community.schemas import UnitCreate, UnitUpdate
from app.departments import service as departments
from app.errors import ApiError, not_found
from app.schemas import reject_nulls

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "not_a_community": (422, "该区域不是社区/村", "The area is not a community"),
    "state_conflict": (409, "当前状态下不能执行该操作", "This action is not allowed now"),
    "quorum_not_met": (409, "参与人数未达到法定人数", "The quorum is not met"),
    "period_reviewed": (
        409,
        "该季度的清单已评审",
        "This quarter's lists were already reviewed",
    ),
    "immutable": (409, "评审快照不可修改", "A review snapshot cannot be changed"),
}
"""This module's error codes (registered in `app.extensions`)."""
ACTION_NAMES: dict[str, tuple[str, str]] = {
    "created": ("创建", "created"),
    "updated": ("更新", "updated"),
    "progress": ("进度更新", "progress reported"),
    "done": ("完成", "done"),
    "cancelled": ("取消", "cancelled"),
}
"""Labels of this module's case-step actions (registered in `app.extensions`)."""

# --- units ------------------------------------------------------------------------------------

_UNIT = ("共建单位", "Unit")


async def get_unit(session: AsyncSession, community: Community, unit_id: int) -> Unit:
    u = await session.get(Unit, unit_id)
    if u is None or u.community_id != community.id:
        raise not_found(*_UNIT, unit_id)
    return u


async def check_units(
    session: AsyncSession, community: Community, ids: list[int], field: str
) -> None:
    """Every unit id belongs to this community (422 naming the field otherwise)."""
    if not ids:
        return
    found = set(
        (
            await session.execute(
                select(Unit.id).where(Unit.id.in_(ids), Unit.community_id == community.id)
            )
        ).scalars()
    )
    missing = sorted(set(ids) - found)
    if missing:
        raise ApiError(
            "validation_error",
            field=field,
            detail=f"本社区没有这些共建单位：{missing}",
            detail_en=f"No such units in this community: {missing}",
        )


async def list_units(session: AsyncSession, area_id: int, member: bool | None) -> list[Unit]:
    return await rows_under(
        session, Unit, area_id, order_by=(Unit.community_id, Unit.id), is_member=member
    )


async def create_unit(
    session: AsyncSession,
    area_id: int,
    body: UnitCreate,
    who: Principal,
    request: Request | None,
) -> Unit:
    c = await community_of(session, area_id)
    if body.department_id is not None and not await departments.exists(session, body.department_id):
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
    await step(session, c, "unit", u.id, "created", who, note=u.name, detail=data)
    await audit(session, "community_unit_created", who, request, "community_unit", u.id, data)
    await session.flush()
    await session.refresh(u)
    return u


async def unit_detail(session: AsyncSession, area_id: int, unit_id: int) -> dict[str, Any]:
    u = await row_under(session, Unit, area_id, unit_id, _UNIT)
    return {
        **{c.name: getattr(u, c.name) for c in Unit.__table__.columns},
        "timeline": await timeline(session, "unit", u.id),
    }


async def update_unit(
    session: AsyncSession,
    area_id: int,
    unit_id: int,
    body: UnitUpdate,
    who: Principal,
    request: Request | None,
) -> Unit:
    reject_nulls(body, "is_member", "active")
    c = await community_of(session, area_id)
    u = await get_unit(session, c, unit_id)
    changes = body.model_dump(exclude_unset=True)
    for k, v in changes.items():
        setattr(u, k, v)
    await step(session, c, "unit", u.id, "updated", who, detail=changes)
    await audit(session, "community_unit_updated", who, request, "community_unit", u.id, changes)
    await session.flush()
    await session.refresh(u)
    return u


# --- tasks as the community's routes see them -------------------------------------------------


async def list_tasks(
    session: AsyncSession, area_id: int, now: datetime, **filters: Any
) -> list[Any]:
    return await tasks.list_tasks(
        session, await communities_under(session, area_id), now, **filters
    )


async def task_detail(
    session: AsyncSession, communities: list[int], task_id: int, now: datetime
) -> dict[str, Any]:
    rows = await tasks.list_tasks(session, communities, now, task_id=task_id)
    if not rows:
        raise not_found("任务", "Task", task_id)
    return {**dict(rows[0]._mapping), "timeline": await timeline(session, "task", task_id)}


async def area_task_detail(
    session: AsyncSession, area_id: int, task_id: int, now: datetime
) -> dict[str, Any]:
    return await task_detail(session, await communities_under(session, area_id), task_id, now)


async def act_on_task(
    session: AsyncSession,
    area_id: int,
    task_id: int,
    action: str,
    who: Principal,
    request: Request | None,
    progress: int | None,
    note: str,
    now: datetime,
) -> dict[str, Any]:
    c = await community_of(session, area_id)
    await tasks.act_on_task(session, c, task_id, action, who, request, progress, note, now)
    return await task_detail(session, [c.id], task_id, now)


async def department_tasks(
    session: AsyncSession,
    who: Principal,
    now: datetime,
    state: str | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Any]:
    return await tasks.department_tasks(session, who, now, state, limit=limit, offset=offset)


async def department_act(
    session: AsyncSession,
    who: Principal,
    task_id: int,
    action: str,
    request: Request | None,
    progress: int | None,
    note: str,
    now: datetime,
) -> Any:
    """A department reports progress on, or finishes, a task it is responsible for; the task."""
    await tasks.department_act(session, who, task_id, action, request, progress, note, now)
    return (await tasks.department_tasks(session, who, now, task_id=task_id))[0]


async def figures(
    session: AsyncSession, area_id: int, period: str | None, now: datetime
) -> dict[str, Any]:
    communities = await communities_under(session, area_id)
    return await community_figures.figures(session, communities, period or quarter(now), now)
