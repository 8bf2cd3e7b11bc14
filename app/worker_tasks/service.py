"""Tasks for a named person: giving one (to a named worker, or the grid's worker on duty), the
admission check a department's task goes through (事务准入: outside the list it waits for the
street), the worker's own queue and answers (accept, done, decline with a reason), and the
events every change sends (the worker's stream and push notifications read them)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.admission import service as admission
from app.areas.service import up_chain
from app.auth import scope
from app.auth.policy import RULES, Principal
from app.duty.service import duty_worker
from app.errors import ApiError, FieldError, not_found
from app.events import outbox
from app.loop import deadlines
from app.schemas import SHANGHAI
from app.worker_tasks.models import WorkerTask
from app.worker_tasks.schemas import WorkerTaskIn

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "invalid_task": (422, "任务内容不合规", "The task is not valid"),
    "no_worker_on_duty": (
        422,
        "该网格当前无人值班，请指定网格员",
        "Nobody is on duty in the grid: name a worker",
    ),
    "task_state": (409, "任务当前状态不允许该操作", "The task's state does not allow this"),
}
"""This module's error codes (registered in `app.extensions`)."""

ISSUER_ORDER = ("admin", "centre", "street", "community", "department")
MACHINE: dict[str, set[str]] = {
    "accept": {"open"},
    "done": {"open", "accepted"},
    "decline": {"open", "accepted"},
    "cancel": {"pending_approval", "open", "accepted"},
    "approve": {"pending_approval"},
    "refuse": {"pending_approval"},
}
STATE_OF = {
    "accept": "accepted",
    "done": "done",
    "decline": "declined",
    "cancel": "cancelled",
    "approve": "open",
    "refuse": "refused",
}


def _bad(field: str, zh: str, en: str, code: str = "invalid_task") -> ApiError:
    return ApiError(
        code, detail=zh, detail_en=en, field=field, errors=[FieldError(field, code, zh, en)]
    )


# --- events ----------------------------------------------------------------------------------

_EMIT = text(
    """
    INSERT INTO event_intents (type, district_id, grid_id, area_ids, department_ids, payload)
    VALUES (:type, :district, CAST(:grid AS bigint), CAST(:areas AS bigint[]),
            CAST(:depts AS bigint[]), CAST(:payload AS jsonb))
    """
)


async def emit_task(session: AsyncSession, type_: str, t: WorkerTask | Any, **extra: Any) -> None:
    """An event about a task, published when the change commits: seen by the staff of the areas
    above its community, by its grid's workers on their stream (once it is delivered: not while
    it waits for the street), by the department that pushed it down; pushed to the worker."""
    delivered = t.state not in ("pending_approval", "refused")
    payload = {
        "task_id": t.id,
        "kind": t.kind,
        "title": t.title,
        "state": t.state,
        "worker_id": t.worker_id,
        "grid_id": t.grid_id,
        "community_id": t.community_id,
        "case_id": t.case_id,
        "due_at": t.due_at,
        **extra,
    }
    outbox.queued(session)
    await session.execute(
        _EMIT,
        {
            "type": type_,
            "district": t.district_id,
            "areas": (await up_chain(session, t.community_id))[0],
            "grid": t.grid_id if delivered else None,
            "depts": [t.department_id] if t.department_id else [],
            "payload": orjson.dumps(payload, default=str).decode(),
        },
    )


# --- giving a task ---------------------------------------------------------------------------

