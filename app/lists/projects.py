"""The projects list (项目清单): a need matched with resources and units, its tracked tasks, its
start, progress, completion (with its evaluation, once every task is done) or cancellation."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import records
from app.community import service as community_units
from app.community import tasks as tracked
from app.community.areas import Community
from app.community.schemas import TaskIn
from app.errors import ApiError, not_found
from app.lists.models import Need, Project, ProjectResource, ProjectUnit
from app.lists.needs import need_row
from app.lists.resources import list_resources
from app.lists.schemas import ProjectIn

ProjectActionName = Literal["start", "progress", "complete", "cancel"]
PROJECT_MACHINE: dict[str, set[str]] = {
    "start": {"planned"},
    "progress": {"in_progress"},
    "complete": {"in_progress"},
    "cancel": {"planned", "in_progress"},
}


async def create_project(
    session: AsyncSession,
    community: Community,
    body: ProjectIn,
    who: Principal,
    request: Request | None,
    now: datetime,
    today: date,
) -> int:
    need = await session.get(Need, body.need_id, with_for_update=True)
    if need is None or need.community_id != community.id:
        raise ApiError(
            "validation_error",
            field="need_id",
            detail="本社区没有该需求",
            detail_en="No such need in this community",
        )
    if need.status != "open":
        raise ApiError(
            "state_conflict",
            field="need_id",
            detail=f"需求当前状态为 {need.status}，只能为待对接的需求立项",
            detail_en=f"The need is {need.status}; only an open need can become a project",
            extra={"state": need.status, "allowed_actions": ["close"]},
        )
    await community_units.check_units(
        session, community, [body.lead_unit_id, *body.unit_ids], "unit_ids"
    )
    await community_units.check_units(session, community, [t.unit_id for t in body.tasks], "tasks")
    found = await list_resources(session, [community.id], today, ids=body.resource_ids, valid=True)
    missing = sorted(set(body.resource_ids) - {r.id for r in found})
    if missing:
        raise ApiError(
            "validation_error",
            field="resource_ids",
            detail=f"这些资源不属于本社区或已过有效期：{missing}",
            detail_en=f"Not resources of this community, or no longer valid: {missing}",
        )
    p = Project(
        district_id=community.district_id,
        community_id=community.id,
        need_id=need.id,
        title=body.title,
        lead_unit_id=body.lead_unit_id,
        due_on=body.due_on,
        created_by=who.user_id,
    )
    session.add(p)
    await session.flush()
    scope = {"district_id": community.district_id, "community_id": community.id}
    for rid in sorted(set(body.resource_ids)):
        session.add(ProjectResource(**scope, project_id=p.id, resource_id=rid))
    units = set(body.unit_ids) | {r.unit_id for r in found} | {body.lead_unit_id}
    for uid in sorted(units):
        session.add(ProjectUnit(**scope, project_id=p.id, unit_id=uid))
    need.status = "matched"
    detail = body.model_dump(mode="json")
    await records.step(
        session, community, "project", p.id, "created", who, note=p.title, detail=detail
    )
    await records.step(
        session,
        community,
        "need",
        need.id,
        "matched",
        who,
        note=p.title,
        detail={"project_id": p.id},
    )
    for t in body.tasks:
        await tracked.create_task(
            session,
            community,
            who,
            source="project",
            ref_id=p.id,
            title=t.title,
            unit_id=t.unit_id,
            due_days=t.due_days,
            start=now,
        )
    await records.audit(
        session, "community_project_created", who, request, "community_project", p.id, detail
    )
    await session.flush()
    return p.id


async def act_on_project(
    session: AsyncSession,
    community: Community,
    project_id: int,
    action: str,
    who: Principal,
    request: Request | None,
    progress: int | None,
    evaluation: str | None,
    note: str,
    now: datetime,
) -> None:
    p = await session.get(Project, project_id, with_for_update=True)
    if p is None or p.community_id != community.id:
        raise not_found("项目", "Project", project_id)
    records.check_state("项目", "project", p.status, action, PROJECT_MACHINE)
    need = await session.get(Need, p.need_id, with_for_update=True)
    assert need is not None
    detail: dict[str, Any] = {}
    if action == "start":
        p.status = "in_progress"
    elif action == "progress":
        if progress is None:
            raise ApiError(
                "validation_error",
                field="progress",
                detail="需要进度",
                detail_en="progress is required",
            )
        p.progress = progress
        detail["progress"] = progress
    elif action == "complete":
        if evaluation is None:
            raise ApiError(
                "validation_error",
                field="evaluation",
                detail="完成项目需要完成评价（优秀/合格/不合格）",
                detail_en="Completing a project needs its evaluation",
            )
        still_open = await tracked.open_task_ids(session, "project", p.id)
        if still_open:
            raise records.state_conflict(
                f"还有 {len(still_open)} 项任务未完成，项目不能结项",
                f"{len(still_open)} tasks of the project are still open",
                p.status,
                sorted(a for a, states in PROJECT_MACHINE.items() if p.status in states),
                open_tasks=still_open,
            )
        p.status, p.progress, p.completed_at = "done", 100, now
        p.evaluation, p.evaluation_note = evaluation, note
        need.status = "done"
        detail["evaluation"] = evaluation
        await records.step(
            session, community, "need", need.id, "done", who, detail={"project_id": p.id}
        )
    else:
        p.status = "cancelled"
        need.status = "open"
        detail["cancelled_task_ids"] = await tracked.cancel_open_tasks(
            session, community, "project", p.id, who, note
        )
        await records.step(
            session, community, "need", need.id, "reopened", who, detail={"project_id": p.id}
        )
    await records.step(session, community, "project", p.id, action, who, note=note, detail=detail)
    await records.audit(
        session, f"community_project_{action}", who, request, "community_project", p.id, detail
    )
    await session.flush()


async def add_task(
    session: AsyncSession,
    community: Community,
    project_id: int,
    body: TaskIn,
    who: Principal,
    request: Request | None,
    now: datetime,
) -> None:
    p = await session.get(Project, project_id, with_for_update=True)
    if p is None or p.community_id != community.id:
        raise not_found("项目", "Project", project_id)
    records.check_state(
        "项目",
        "project",
        p.status,
        "add_task",
        {**PROJECT_MACHINE, "add_task": {"planned", "in_progress"}},
    )
    await community_units.check_units(session, community, [body.unit_id], "unit_id")
    t = await tracked.create_task(
        session,
        community,
        who,
        source="project",
        ref_id=p.id,
        title=body.title,
        unit_id=body.unit_id,
        due_days=body.due_days,
        start=now,
    )
    await records.audit(
        session, "community_task_created", who, request, "community_task", t.id, body.model_dump()
    )
    await session.flush()


async def project_detail(
    session: AsyncSession, communities: list[int], project_id: int, now: datetime, today: date
) -> dict[str, Any]:
    p = await session.get(Project, project_id)
    if p is None or p.community_id not in communities:
        raise not_found("项目", "Project", project_id)
    await session.refresh(p)
    need = await need_row(session, [p.community_id], p.need_id)
    rids = list(
        (
            await session.execute(
                select(ProjectResource.resource_id).where(ProjectResource.project_id == p.id)
            )
        ).scalars()
    )
    uids = list(
        (
            await session.execute(select(ProjectUnit.unit_id).where(ProjectUnit.project_id == p.id))
        ).scalars()
    )
    resources = await list_resources(session, [p.community_id], today, ids=rids)
    project_tasks = await tracked.list_tasks(
        session, [p.community_id], now, source="project", ref_id=p.id
    )
    steps = await records.timeline(session, "project", p.id)
    return {
        **{c.name: getattr(p, c.name) for c in Project.__table__.columns},
        "need": dict(need._mapping),
        "unit_ids": sorted(uids),
        "resources": [dict(r._mapping) for r in resources],
        "tasks": [dict(t._mapping) for t in project_tasks],
        "timeline": steps,
    }
