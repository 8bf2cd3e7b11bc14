"""Shared by the community mechanisms: the community a path names, timelines, events about a
community, small state machines (409 with the allowed actions), working-day deadlines, tasks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import cache
from typing import Any

import orjson
from fastapi import Request
from pydantic import TypeAdapter
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.policy import Principal
from app.community.models import Step, Task, Unit
from app.errors import ApiError, not_found
from app.loop import deadlines
from app.responses import FastJSON
from app.schemas import SHANGHAI

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


@cache
def _adapter(type_: Any) -> TypeAdapter[Any]:
    return TypeAdapter(type_)


def json_response(type_: Any, data: Any, status_code: int = 200) -> FastJSON:
    """Validate `data` as the route's response model and encode it in one pass (pydantic-core):
    big lists skip FastAPI's slower response validation and encoding."""
    a = _adapter(type_)
    return FastJSON(
        a.dump_json(a.validate_python(data, from_attributes=True)), status_code=status_code
    )


@dataclass(frozen=True)
class Community:
    id: int
    district_id: int
    name: str
    street_id: int


_COMMUNITY = text(
    """
    SELECT c.id, c.name, c.level, s.id AS street_id, s.parent_id AS district_id
    FROM areas c LEFT JOIN areas s ON s.id = c.parent_id WHERE c.id = :id
    """
)


async def community_of(session: AsyncSession, area_id: int) -> Community:
    """The community an `{area_id}` path names (422 when the area is not a community)."""
    row = (await session.execute(_COMMUNITY, {"id": area_id})).first()
    if row is None:
        raise not_found("区域", "Area", area_id)
    if row.level != "community" or row.district_id is None:
        raise ApiError(
            "not_a_community",
            field="area_id",
            detail=f"区域 {row.name} 不是社区/村",
            detail_en=f"{row.name} is not a community",
        )
    return Community(row.id, row.district_id, row.name, row.street_id)


async def grid_community(session: AsyncSession, grid_id: int) -> Community:
    """The community of a (live) grid: where a need or proposal collected in it belongs."""
    row = (
        await session.execute(
            text("SELECT community_id FROM grids WHERE id = :g AND deleted_at IS NULL"),
            {"g": grid_id},
        )
    ).first()
    if row is None:
        raise not_found("网格", "Grid", grid_id)
    return await community_of(session, row.community_id)


_UNDER = text(
    """
    WITH RECURSIVE down(id, level) AS (
        SELECT id, level FROM areas WHERE id = :id
        UNION ALL SELECT a.id, a.level FROM areas a JOIN down ON a.parent_id = down.id
    )
    SELECT id FROM down WHERE level = 'community'
    """
)


async def communities_under(session: AsyncSession, area_id: int) -> list[int]:
    """The communities at or below an area (404 when the area does not exist)."""
    ids = list((await session.execute(_UNDER, {"id": area_id})).scalars())
    if (
        not ids
        and (
            await session.execute(text("SELECT 1 FROM areas WHERE id = :id"), {"id": area_id})
        ).first()
        is None
    ):
        raise not_found("区域", "Area", area_id)
    return ids


def quarter(at: datetime | date) -> str:
    """'2026Q4': the quarter (Asia/Shanghai) a moment or day falls in."""
    d = at.astimezone(SHANGHAI).date() if isinstance(at, datetime) else at
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def quarter_bounds(period: str) -> tuple[date, date]:
    """First day of the quarter and first day of the next."""
    year, q = int(period[:4]), int(period[5])
    start = date(year, 3 * (q - 1) + 1, 1)
    end = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    return start, end


PERIOD_PATTERN = r"^20[0-9]{2}Q[1-4]$"


