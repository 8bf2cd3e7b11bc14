"""The needs list (需求清单): needs collected in grids, from meetings and proposals, or turned from
case types that keep coming back; closing a need."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import func, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import areas, records
from app.community.areas import Community
from app.errors import ApiError, not_found
from app.lists.models import Need
from app.lists.schemas import NeedFromCases, NeedIn


def point(p: Any) -> Any:
    return None if p is None else func.ST_SetSRID(func.ST_MakePoint(p.lon, p.lat), 4326)


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


async def default_point(session: AsyncSession, community_id: int, grid_id: int | None) -> Any:
    if grid_id is not None:
        p = (await session.execute(_GRID_POINT, {"g": grid_id})).scalar()
        if p is not None:
            return p
    return (await session.execute(_AREA_POINT, {"a": community_id})).scalar()


async def create_need(
    session: AsyncSession,
    community: Community,
    body: NeedIn,
    who: Principal,
    request: Request | None,
    extra: dict[str, Any] | None = None,
) -> int:
    await areas.check_grid(session, community, body.grid_id)
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
        else await default_point(session, community.id, body.grid_id)
    )
    session.add(n)
    await session.flush()
    detail = {**body.model_dump(exclude={"location"}), **(extra or {})}
    await records.step(
        session, community, "need", n.id, "created", who, note=n.title, detail=detail
    )
    await records.audit(
        session, "community_need_created", who, request, "community_need", n.id, detail
    )
    await session.flush()
    return n.id


_CANDIDATES = text(
    """
    SELECT c.category_code AS case_category, k.name, count(*) AS cases,
           count(*) FILTER (WHERE c.status NOT IN ('closed', 'rejected')) AS open_cases,
           EXISTS (SELECT 1 FROM community_needs n WHERE n.community_id = :c
                   AND n.case_category = c.category_code AND n.status IN ('open', 'matched'))
             AS already_a_need
    FROM cases c JOIN categories k ON k.code = c.category_code
    WHERE c.district_id = :d AND c.community_id = :c
      AND c.reported_at >= CAST(:now AS timestamptz) - make_interval(days => :days)
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
    params = {
        "c": community.id,
        "d": community.district_id,
        "days": days,
        "min": min_cases,
        "now": now,
    }
    return list(await session.execute(_CANDIDATES, params))


_CASE_COUNT = text(
    """
    WITH n AS MATERIALIZED (
        SELECT count(*) AS cases, count(DISTINCT c.building_id) AS buildings
        FROM cases c
        WHERE c.district_id = :d AND c.community_id = :c AND c.category_code = :k
          AND c.duplicate_of IS NULL AND c.status <> 'rejected'
          AND c.reported_at >= CAST(:now AS timestamptz) - make_interval(days => :days)
    )
    SELECT n.cases, n.buildings, (SELECT name FROM categories WHERE code = :k) AS name FROM n
    """
)
"""The count first (`MATERIALIZED`: on Citus one statement on the district's shard), then the
category's name beside it (a subquery in the target list of a distributed query is refused:
"cannot push down subquery on the target list")."""


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
            {
                "c": community.id,
                "d": community.district_id,
                "k": body.case_category,
                "days": body.days,
                "now": now,
            },
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
    records.check_state("需求", "need", n.status, "close", NEED_MACHINE)
    n.status = "closed"
    await records.step(session, community, "need", n.id, "closed", who, note=reason)
    await records.audit(
        session, "community_need_closed", who, request, "community_need", n.id, {"reason": reason}
    )
    await session.flush()
