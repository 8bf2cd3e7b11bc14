"""The three lists: needs (from grids or recurring cases), resources, matches, projects, reviews."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import Request
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import service as cs
from app.community.schemas import TaskIn
from app.community.service import Community
from app.errors import ApiError, not_found
from app.lists.models import Need, Project, ProjectResource, ProjectUnit, Resource
from app.lists.schemas import NeedFromCases, NeedIn, ProjectIn, ResourceIn

MATCH_RADIUS_M = 5000.0
"""Distance at which a resource's nearness stops adding to its match score."""
KIND_FIT: dict[str, tuple[str, ...]] = {
    "elderly": ("volunteers", "venue", "skills"),
    "children": ("volunteers", "venue", "skills"),
    "disability": ("volunteers", "skills", "money"),
    "environment": ("volunteers", "equipment", "money"),
    "facilities": ("money", "equipment", "skills"),
    "safety": ("equipment", "skills", "volunteers"),
    "parking": ("money", "venue", "equipment"),
    "culture": ("venue", "volunteers", "money"),
    "health": ("skills", "volunteers", "venue"),
    "employment": ("skills", "venue"),
    "legal": ("skills",),
    "other": ("money", "volunteers"),
}
"""The resource kinds that usually serve a need category."""


def point(p: Any) -> Any:
    return None if p is None else func.ST_SetSRID(func.ST_MakePoint(p.lon, p.lat), 4326)


# --- needs ------------------------------------------------------------------------------------

NEED_COLUMNS = """
    n.id, n.community_id, n.grid_id, n.title, n.description, n.category, n.households, n.urgency,
    n.source, n.case_category, n.case_count, n.status, n.created_at,
    ST_X(n.location) AS lon, ST_Y(n.location) AS lat
"""


async def list_needs(
    session: AsyncSession,
    communities: list[int],
    *,
    status: str | None = None,
    category: str | None = None,
    grid_id: int | None = None,
    unmatched: bool | None = None,
    need_id: int | None = None,
) -> list[Any]:
    sql = f"SELECT {NEED_COLUMNS} FROM community_needs n WHERE n.community_id = ANY(:c)"
    params: dict[str, Any] = {"c": communities}
    if need_id is not None:
        sql += " AND n.id = :id"
        params["id"] = need_id
    if status:
        sql += " AND n.status = :status"
        params["status"] = status
    if category:
        sql += " AND n.category = :category"
        params["category"] = category
    if grid_id is not None:
        sql += " AND n.grid_id = :grid"
        params["grid"] = grid_id
    if unmatched is not None:
        sql += (
            " AND (n.status = 'open' AND NOT EXISTS (SELECT 1 FROM community_projects p "
            "WHERE p.need_id = n.id AND p.status <> 'cancelled')) = :unmatched"
        )
        params["unmatched"] = unmatched
    sql += " ORDER BY CASE n.urgency WHEN 'high' THEN 0 WHEN 'normal' THEN 1 ELSE 2 END, n.id DESC"
    return list(await session.execute(text(sql + " LIMIT 2000"), params))


async def need_row(session: AsyncSession, communities: list[int], need_id: int) -> Any:
    rows = await list_needs(session, communities, need_id=need_id)
    if not rows:
        raise not_found("需求", "Need", need_id)
    return rows[0]


_GRID_POINT = text(
    """
    SELECT ST_PointOnSurface(b.boundary) FROM grid_boundaries b
    WHERE b.grid_id = :g ORDER BY (b.valid_to IS NULL) DESC, b.valid_from DESC LIMIT 1
    """
)
_AREA_POINT = text("SELECT ST_PointOnSurface(boundary) FROM areas WHERE id = :a")


async def _default_point(session: AsyncSession, community_id: int, grid_id: int | None) -> Any:
    if grid_id is not None:
        p = (await session.execute(_GRID_POINT, {"g": grid_id})).scalar()
        if p is not None:
            return p
    return (await session.execute(_AREA_POINT, {"a": community_id})).scalar()


async def check_grid(session: AsyncSession, community: Community, grid_id: int | None) -> None:
    if grid_id is None:
        return
    row = (
        await session.execute(
            text("SELECT community_id FROM grids WHERE id = :g AND deleted_at IS NULL"),
            {"g": grid_id},
        )
    ).first()
    if row is None or row.community_id != community.id:
        raise ApiError(
            "validation_error",
            field="grid_id",
            detail="网格不属于该社区",
            detail_en="The grid is not in this community",
        )


