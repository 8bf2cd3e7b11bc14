"""The resources list (资源清单): what co-building units offer, and the resources that could serve
a need, best first."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import records
from app.community import service as units
from app.community.areas import Community
from app.lists.models import Resource
from app.lists.needs import default_point, point
from app.lists.schemas import ResourceIn

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
    await units.check_units(session, community, [body.unit_id], "unit_id")
    unit = await units.get_unit(session, community, body.unit_id)
    r = Resource(
        district_id=community.district_id,
        community_id=community.id,
        **body.model_dump(exclude={"location"}),
        created_by=who.user_id,
    )
    r.location = point(body.location) if body.location else unit.location
    if r.location is None:
        r.location = await default_point(session, community.id, None)
    session.add(r)
    await session.flush()
    detail = body.model_dump(exclude={"location"})
    await records.step(
        session, community, "resource", r.id, "created", who, note=r.title, detail=detail
    )
    await records.audit(
        session, "community_resource_created", who, request, "community_resource", r.id, detail
    )
    await session.flush()
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