_CASE = text(
    "SELECT id, district_id, grid_id, community_id, number, title, status FROM cases WHERE id = :id"
)
_GRID = text(
    """
    SELECT g.id, g.community_id, s.parent_id AS district_id, c.parent_id AS street_id
    FROM grids g JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id
    WHERE g.id = :id AND g.deleted_at IS NULL
    """
)
_WORKER_GRIDS = text(
    """
    SELECT pg.grid_id FROM posts p JOIN post_grids pg ON pg.post_id = p.id
    JOIN grids g ON g.id = pg.grid_id
    WHERE p.user_id = :user AND p.role IN ('grid_worker', 'grid_leader')
      AND p.starts_on <= current_date AND (p.ends_on IS NULL OR p.ends_on >= current_date)
      AND (CAST(:community AS bigint) IS NULL OR g.community_id = :community)
    ORDER BY p.id, pg.grid_id
    """
)
_GRID_WORKER = text(
    """
    SELECT p.user_id FROM posts p JOIN post_grids pg ON pg.post_id = p.id
    WHERE pg.grid_id = :grid AND p.role = 'grid_worker'
      AND p.starts_on <= current_date AND (p.ends_on IS NULL OR p.ends_on >= current_date)
    ORDER BY CASE coalesce(p.worker_type, 'full_time') WHEN 'full_time' THEN 0
                  WHEN 'part_time' THEN 1 ELSE 2 END, p.id
    LIMIT 1
    """
)
_ON_SLOT = text(
    """
    SELECT 1 FROM duty_slots WHERE district_id = :district AND user_id = :user
      AND community_id = :community LIMIT 1
    """
)
_RUNNING_CHECK = text(
    """
    SELECT 1 FROM worker_tasks WHERE district_id = :district AND case_id = :case
      AND kind = 'verification' AND state IN ('open', 'accepted')
    """
)
_MEETING = text("SELECT 1 FROM community_meetings WHERE id = :id AND community_id = :community")
_DEPT_DISTRICT = text("SELECT district_id FROM departments WHERE id = :id")


def issuer_of(who: Principal) -> tuple[str, int | None]:
    """The post the caller gives the task as: the highest of their roles that may; a department
    post names the department (the admission list then applies)."""
    rule = RULES["tasks:assign"]
    posts = who.posts_for(rule)
    role = min((p.role for p in posts), key=ISSUER_ORDER.index)
    dept = next((p.department_id for p in posts if p.role == "department"), None)
    return role, dept if role == "department" else None


async def grid_place(session: AsyncSession, grid_id: int) -> Any:
    row = (await session.execute(_GRID, {"id": grid_id})).first()
    if row is None:
        raise _bad("grid_id", f"网格不存在：{grid_id}", f"No such grid: {grid_id}")
    return row


async def create(
    session: AsyncSession, who: Principal, body: WorkerTaskIn, now: datetime
) -> WorkerTask:
    role, dept = issuer_of(who)
    case = None
    if body.case_id is not None:
        case = (await session.execute(_CASE, {"id": body.case_id})).first()
        if case is None:
            raise _bad("case_id", f"事件不存在：{body.case_id}", f"No such case: {body.case_id}")
    if body.kind == "verification" and case is None:
        raise _bad("case_id", "现场核查任务须指定事件", "A verification names its case")
    if (
        body.kind == "verification"
        and case is not None
        and (
            await session.execute(_RUNNING_CHECK, {"case": case.id, "district": case.district_id})
        ).first()
        is not None
    ):
        raise ApiError(
            "conflict",
            detail=f"事件 {case.id} 已有进行中的现场核查任务",
            detail_en=f"Case {case.id} already has a running verification task",
            field="case_id",
        )
    grid_id = body.grid_id or (case.grid_id if case is not None else None)
    if grid_id is None and body.worker_id is not None:
        grid_id = (
            await session.execute(_WORKER_GRIDS, {"user": body.worker_id, "community": None})
        ).scalar()
    if grid_id is None:
        raise _bad("grid_id", "须指定网格（或事件、网格员）", "Name a grid (or a case, a worker)")
    place = await grid_place(session, grid_id)
    if case is not None and case.district_id != place.district_id:
        raise _bad("case_id", "事件不在该网格所属区县", "The case is in another district")
    # The issuer's scope: area staff below their areas, a department in its district.
    if role == "department":
        d = (await session.execute(_DEPT_DISTRICT, {"id": dept})).scalar()
        if d is not None and d != place.district_id:
            raise not_found("网格", "Grid", grid_id)
    elif not await scope.area_in_scope(session, who, RULES["tasks:assign"], place.community_id):
        raise not_found("网格", "Grid", grid_id)
    if (
        body.meeting_id is not None
        and (
            await session.execute(
                _MEETING, {"id": body.meeting_id, "community": place.community_id}
            )
        ).first()
        is None
    ):
        raise _bad("meeting_id", "会议不属于该社区", "The meeting is not of this community")
    worker = body.worker_id
    if worker is None:
        worker = await duty_worker(session, place.district_id, grid_id, now)
        if worker is None:
            raise _bad(
                "worker_id",
                "该网格当前无人值班，请指定网格员",
                "Nobody is on duty in the grid: name a worker",
                code="no_worker_on_duty",
            )
    else:
        works_here = (
            await session.execute(_WORKER_GRIDS, {"user": worker, "community": place.community_id})
        ).first() is not None or (
            await session.execute(
                _ON_SLOT,
                {"district": place.district_id, "user": worker, "community": place.community_id},
            )
        ).first() is not None
        if not works_here:
            raise _bad(
                "worker_id",
                f"用户 {worker} 不是该社区的网格员",
                f"User {worker} is not a grid worker of this community",
            )
    item_id = None
    outside = False
    if role == "department" and dept is not None:
        item_id = await admission.admitted(
            session,
            place.district_id,
            dept,
            body.matter_code,
            body.kind,
            now.astimezone(SHANGHAI).date(),
        )
        outside = item_id is None
    t = WorkerTask(
        district_id=place.district_id,
        community_id=place.community_id,
        grid_id=grid_id,
        worker_id=worker,
        kind=body.kind,
        title=body.title,
        description=body.description,
        case_id=case.id if case is not None else None,
        meeting_id=body.meeting_id,
        issuer_role=role,
        department_id=dept,
        matter_code=body.matter_code,
        admission_item_id=item_id,
        outside_list=outside,
        state="pending_approval" if outside else "open",
        due_value=body.due_value,
        due_unit=body.due_unit,
        created_by=who.user_id,
        escalation_level=0,
        provisional=False,
    )
    if not outside:
        await _start(session, t, now)
    session.add(t)
    await session.flush()
    await emit_task(session, "task.pending_approval" if outside else "task.created", t, issuer=role)
    return t