async def create_need(
    session: AsyncSession,
    community: Community,
    body: NeedIn,
    who: Principal,
    request: Request | None,
    extra: dict[str, Any] | None = None,
) -> int:
    await check_grid(session, community, body.grid_id)
    n = Need(
        district_id=community.district_id,
        community_id=community.id,
        **body.model_dump(exclude={"location"}),
        **(extra or {}),
        created_by=who.user_id,
    )
    n.location = (
        point(body.location)
        if body.location
        else await _default_point(session, community.id, body.grid_id)
    )
    session.add(n)
    await session.flush()
    detail = {**body.model_dump(exclude={"location"}), **(extra or {})}
    await cs.step(session, community, "need", n.id, "created", who, note=n.title, detail=detail)
    await cs.audit(session, "community_need_created", who, request, "community_need", n.id, detail)
    await session.commit()
    return n.id


_CANDIDATES = text(
    """
    SELECT c.category_code AS case_category, k.name, count(*) AS cases,
           count(*) FILTER (WHERE c.status NOT IN ('closed', 'rejected')) AS open_cases,
           EXISTS (SELECT 1 FROM community_needs n WHERE n.community_id = :c
                   AND n.case_category = c.category_code AND n.status IN ('open', 'matched'))
             AS already_a_need
    FROM cases c JOIN categories k ON k.code = c.category_code
    WHERE c.community_id = :c AND c.reported_at >= CAST(:now AS timestamptz) - make_interval(days => :days)
      AND c.duplicate_of IS NULL AND c.status <> 'rejected'
    GROUP BY c.category_code, k.name
    HAVING count(*) >= :min
    ORDER BY count(*) DESC, c.category_code
    """
)


async def case_candidates(
    session: AsyncSession, community: Community, days: int, min_cases: int, now: datetime
) -> list[Any]:
    """Case types that keep coming back in the community: candidates for the needs list."""
    params = {"c": community.id, "days": days, "min": min_cases, "now": now}
    return list(await session.execute(_CANDIDATES, params))


_CASE_COUNT = text(
    """
    SELECT count(*) AS cases, count(DISTINCT c.building_id) AS buildings,
           (SELECT name FROM categories WHERE code = :k) AS name
    FROM cases c
    WHERE c.community_id = :c AND c.category_code = :k AND c.duplicate_of IS NULL
      AND c.status <> 'rejected'
      AND c.reported_at >= CAST(:now AS timestamptz) - make_interval(days => :days)
    """
)


async def need_from_cases(
    session: AsyncSession,
    community: Community,
    body: NeedFromCases,
    who: Principal,
    request: Request | None,
    now: datetime,
) -> int:
    """Turn a recurring case type into a need (source 'case', with the case count)."""
    row = (
        await session.execute(
            _CASE_COUNT,
            {"c": community.id, "k": body.case_category, "days": body.days, "now": now},
        )
    ).one()
    if row.name is None:
        raise ApiError(
            "validation_error",
            field="case_category",
            detail=f"没有该事件类别：{body.case_category}",
            detail_en=f"No such case category: {body.case_category}",
        )
    if row.cases == 0:
        raise ApiError(
            "validation_error",
            field="case_category",
            detail=f"近 {body.days} 天本社区没有该类事件",
            detail_en=f"No such cases in the community in the last {body.days} days",
        )
    need = NeedIn(
        title=body.title or f"{row.name}反复发生（近{body.days}天{row.cases}件）",
        description=f"由事件转化：近 {body.days} 天本社区共 {row.cases} 件「{row.name}」事件",
        category=body.category,
        households=body.households if body.households is not None else row.cases,
        urgency=body.urgency,
        source="case",
    )
    extra = {"case_category": body.case_category, "case_count": row.cases}
    return await create_need(session, community, need, who, request, extra)


NEED_MACHINE: dict[str, set[str]] = {"close": {"open", "matched"}}


async def close_need(
    session: AsyncSession,
    community: Community,
    need_id: int,
    reason: str,
    who: Principal,
    request: Request | None,
) -> None:
    n = await session.get(Need, need_id, with_for_update=True)
    if n is None or n.community_id != community.id:
        raise not_found("需求", "Need", need_id)
    cs.check_state("需求", "need", n.status, "close", NEED_MACHINE)
    n.status = "closed"
    await cs.step(session, community, "need", n.id, "closed", who, note=reason)
    await cs.audit(
        session, "community_need_closed", who, request, "community_need", n.id, {"reason": reason}
    )
    await session.commit()


# --- resources --------------------------------------------------------------------------------

RESOURCE_COLUMNS = """
    r.id, r.community_id, r.unit_id, u.name AS unit_name, r.kind, r.title, r.description,
    r.amount, r.capacity, r.measure, r.categories, r.contact, r.phone, r.valid_from,
    r.valid_until, r.created_at,
    (r.valid_from <= :today AND (r.valid_until IS NULL OR r.valid_until >= :today)) AS valid_now
"""


