"""Tracked tasks, the one thing every community mechanism produces (a meeting's resolution, a
project's work, a deliberation's executors): a responsible unit, a deadline in working days,
progress, done or cancelled; reminded and escalated by the loop's clock (`app.community.clock`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community.areas import Community, community_of
from app.community.models import Task
from app.community.records import audit, check_state, emit_community, step
from app.errors import not_found
from app.loop import deadlines


async def workday_deadline(
    session: AsyncSession, start: datetime, days: int
) -> tuple[datetime, bool]:
    d = await deadlines.due(session, start, days, "days")
    return d.at, d.provisional


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
    await session.flush()
    return t


_OPEN_OF = {
    source: text(
        f"SELECT id FROM community_tasks WHERE {source}_id = :ref AND state = 'open' ORDER BY id"
    )
    for source in ("meeting", "project", "matter")
}


async def open_task_ids(session: AsyncSession, source: str, ref_id: int) -> list[int]:
    """The open tasks of a meeting, project or matter."""
    return list((await session.execute(_OPEN_OF[source], {"ref": ref_id})).scalars())


async def cancel_open_tasks(
    session: AsyncSession,
    community: Community,
    source: str,
    ref_id: int,
    who: Principal | None,
    note: str,
) -> list[int]:
    """Cancel the open tasks of a cancelled meeting, project or matter (so nobody is reminded or
    escalated about work that is no longer wanted); their ids."""
    ids = await open_task_ids(session, source, ref_id)
    for t in (
        await session.execute(select(Task).where(Task.id.in_(ids)).with_for_update())
    ).scalars():
        t.state = "cancelled"
        await step(session, community, "task", t.id, "cancelled", who, note=note)
        await emit_community(
            session,
            "community.task_cancelled",
            community.id,
            {"task_id": t.id, "unit_id": t.unit_id, "state": t.state, "progress": t.progress},
        )
    return ids


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