async def _start(session: AsyncSession, t: WorkerTask, now: datetime) -> None:
    d = await deadlines.due(session, now, float(t.due_value), t.due_unit)
    t.starts_at, t.due_at, t.provisional = now, d.at, d.provisional


# --- reading -----------------------------------------------------------------------------------

_TASKS = """
    SELECT t.*, u.display_name AS worker_name,
           (t.state IN ('open', 'accepted') AND t.due_at < :now) AS overdue
    FROM worker_tasks t JOIN users u ON u.id = t.worker_id
    WHERE t.district_id = ANY(CAST(:districts AS bigint[]))
"""


async def list_tasks(
    session: AsyncSession,
    who: Principal,
    now: datetime,
    *,
    mine: bool = False,
    task_id: int | None = None,
    state: str | None = None,
    kind: str | None = None,
    worker_id: int | None = None,
    grid_id: int | None = None,
    community_id: int | None = None,
    overdue: bool | None = None,
    limit: int = 200,
    offset: int = 0,
) -> list[Any]:
    """Tasks the caller may read (`mine`: only their own, whatever their other posts)."""
    params: dict[str, Any] = {"now": now, "districts": await scope.districts_of(session, who)}
    sql = _TASKS
    if mine:
        sql += " AND t.worker_id = :me"
        params["me"] = who.user_id
    else:
        resolved = scope.leader_scope(await scope.resolve(session, who), who)
        vis = scope.personal_work_sql(resolved, "t")
        sql += f" AND {vis.sql}"
        params.update(vis.binds)
    for name, value, cond in (
        ("task", task_id, "t.id = :task"),
        ("state", state, "t.state = :state"),
        ("kind", kind, "t.kind = :kind"),
        ("worker", worker_id, "t.worker_id = :worker"),
        ("grid", grid_id, "t.grid_id = :grid"),
        ("community", community_id, "t.community_id = :community"),
    ):
        if value is not None:
            sql += f" AND {cond}"
            params[name] = value
    if mine and state is None and task_id is None:
        sql += " AND t.state IN ('open', 'accepted')"
    if overdue is not None:
        sql += " AND (t.state IN ('open', 'accepted') AND t.due_at < :now) = :overdue"
        params["overdue"] = overdue
    sql += " ORDER BY t.due_at NULLS LAST, t.id LIMIT :limit OFFSET :offset"
    params.update(limit=limit, offset=offset)
    return list(await session.execute(text(sql), params))