async def step(
    session: AsyncSession,
    community: Community,
    object_type: str,
    object_id: int,
    action: str,
    who: Principal | None,
    note: str = "",
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Add a timeline step (commits with the change it describes)."""
    s = Step(
        district_id=community.district_id,
        community_id=community.id,
        object_type=object_type,
        object_id=object_id,
        action=action,
        actor_id=who.user_id if who else None,
        actor=who.display_name if who else None,
        note=note,
        detail=orjson.loads(orjson.dumps(detail or {}, default=str)),
    )
    if at is not None:
        s.at = at
    session.add(s)


async def timeline(session: AsyncSession, object_type: str, object_id: int) -> list[Step]:
    rows = await session.execute(
        select(Step)
        .where(Step.object_type == object_type, Step.object_id == object_id)
        .order_by(Step.id)
    )
    return list(rows.scalars())


_EMIT = text(
    """
    WITH RECURSIVE up(id, parent_id) AS (
        SELECT id, parent_id FROM areas WHERE id = :community
        UNION ALL SELECT a.id, a.parent_id FROM areas a JOIN up ON a.id = up.parent_id
    )
    INSERT INTO event_intents (type, district_id, area_ids, department_ids, payload)
    SELECT :type, (SELECT a.id FROM up JOIN areas a ON a.id = up.id WHERE a.level = 'district'),
           array(SELECT id FROM up),
           array(SELECT department_id FROM community_units
                 WHERE id = CAST(:unit AS bigint) AND department_id IS NOT NULL),
           CAST(:payload AS jsonb)
    """
)


async def emit_community(
    session: AsyncSession, type_: str, community_id: int, payload: dict[str, Any]
) -> None:
    """An event about a community object for the live stream (seen by those whose scope covers
    the community) and, when it names a unit (`unit_id`) that is a district department, for that
    department's console and webhooks too; published when the change commits."""
    await session.execute(
        _EMIT,
        {
            "type": type_,
            "community": community_id,
            "unit": payload.get("unit_id"),
            "payload": orjson.dumps(
                {"community_id": community_id, **payload}, default=str
            ).decode(),
        },
    )


def check_state(
    kind_zh: str, kind_en: str, state: str, action: str, machine: dict[str, set[str]]
) -> None:
    """A small state machine: `machine` maps each action to the states it may start from."""
    if state in machine.get(action, set()):
        return
    allowed = sorted(a for a, states in machine.items() if state in states)
    raise ApiError(
        "state_conflict",
        detail=f"{kind_zh}当前状态为 {state}，不能执行 {action}",
        detail_en=f"The {kind_en} is {state}; {action} is not allowed",
        extra={"state": state, "allowed_actions": allowed},
    )


async def workday_deadline(
    session: AsyncSession, start: datetime, days: int
) -> tuple[datetime, bool]:
    d = await deadlines.due(session, start, days, "days")
    return d.at, d.provisional


async def audit(
    session: AsyncSession,
    action: str,
    who: Principal | None,
    request: Request | None,
    object_type: str,
    object_id: int,
    detail: dict[str, Any] | None = None,
) -> None:
    await record(
        session,
        action,
        actor=who,
        request=request,
        object_type=object_type,
        object_id=object_id,
        detail=orjson.loads(orjson.dumps(detail or {}, default=str)),
    )


# --- units ------------------------------------------------------------------------------------


async def get_unit(session: AsyncSession, community: Community, unit_id: int) -> Unit:
    u = await session.get(Unit, unit_id)
    if u is None or u.community_id != community.id:
        raise not_found("共建单位", "Unit", unit_id)
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


# --- tasks ------------------------------------------------------------------------------------

TASK_MACHINE: dict[str, set[str]] = {
    "progress": {"open"},
    "done": {"open"},
    "cancel": {"open"},
}


async def create_task(
    session: AsyncSession,
    community: Community,
    who: Principal | None,
    *,
    source: str,
    ref_id: int,
    title: str,
    unit_id: int,
    due_days: int,
    start: datetime,
) -> Task:
    """A tracked task with its deadline in working days from `start` (not committed)."""
    due_at, provisional = await workday_deadline(session, start, due_days)
    t = Task(
        district_id=community.district_id,
        community_id=community.id,
        source=source,
        title=title,
        unit_id=unit_id,
        due_days=due_days,
        starts_at=start,
        due_at=due_at,
        provisional=provisional,
        created_by=who.user_id if who else None,
        **{f"{source}_id": ref_id},
    )
    session.add(t)
    await session.flush()
    await step(
        session,
        community,
        "task",
        t.id,
        "created",
        who,
        note=title,
        detail={"unit_id": unit_id, "due_at": due_at, "due_days": due_days, source + "_id": ref_id},
    )
    await emit_community(
        session,
        "community.task_created",
        community.id,
        {"task_id": t.id, "source": source, "unit_id": unit_id, "due_at": due_at},
    )
    return t


async def get_task(
    session: AsyncSession, community: Community, task_id: int, lock: bool = False
) -> Task:
    stmt = select(Task).where(Task.id == task_id)
    if lock:
        stmt = stmt.with_for_update()
    t = (await session.execute(stmt)).scalar_one_or_none()
    if t is None or t.community_id != community.id:
        raise not_found("任务", "Task", task_id)
    return t


async def act_on_task(
    session: AsyncSession,
    community: Community,
    task_id: int,
    action: str,
    who: Principal,
    request: Request | None,
    progress: int | None,
    note: str,
    now: datetime,
) -> Task:
    t = await get_task(session, community, task_id, lock=True)
    check_state("任务", "task", t.state, action, TASK_MACHINE)
    detail: dict[str, Any] = {}
    if action == "progress":
        if progress is not None:
            t.progress = progress
            detail["progress"] = progress
        t.progress_note = note
    elif action == "done":
        t.state, t.progress, t.done_at = "done", 100, now
        detail["on_time"] = now <= t.due_at
    else:
        t.state = "cancelled"
    label = {"progress": "progress", "done": "done", "cancel": "cancelled"}[action]
    await step(session, community, "task", t.id, label, who, note=note, detail=detail)
    await audit(session, f"community_task_{label}", who, request, "community_task", t.id, detail)
    await emit_community(
        session,
        "community.task_" + label,
        community.id,
        {"task_id": t.id, "unit_id": t.unit_id, "state": t.state, "progress": t.progress},
    )
    await session.commit()
    return t


_REF_COLUMN = {
    "meeting": " AND t.meeting_id = :ref",
    "project": " AND t.project_id = :ref",
    "matter": " AND t.matter_id = :ref",
}
_TASKS = """
    SELECT t.*, u.name AS unit_name,
           (t.state = 'open' AND t.due_at < :now) AS overdue
    FROM community_tasks t JOIN community_units u ON u.id = t.unit_id
    WHERE t.community_id = ANY(:communities)
"""


async def list_tasks(
    session: AsyncSession,
    communities: list[int],
    now: datetime,
    *,
    state: str | None = None,
    unit_id: int | None = None,
    overdue: bool | None = None,
    source: str | None = None,
    ref_id: int | None = None,
    task_id: int | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> list[Any]:
    sql = _TASKS
    params: dict[str, Any] = {"communities": communities, "now": now}
    if task_id is not None:
        sql += " AND t.id = :task"
        params["task"] = task_id
    if state:
        sql += " AND t.state = :state"
        params["state"] = state
    if unit_id is not None:
        sql += " AND t.unit_id = :unit"
        params["unit"] = unit_id
    if overdue is not None:
        sql += " AND (t.state = 'open' AND t.due_at < :now) = :overdue"
        params["overdue"] = overdue
    if source:
        sql += " AND t.source = :source"
        params["source"] = source
        if ref_id is not None:
            sql += _REF_COLUMN[source]
            params["ref"] = ref_id
    sql += " ORDER BY t.due_at, t.id LIMIT :limit OFFSET :offset"
    params.update(limit=limit, offset=offset)
    return list(await session.execute(text(sql), params))


_FIGURES = text(
    """
    SELECT
      (SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) n FROM community_needs
         WHERE community_id = ANY(:c) GROUP BY status) x) AS needs,
      (SELECT count(*) FROM community_needs n WHERE n.community_id = ANY(:c) AND n.status = 'open'
         AND NOT EXISTS (SELECT 1 FROM community_projects p
                         WHERE p.need_id = n.id AND p.status <> 'cancelled')) AS needs_unmatched,
      (SELECT count(*) FROM community_resources WHERE community_id = ANY(:c)
         AND valid_from <= :until_day AND (valid_until IS NULL OR valid_until >= :until_day))
         AS resources_valid,
      (SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) n FROM community_projects
         WHERE community_id = ANY(:c) GROUP BY status) x) AS projects,
      (SELECT count(*) FROM community_meetings WHERE community_id = ANY(:c) AND status = 'held'
         AND period = :period) AS meetings,
      (SELECT count(DISTINCT community_id) FROM community_units WHERE community_id = ANY(:c)
         AND is_member AND active) AS with_committee,
      (SELECT count(DISTINCT community_id) FROM community_meetings WHERE community_id = ANY(:c)
         AND status = 'held' AND period = :period) AS met,
      (SELECT jsonb_build_object(
          'due', count(*),
          'done', count(*) FILTER (WHERE state = 'done'),
          'done_on_time', count(*) FILTER (WHERE state = 'done' AND done_at <= due_at),
          'open_overdue', count(*) FILTER (WHERE state = 'open' AND due_at < :now),
          'escalated', count(*) FILTER (WHERE escalation_level > 0))
         FROM community_tasks WHERE community_id = ANY(:c) AND state <> 'cancelled'
           AND due_at >= :since AND due_at < :until) AS tasks,
      (SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) n FROM community_matters
         WHERE community_id = ANY(:c) GROUP BY status) x) AS matters,
      (SELECT round(avg(CASE WHEN rating IN ('satisfied', 'basic') THEN 1.0 ELSE 0 END), 4)
         FROM community_matter_ratings WHERE community_id = ANY(:c)
           AND at >= :since AND at < :until) AS satisfaction,
      (SELECT count(*) FROM party_members WHERE community_id = ANY(:c) AND active) AS members,
      (SELECT count(*) FROM volunteer_services WHERE community_id = ANY(:c) AND status = 'confirmed'
         AND served_on >= :since_day AND served_on < :until_day) AS services,
      (SELECT coalesce(sum(hours), 0) FROM volunteer_services WHERE community_id = ANY(:c)
         AND status = 'confirmed' AND served_on >= :since_day AND served_on < :until_day) AS hours,
      (SELECT jsonb_object_agg(rating, n) FROM (SELECT rating, count(*) n
         FROM community_unit_ratings WHERE community_id = ANY(:c) AND period = :period
         GROUP BY rating) x) AS ratings
    """
)


async def figures(
    session: AsyncSession, communities: list[int], period: str, now: datetime
) -> dict[str, Any]:
    """The quarter `period` in numbers: tasks due in it, meetings held in it, service done in it;
    the lists as they stand now."""
    from datetime import time as dtime

    start, end = quarter_bounds(period)
    since = datetime.combine(start, dtime(), SHANGHAI)
    until = datetime.combine(end, dtime(), SHANGHAI)
    r = (
        await session.execute(
            _FIGURES,
            {
                "c": communities,
                "period": period,
                "since": since,
                "until": until,
                "since_day": start,
                "until_day": end,
                "now": now,
            },
        )
    ).one()
    tasks: dict[str, Any] = dict(r.tasks or {})
    tasks["on_time_rate"] = (
        round(tasks["done_on_time"] / tasks["done"], 4) if tasks.get("done") else None
    )
    return {
        "period": period,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "communities": len(communities),
        "needs": r.needs or {},
        "needs_unmatched": r.needs_unmatched,
        "resources_valid": r.resources_valid,
        "projects": r.projects or {},
        "meetings": r.meetings,
        "communities_with_committee": r.with_committee,
        "communities_met": r.met,
        "tasks": tasks,
        "matters": r.matters or {},
        "matter_satisfaction": float(r.satisfaction) if r.satisfaction is not None else None,
        "party_members": r.members,
        "services": r.services,
        "service_hours": float(r.hours),
        "unit_ratings": r.ratings or {},
    }


# --- a department's own tasks -----------------------------------------------------------------

_DEPT_TASKS = """
    SELECT t.*, u.name AS unit_name, (t.state = 'open' AND t.due_at < :now) AS overdue
    FROM community_tasks t JOIN community_units u ON u.id = t.unit_id
    WHERE u.department_id IS NOT NULL
      AND (CAST(:all AS boolean) OR u.department_id = ANY(CAST(:depts AS bigint[])))
"""


def departments_of(who: Principal) -> tuple[bool, list[int]]:
    """(everything, the caller's departments) for department-facing task lists."""
    return who.is_admin, sorted(
        {p.department_id for p in who.posts if p.role == "department" and p.department_id}
    )


async def department_tasks(
    session: AsyncSession,
    who: Principal,
    now: datetime,
    state: str | None = None,
    task_id: int | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Any]:
    """Tracked tasks whose responsible unit is one of the caller's departments."""
    everything, depts = departments_of(who)
    sql = _DEPT_TASKS
    params: dict[str, Any] = {"now": now, "all": everything, "depts": depts}
    if state:
        sql += " AND t.state = :state"
        params["state"] = state
    if task_id is not None:
        sql += " AND t.id = :task"
        params["task"] = task_id
    sql += " ORDER BY t.due_at, t.id LIMIT :limit OFFSET :offset"
    params.update(limit=limit, offset=offset)
    return list(await session.execute(text(sql), params))


async def department_act(
    session: AsyncSession,
    who: Principal,
    task_id: int,
    action: str,
    request: Request | None,
    progress: int | None,
    note: str,
    now: datetime,
) -> None:
    """A department reports progress on, or finishes, a task it is responsible for."""
    rows = await department_tasks(session, who, now, task_id=task_id)
    if not rows:
        raise not_found("任务", "Task", task_id)
    community = await community_of(session, rows[0].community_id)
    await act_on_task(session, community, task_id, action, who, request, progress, note, now)
