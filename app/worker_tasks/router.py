"""Tasks for a named person: give one, read them, the worker's own queue (`/me/tasks`) and
answers, the street's decision on a department's task outside the admission list."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from app.auth.policy import OwnWork, TaskApprover, TaskAssigner, TaskReader
from app.db import DbSession
from app.http import ApiRoute
from app.i18n import request_lang
from app.schemas import IdPath, IdQuery
from app.worker_tasks import service
from app.worker_tasks.schemas import (
    Kind,
    MyTasksOut,
    State,
    TaskNoteIn,
    TaskReasonIn,
    WorkerTaskIn,
    WorkerTaskOut,
)

router = APIRouter(
    prefix="/api/v1",
    tags=["worker tasks"],
    route_class=ApiRoute,
    dependencies=[Depends(request_lang)],
)


def _now() -> datetime:
    return datetime.now(UTC)


Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=100_000)]


@router.post(
    "/worker-tasks",
    response_model=WorkerTaskOut,
    status_code=status.HTTP_201_CREATED,
    summary="Give a worker a task (the named one, or the grid's worker on duty)",
    description="The deadline counts working hours or days (the official calendar). A "
    "department's task of a kind outside the district's admission list (事务准入, `matter_code`) "
    "is not delivered: it waits (`pending_approval`) for the street to approve or refuse it.",
)
async def give(body: WorkerTaskIn, session: DbSession, who: TaskAssigner) -> Any:
    now = _now()
    t = await service.create(session, who, body, now)
    return await service.one(session, who, t.id, now, mine=False)


@router.get(
    "/worker-tasks", response_model=list[WorkerTaskOut], summary="Workers' tasks in your scope"
)
async def list_all(
    session: DbSession,
    who: TaskReader,
    state: State | None = None,
    kind: Kind | None = None,
    worker_id: IdQuery = None,
    grid_id: IdQuery = None,
    community_id: IdQuery = None,
    overdue: bool | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> Any:
    return await service.list_tasks(
        session,
        who,
        _now(),
        state=state,
        kind=kind,
        worker_id=worker_id,
        grid_id=grid_id,
        community_id=community_id,
        overdue=overdue,
        limit=limit,
        offset=offset,
    )


@router.get("/worker-tasks/{task_id}", response_model=WorkerTaskOut, summary="One task")
async def get_one(task_id: IdPath, session: DbSession, who: TaskReader) -> Any:
    return await service.one(session, who, task_id, _now(), mine=False)


async def _act(session: Any, who: Any, task_id: int, action: str, note: str, mine: bool) -> Any:
    now = _now()
    await service.act(session, who, task_id, action, now, note)
    return await service.one(session, who, task_id, now, mine=mine)


@router.post(
    "/worker-tasks/{task_id}/cancel", response_model=WorkerTaskOut, summary="Withdraw a task"
)
async def cancel(task_id: IdPath, body: TaskNoteIn, session: DbSession, who: TaskAssigner) -> Any:
    return await _act(session, who, task_id, "cancel", body.note, mine=False)


@router.post(
    "/worker-tasks/{task_id}/approve",
    response_model=WorkerTaskOut,
    summary="The street lets a department's task outside the admission list through",
)
async def approve(task_id: IdPath, body: TaskNoteIn, session: DbSession, who: TaskApprover) -> Any:
    return await _act(session, who, task_id, "approve", body.note, mine=False)


@router.post(
    "/worker-tasks/{task_id}/refuse",
    response_model=WorkerTaskOut,
    summary="The street refuses a department's task outside the admission list (with a reason)",
)
async def refuse(task_id: IdPath, body: TaskReasonIn, session: DbSession, who: TaskApprover) -> Any:
    return await _act(session, who, task_id, "refuse", body.reason, mine=False)


@router.get(
    "/me/tasks",
    response_model=MyTasksOut,
    summary="My tasks (default: open and accepted, soonest deadline first) and their counts",
)
async def my_tasks(
    session: DbSession,
    who: OwnWork,
    state: State | None = None,
    limit: Limit = 200,
    offset: Offset = 0,
) -> Any:
    now = _now()
    return {
        "counts": await service.my_counts(session, who, now),
        "items": await service.list_tasks(
            session, who, now, mine=True, state=state, limit=limit, offset=offset
        ),
    }


@router.post("/me/tasks/{task_id}/accept", response_model=WorkerTaskOut, summary="Accept my task")
async def accept(task_id: IdPath, body: TaskNoteIn, session: DbSession, who: OwnWork) -> Any:
    return await _act(session, who, task_id, "accept", body.note, mine=True)


@router.post(
    "/me/tasks/{task_id}/done", response_model=WorkerTaskOut, summary="Report my task done (result)"
)
async def done(task_id: IdPath, body: TaskNoteIn, session: DbSession, who: OwnWork) -> Any:
    return await _act(session, who, task_id, "done", body.note, mine=True)


@router.post(
    "/me/tasks/{task_id}/decline",
    response_model=WorkerTaskOut,
    summary="Decline my task (a reason)",
)
async def decline(task_id: IdPath, body: TaskReasonIn, session: DbSession, who: OwnWork) -> Any:
    return await _act(session, who, task_id, "decline", body.reason, mine=True)