_COUNTS = text(
    """
    SELECT count(*) AS open,
           count(*) FILTER (WHERE (t.due_at AT TIME ZONE 'Asia/Shanghai')::date
                            = (CAST(:now AS timestamptz) AT TIME ZONE 'Asia/Shanghai')::date)
               AS due_today,
           count(*) FILTER (WHERE t.due_at < :now) AS overdue
    FROM worker_tasks t
    WHERE t.district_id = ANY(CAST(:districts AS bigint[])) AND t.worker_id = :me
      AND t.state IN ('open', 'accepted')
    """
)


async def my_counts(session: AsyncSession, who: Principal, now: datetime) -> dict[str, int]:
    row = (
        await session.execute(
            _COUNTS,
            {"now": now, "me": who.user_id, "districts": await scope.districts_of(session, who)},
        )
    ).one()
    return dict(row._mapping)


async def one(
    session: AsyncSession, who: Principal, task_id: int, now: datetime, mine: bool
) -> Any:
    rows = await list_tasks(session, who, now, mine=mine, task_id=task_id)
    if not rows:
        raise not_found("任务", "Task", task_id)
    return rows[0]


# --- acting on a task --------------------------------------------------------------------------


async def _locked(session: AsyncSession, row: Any) -> WorkerTask:
    t = (
        await session.execute(
            select(WorkerTask)
            .where(WorkerTask.id == row.id, WorkerTask.district_id == row.district_id)
            .with_for_update()
        )
    ).scalar_one()
    return t


def _check(t: WorkerTask, action: str) -> None:
    if t.state not in MACHINE[action]:
        raise ApiError(
            "task_state",
            detail=f"任务处于「{t.state}」状态，不能执行「{action}」",
            detail_en=f"The task is {t.state}; {action} is not allowed",
            extra={"state": t.state},
        )


async def act(
    session: AsyncSession,
    who: Principal,
    task_id: int,
    action: str,
    now: datetime,
    note: str = "",
) -> WorkerTask:
    """The worker's answer (accept, done, decline) to their own task; the issuer's cancel; the
    street's approve or refuse of a task outside the admission list."""
    mine = action in ("accept", "done", "decline")
    row = await one(session, who, task_id, now, mine=mine)
    t = await _locked(session, row)
    _check(t, action)
    if (
        action == "cancel"
        and not (who.is_admin or t.created_by == who.user_id)
        and (
            t.issuer_role == "department"
            or not await scope.area_in_scope(session, who, RULES["tasks:assign"], t.community_id)
        )
    ):
        raise ApiError(
            "forbidden",
            detail="只有派发人或其上级区域可以撤销任务",
            detail_en="Only who gave the task (or their areas' staff) may cancel it",
        )
    if (
        action in ("approve", "refuse")
        and not who.is_admin
        and not await scope.area_in_scope(session, who, RULES["tasks:approve"], t.community_id)
    ):
        raise not_found("任务", "Task", task_id)
    t.state = STATE_OF[action]
    extra: dict[str, Any] = {}
    if action == "accept":
        t.accepted_at = now
    elif action == "done":
        t.finished_at, t.result = now, note
        extra["on_time"] = t.due_at is None or now <= t.due_at
    elif action == "decline":
        t.finished_at, t.reason = now, note
        extra["reason"] = note
    elif action == "cancel":
        t.finished_at = now
    elif action in ("approve", "refuse"):
        t.decided_by, t.decided_at, t.decision_reason = who.user_id, now, note
        if action == "approve":
            await _start(session, t, now)
        else:
            extra["reason"] = note
    await session.flush()
    event = {"approve": "task.created", "refuse": "task.refused"}.get(action, "task." + t.state)
    await emit_task(session, event, t, action=action, **extra)
    return t