async def list_resources(
    session: AsyncSession,
    communities: list[int],
    today: date,
    *,
    kind: str | None = None,
    unit_id: int | None = None,
    valid: bool | None = None,
    ids: list[int] | None = None,
) -> list[Any]:
    sql = (
        f"SELECT {RESOURCE_COLUMNS} FROM community_resources r "
        "JOIN community_units u ON u.id = r.unit_id WHERE r.community_id = ANY(:c)"
    )
    params: dict[str, Any] = {"c": communities, "today": today}
    if kind:
        sql += " AND r.kind = :kind"
        params["kind"] = kind
    if unit_id is not None:
        sql += " AND r.unit_id = :unit"
        params["unit"] = unit_id
    if valid is not None:
        sql += (
            " AND (r.valid_from <= :today AND (r.valid_until IS NULL OR r.valid_until >= :today))"
            " = :valid"
        )
        params["valid"] = valid
    if ids is not None:
        sql += " AND r.id = ANY(:ids)"
        params["ids"] = ids
    return list(await session.execute(text(sql + " ORDER BY r.id LIMIT 2000"), params))


async def create_resource(
    session: AsyncSession,
    community: Community,
    body: ResourceIn,
    who: Principal,
    request: Request | None,
) -> int:
    await cs.check_units(session, community, [body.unit_id], "unit_id")
    unit = await cs.get_unit(session, community, body.unit_id)
    r = Resource(
        district_id=community.district_id,
        community_id=community.id,
        **body.model_dump(exclude={"location"}),
        created_by=who.user_id,
    )
    r.location = point(body.location) if body.location else unit.location
    if r.location is None:
        r.location = await _default_point(session, community.id, None)
    session.add(r)
    await session.flush()
    detail = body.model_dump(exclude={"location"})
    await cs.step(session, community, "resource", r.id, "created", who, note=r.title, detail=detail)
    await cs.audit(
        session, "community_resource_created", who, request, "community_resource", r.id, detail
    )
    await session.commit()
    return r.id


_MATCHES = text(
    f"""
    WITH n AS (SELECT * FROM community_needs WHERE id = :need),
    m AS (
        SELECT {RESOURCE_COLUMNS},
               r.categories @> ARRAY[n.category]::varchar[] AS category_match,
               r.kind = ANY(:kinds) AS kind_fit,
               ST_DistanceSphere(r.location, n.location) AS distance_m
        FROM community_resources r JOIN community_units u ON u.id = r.unit_id, n
        WHERE r.district_id = n.district_id
          AND r.valid_from <= :today AND (r.valid_until IS NULL OR r.valid_until >= :today)
          AND (r.categories @> ARRAY[n.category]::varchar[] OR r.kind = ANY(:kinds))
    ),
    best AS (
        SELECT *, round(CAST(50 * category_match::int + 20 * kind_fit::int
                     + 30 * greatest(0, 1 - coalesce(distance_m, :radius) / :radius) AS numeric), 1)
                     AS score
        FROM m
        ORDER BY score DESC, distance_m NULLS LAST, id
        LIMIT :limit
    )
    SELECT best.*,
           (SELECT count(*) FROM community_project_resources pr
            JOIN community_projects p ON p.id = pr.project_id
            WHERE pr.resource_id = best.id AND p.status IN ('planned', 'in_progress'))
             AS in_projects
    FROM best ORDER BY score DESC, distance_m NULLS LAST, id
    """
)


async def matches(
    session: AsyncSession, need: Any, today: date, limit: int
) -> list[dict[str, Any]]:
    """Resources that could serve a need, best first: the need's category among the resource's
    (50), a kind that usually serves the category (20), nearness within 5 km (30)."""
    rows = await session.execute(
        _MATCHES,
        {
            "need": need.id,
            "kinds": list(KIND_FIT.get(need.category, ())),
            "today": today,
            "radius": MATCH_RADIUS_M,
            "limit": limit,
        },
    )
    out = []
    for r in rows:
        m = dict(r._mapping)
        out.append(
            {
                "resource": m,
                "score": float(m["score"]),
                "category_match": m["category_match"],
                "kind_fit": m["kind_fit"],
                "distance_m": None if m["distance_m"] is None else round(m["distance_m"], 1),
                "in_projects": m["in_projects"],
            }
        )
    return out


# --- projects ---------------------------------------------------------------------------------

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
    await cs.check_units(session, community, [body.lead_unit_id, *body.unit_ids], "unit_ids")
    await cs.check_units(session, community, [t.unit_id for t in body.tasks], "tasks")
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
    await cs.step(session, community, "project", p.id, "created", who, note=p.title, detail=detail)
    await cs.step(
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
        await cs.create_task(
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
    await cs.audit(
        session, "community_project_created", who, request, "community_project", p.id, detail
    )
    await session.commit()
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
    cs.check_state("项目", "project", p.status, action, PROJECT_MACHINE)
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
        p.status, p.progress, p.completed_at = "done", 100, now
        p.evaluation, p.evaluation_note = evaluation, note
        need.status = "done"
        detail["evaluation"] = evaluation
        await cs.step(session, community, "need", need.id, "done", who, detail={"project_id": p.id})
    else:
        p.status = "cancelled"
        need.status = "open"
        await cs.step(
            session, community, "need", need.id, "reopened", who, detail={"project_id": p.id}
        )
    await cs.step(session, community, "project", p.id, action, who, note=note, detail=detail)
    await cs.audit(
        session, f"community_project_{action}", who, request, "community_project", p.id, detail
    )
    await session.commit()


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
    cs.check_state(
        "项目",
        "project",
        p.status,
        "add_task",
        {**PROJECT_MACHINE, "add_task": {"planned", "in_progress"}},
    )
    await cs.check_units(session, community, [body.unit_id], "unit_id")
    t = await cs.create_task(
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
    await cs.audit(
        session, "community_task_created", who, request, "community_task", t.id, body.model_dump()
    )
    await session.commit()


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
    tasks = await cs.list_tasks(session, [p.community_id], now, source="project", ref_id=p.id)
    steps = await cs.timeline(session, "project", p.id)
    return {
        **{c.name: getattr(p, c.name) for c in Project.__table__.columns},
        "need": dict(need._mapping),
        "unit_ids": sorted(uids),
        "resources": [dict(r._mapping) for r in resources],
        "tasks": [dict(t._mapping) for t in tasks],
        "timeline": steps,
    }


# --- quarterly review -------------------------------------------------------------------------

_SNAPSHOT = text(
    """
    SELECT jsonb_build_object(
      'needs', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', n.id, 'title', n.title, 'category', n.category, 'households', n.households,
            'urgency', n.urgency, 'source', n.source, 'status', n.status) ORDER BY n.id)
         FROM community_needs n WHERE n.community_id = :c), '[]'),
      'resources', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', r.id, 'unit', u.name, 'kind', r.kind, 'title', r.title, 'amount', r.amount,
            'capacity', r.capacity, 'measure', r.measure, 'valid_from', r.valid_from,
            'valid_until', r.valid_until) ORDER BY r.id)
         FROM community_resources r JOIN community_units u ON u.id = r.unit_id
         WHERE r.community_id = :c AND r.valid_from <= :today
           AND (r.valid_until IS NULL OR r.valid_until >= :today)), '[]'),
      'projects', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', p.id, 'title', p.title, 'need_id', p.need_id, 'lead_unit', u.name,
            'status', p.status, 'progress', p.progress, 'evaluation', p.evaluation) ORDER BY p.id)
         FROM community_projects p JOIN community_units u ON u.id = p.lead_unit_id
         WHERE p.community_id = :c), '[]')
    ) AS snapshot
    """
)


def _counts(snapshot: dict[str, Any]) -> dict[str, Any]:
    def by(items: list[dict[str, Any]], key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in items:
            out[i[key]] = out.get(i[key], 0) + 1
        return out

    return {
        "needs": len(snapshot["needs"]),
        "needs_by_status": by(snapshot["needs"], "status"),
        "resources": len(snapshot["resources"]),
        "resources_by_kind": by(snapshot["resources"], "kind"),
        "projects": len(snapshot["projects"]),
        "projects_by_status": by(snapshot["projects"], "status"),
    }


async def review(
    session: AsyncSession,
    community: Community,
    period: str,
    note: str,
    who: Principal,
    request: Request | None,
    today: date,
) -> int:
    from sqlalchemy.exc import IntegrityError

    from app.lists.models import ListReview

    snap = (await session.execute(_SNAPSHOT, {"c": community.id, "today": today})).scalar_one()
    rv = ListReview(
        district_id=community.district_id,
        community_id=community.id,
        period=period,
        note=note,
        counts=_counts(snap),
        snapshot=snap,
        reviewed_by=who.user_id,
    )
    session.add(rv)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ApiError(
            "period_reviewed",
            field="period",
            detail=f"{community.name} {period} 的三张清单已评审",
            detail_en=f"The lists of {period} were already reviewed",
        ) from None
    await cs.step(
        session, community, "review", rv.id, "created", who, note=period, detail=rv.counts
    )
    await cs.audit(
        session, "community_lists_reviewed", who, request, "community_list_review", rv.id, rv.counts
    )
    await session.commit()
    return rv.id
