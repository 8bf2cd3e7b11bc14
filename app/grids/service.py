"""Grids: CRUD with boundary history, the point lookup (hot path), and the service card."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any
from urllib.parse import quote

import orjson
from fastapi import Request
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import delete, func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from app.areas.models import Area
from app.audit.service import record
from app.auth.policy import Principal, ensure_area_in_scope
from app.config import get_settings
from app.db import RawSql, RecordView, raw_of
from app.errors import ApiError, not_found
from app.geometry import CRS, parse_boundary, render
from app.grids.models import Grid, GridBoundary
from app.grids.schemas import GridCreate, GridUpdate
from app.i18n import GRID_KIND_LABELS, ROLE_LABELS, Lang, label
from app.schemas import reject_nulls, to_local
from app.users.models import User
from geo.measure import area_m2

BoundaryHook = Callable[[AsyncSession, int], Awaitable[None]]
"""Told a grid's current boundary changed (session, grid id), in the change's transaction."""
_boundary_hooks: list[BoundaryHook] = []


def on_boundary_change(hook: BoundaryHook) -> None:
    """An extension point (`app/extensions.py`): what a higher floor derives from a grid's
    boundary (the patrol coverage's lattice) is rebuilt when it changes. Idempotent."""
    if hook not in _boundary_hooks:
        _boundary_hooks.append(hook)


async def _boundary_changed(session: AsyncSession, grid_id: int) -> None:
    await session.flush()
    for hook in _boundary_hooks:
        await hook(session, grid_id)


Community = aliased(Area, name="community")
Street = aliased(Area, name="street")
District = aliased(Area, name="district")


def _ref(id_: int | None, code: str | None, name: str | None) -> dict[str, Any] | None:
    return None if id_ is None else {"id": id_, "code": code, "name": name}


def _with_places(stmt: Any) -> Any:
    return (
        stmt.join(Community, Community.id == Grid.community_id)
        .outerjoin(Street, Street.id == Community.parent_id)
        .outerjoin(District, District.id == Street.parent_id)
        .add_columns(
            Community.id.label("c_id"),
            Community.code.label("c_code"),
            Community.name.label("c_name"),
            Street.id.label("s_id"),
            Street.code.label("s_code"),
            Street.name.label("s_name"),
            District.id.label("d_id"),
            District.code.label("d_code"),
            District.name.label("d_name"),
        )
    )


def grid_out(row: Any, lang: Lang, boundary: dict[str, Any] | None = None) -> dict[str, Any]:
    g: Grid = row.Grid
    return {
        "id": g.id,
        "code": g.code,
        "name": g.name,
        "kind": g.kind,
        "kind_label": label(GRID_KIND_LABELS, g.kind, lang),
        **effective_size(g),
        "notes": g.notes,
        "community": _ref(row.c_id, row.c_code, row.c_name),
        "street": _ref(row.s_id, row.s_code, row.s_name),
        "district": _ref(row.d_id, row.d_code, row.d_name),
        "boundary": boundary,
        "boundary_valid_from": getattr(row, "valid_from", None),
        "boundary_valid_to": getattr(row, "valid_to", None),
        "created_at": g.created_at,
        "updated_at": g.updated_at,
    }


def _source(derived: int | None, typed: int | None) -> str | None:
    return "base_data" if derived is not None else ("typed" if typed is not None else None)


def effective_size(g: Any) -> dict[str, Any]:
    """Households and population: counted from the base data when the grid has any (its houses,
    households and residents, kept by app.basedata), else the typed numbers; with the source."""
    dh, dp = getattr(g, "derived_households", None), getattr(g, "derived_population", None)
    return {
        "households": dh if dh is not None else g.households,
        "population": dp if dp is not None else g.population,
        "households_source": _source(dh, g.households),
        "population_source": _source(dp, g.population),
        "households_typed": g.households,
        "population_typed": g.population,
    }


def _version_filter(at: datetime | None) -> Any:
    if at is None:
        return GridBoundary.valid_to.is_(None)
    return (GridBoundary.valid_from <= at) & (
        GridBoundary.valid_to.is_(None) | (GridBoundary.valid_to > at)
    )


def below_area(area_id: int | Iterable[int]) -> Any:
    """Ids of the area(s) and every area below (recursive), as a subquery for `IN`."""
    ids = [area_id] if isinstance(area_id, int) else list(area_id)
    below = (
        select(Area.id).where(Area.id.in_(ids)).cte(recursive=True)
    )  # anonymous: two in one query
    below = below.union_all(select(Area.id).where(Area.parent_id == below.c.id))
    return select(below.c.id)


async def list_grids(
    session: AsyncSession,
    *,
    kind: str | None,
    area_id: int | None,
    q: str | None,
    bbox: tuple[float, float, float, float] | None,
    with_boundary: bool,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    stmt = _with_places(
        select(
            Grid, GridBoundary.valid_from, GridBoundary.valid_to, func.count().over().label("total")
        )
        .join(GridBoundary, (GridBoundary.grid_id == Grid.id) & GridBoundary.valid_to.is_(None))
        .where(Grid.deleted_at.is_(None))
    )
    if with_boundary:
        stmt = stmt.add_columns(func.ST_AsGeoJSON(GridBoundary.boundary, 7).label("geojson"))
    if kind:
        stmt = stmt.where(Grid.kind == kind)
    if area_id is not None:
        stmt = stmt.where(Grid.community_id.in_(below_area(area_id)))
    if q:
        stmt = stmt.where(or_(Grid.name.ilike(f"%{q}%"), Grid.code.startswith(q)))
    if bbox:
        stmt = stmt.where(
            func.ST_Intersects(GridBoundary.boundary, func.ST_MakeEnvelope(*bbox, 4326))
        )
    stmt = stmt.order_by(Grid.code).limit(limit).offset(offset)
    rows = (await session.execute(stmt)).all()
    if rows:
        return list(rows), int(rows[0].total)
    count = select(func.count()).select_from(
        stmt.limit(None).offset(None).order_by(None).subquery()
    )
    return [], int((await session.execute(count)).scalar_one())


async def get_grid_row(session: AsyncSession, grid_id: int, at: datetime | None = None) -> Any:
    stmt = _with_places(
        select(
            Grid,
            GridBoundary.valid_from,
            GridBoundary.valid_to,
            func.ST_AsGeoJSON(GridBoundary.boundary, 7).label("geojson"),
        )
        .outerjoin(GridBoundary, (GridBoundary.grid_id == Grid.id) & _version_filter(at))
        .where(Grid.id == grid_id)
    )
    if at is None:
        stmt = stmt.where(Grid.deleted_at.is_(None))
    row = (await session.execute(stmt)).first()
    if row is None or (at is not None and row.valid_from is None):
        raise not_found("网格", "Grid", grid_id)
    return row


async def boundary_history(session: AsyncSession, grid_id: int) -> list[Any]:
    exists = await session.get(Grid, grid_id)
    if exists is None:
        raise not_found("网格", "Grid", grid_id)
    stmt = (
        select(
            GridBoundary.id,
            GridBoundary.valid_from,
            GridBoundary.valid_to,
            func.ST_AsGeoJSON(GridBoundary.boundary, 7).label("geojson"),
            func.ST_Area(func.geography(GridBoundary.boundary)).label("area_m2"),
            GridBoundary.created_by,
            select(User.display_name)
            .where(User.id == GridBoundary.created_by)
            .scalar_subquery()
            .label("author_name"),
        )
        .where(GridBoundary.grid_id == grid_id)
        .order_by(GridBoundary.valid_from)
    )
    return list((await session.execute(stmt)).all())


async def _community(
    session: AsyncSession,
    community_id: int,
    field: str = "community_id",
    who: Principal | None = None,
) -> Area:
    area = await session.get(Area, community_id)
    if area is None or not await ensure_area_in_scope(session, who, "registry:write", community_id):
        raise ApiError(
            "unknown_parent",
            detail=f"社区不存在：{community_id}",
            detail_en=f"Unknown community: {community_id}",
            field=field,
        )
    if area.level != "community":
        raise ApiError(
            "invalid_parent",
            detail=f"{area.name}不是社区/村，网格只能属于社区或村",
            detail_en=f"{area.name} is not a community/village; grids belong to communities",
            field=field,
        )
    return area


def outside_parent_m2(geom: BaseGeometry, parent: BaseGeometry | None) -> float:
    """Area (m²) of `geom` lying outside `parent` (0 when the parent has no boundary)."""
    if parent is None:
        return 0.0
    rest = geom.difference(parent)
    return 0.0 if rest.is_empty else area_m2(rest)


def check_inside(geom: BaseGeometry, community: Area, field: str = "boundary") -> None:
    parent = to_shape(community.boundary) if community.boundary is not None else None
    out = outside_parent_m2(geom, parent)
    if out > get_settings().parent_tolerance_m2:
        raise ApiError(
            "invalid_geometry",
            detail=f"网格有 {out:.1f} 平方米超出所属社区 {community.name} 的边界",
            detail_en=f"{out:.1f} m² of the grid lie outside its community {community.name}",
            field=field,
            extra={"outside_m2": round(out, 1)},
        )


def _code_exists(code: str) -> ApiError:
    return ApiError(
        "code_exists",
        detail=f"网格编码已存在：{code}",
        detail_en=f"The grid code is already in use: {code}",
        field="code",
    )


def _author(who: Principal | None) -> int | None:
    return who.user_id if who is not None else None


async def create_grid(
    session: AsyncSession,
    data: GridCreate,
    who: Principal | None = None,
    request: Request | None = None,
) -> int:
    community = await _community(session, data.community_id, who=who)
    geom = parse_boundary(data.boundary, data.crs).geometry
    check_inside(geom, community)
    grid = Grid(
        code=data.code,
        name=data.name,
        community_id=data.community_id,
        kind=data.kind,
        households=data.households,
        population=data.population,
        notes=data.notes,
    )
    session.add(grid)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _code_exists(data.code) from None
    session.add(
        GridBoundary(
            grid_id=grid.id,
            boundary=from_shape(geom, srid=4326),
            valid_from=func.now(),
            created_by=_author(who),
        )
    )
    await record(
        session,
        "grid_created",
        actor=who,
        request=request,
        object_type="grid",
        object_id=grid.id,
        detail={"code": data.code, "name": data.name, "community_id": data.community_id},
    )
    return grid.id


async def set_boundary(
    session: AsyncSession, grid_id: int, geom: BaseGeometry, author: int | None = None
) -> bool:
    """Make `geom` the grid's current boundary, keeping the old one as history; `author` (a
    user id) drew it.

    Returns False when the boundary did not change. Within one transaction a second change
    replaces the version that transaction opened (a version valid for no time is no history).
    """
    current = (
        await session.execute(
            select(GridBoundary)
            .where(GridBoundary.grid_id == grid_id, GridBoundary.valid_to.is_(None))
            .with_for_update()
        )
    ).scalar_one_or_none()
    now = (await session.execute(select(func.now()))).scalar_one()
    if current is not None:
        if to_shape(current.boundary).normalize().equals_exact(geom.normalize(), 1e-9):
            return False
        if current.valid_from == now:
            current.boundary = from_shape(geom, srid=4326)
            current.created_by = author
            await _boundary_changed(session, grid_id)
            return True
        current.valid_to = now
        await session.flush()
    session.add(
        GridBoundary(
            grid_id=grid_id, boundary=from_shape(geom, srid=4326), valid_from=now, created_by=author
        )
    )
    if current is not None:
        await _boundary_changed(session, grid_id)
    return True


async def update_grid(
    session: AsyncSession,
    grid_id: int,
    data: GridUpdate,
    who: Principal | None = None,
    request: Request | None = None,
) -> None:
    grid = await session.get(Grid, grid_id)
    if grid is None or grid.deleted_at is not None:
        raise not_found("网格", "Grid", grid_id)
    fields = data.model_fields_set
    reject_nulls(data, "code", "name", "kind", "community_id")
    community_id = data.community_id if "community_id" in fields else grid.community_id
    assert community_id is not None
    community = await _community(session, community_id, who=who)
    for name in ("code", "name", "kind", "households", "population", "notes", "community_id"):
        if name in fields:
            setattr(grid, name, getattr(data, name))
    if "boundary" in fields:
        if data.boundary is None:
            raise ApiError(
                "validation_error",
                field="boundary",
                detail="网格必须有边界",
                detail_en="A grid must have a boundary",
            )
        geom = parse_boundary(data.boundary, data.crs).geometry
        check_inside(geom, community)
        boundary_changed = await set_boundary(session, grid_id, geom, _author(who))
    elif "community_id" in fields:
        current = (
            await session.execute(
                select(GridBoundary.boundary).where(
                    GridBoundary.grid_id == grid_id, GridBoundary.valid_to.is_(None)
                )
            )
        ).scalar_one()
        check_inside(to_shape(current), community, field="community_id")
    grid.updated_at = func.now()
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _code_exists(data.code or "") from None
    changed = sorted(fields - {"crs"})
    await record(
        session,
        "grid_updated",
        actor=who,
        request=request,
        object_type="grid",
        object_id=grid_id,
        detail={
            "fields": changed,
            **{k: getattr(data, k) for k in changed if k != "boundary"},
            **({"boundary_changed": boundary_changed} if "boundary" in fields else {}),
        },
    )


async def delete_grid(
    session: AsyncSession,
    grid_id: int,
    who: Principal | None = None,
    request: Request | None = None,
) -> None:
    """Retire a grid: it leaves the live map, its history stays for past lookups."""
    grid = await session.get(Grid, grid_id)
    if grid is None or grid.deleted_at is not None:
        raise not_found("网格", "Grid", grid_id)
    grid.deleted_at = func.now()
    current = (GridBoundary.grid_id == grid_id) & GridBoundary.valid_to.is_(None)
    # A version opened in this very transaction was valid for no time: it is no history.
    await session.execute(
        delete(GridBoundary).where(current, GridBoundary.valid_from >= func.now())
    )
    await session.execute(update(GridBoundary).where(current).values(valid_to=func.now()))
    await record(
        session,
        "grid_deleted",
        actor=who,
        request=request,
        object_type="grid",
        object_id=grid_id,
        detail={"code": grid.code, "name": grid.name},
    )


# --- lookup: one statement, bind parameters, partial GiST index for the live map --------------

STAFF_JSON = """
    (SELECT coalesce(json_agg(json_build_object(
                'name', u.display_name, 'role', p.role, 'worker_type', p.worker_type,
                'title', p.title, 'work_phone', p.work_phone)
            ORDER BY CASE p.role WHEN 'grid_leader' THEN 0 ELSE 1 END,
                     CASE p.worker_type WHEN 'full_time' THEN 0 WHEN 'part_time' THEN 1 ELSE 2 END,
                     u.id), '[]')
     FROM post_grids pg
     JOIN posts p ON p.id = pg.post_id
     JOIN users u ON u.id = p.user_id AND u.is_active
     WHERE pg.grid_id = g.id AND p.starts_on <= current_date
       AND (p.ends_on IS NULL OR p.ends_on >= current_date)) AS staff
"""

_LOOKUP = """
WITH p AS (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS g),
live AS NOT MATERIALIZED (
    SELECT b.grid_id, b.boundary, b.valid_from, b.valid_to FROM grid_boundaries b
    WHERE {version}
),
hit AS (
    SELECT l.grid_id, l.valid_from, l.valid_to, 0.0::float8 AS distance_m, true AS inside
    FROM live l JOIN grids g ON g.id = l.grid_id, p
    WHERE ST_Intersects(l.boundary, p.g)
    ORDER BY g.code
    LIMIT 1
),
knn AS (
    SELECT l.grid_id, l.valid_from, l.valid_to, l.boundary FROM live l, p
    WHERE NOT EXISTS (SELECT 1 FROM hit)
    ORDER BY l.boundary <-> ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)
    LIMIT 8
),
near AS (
    SELECT k.grid_id, k.valid_from, k.valid_to,
           ST_Distance(k.boundary::geography, p.g::geography) AS distance_m, false AS inside
    FROM knn k, p
    ORDER BY 4, k.grid_id
    LIMIT 1
),
pick AS (SELECT * FROM hit UNION ALL SELECT * FROM near)
SELECT pick.inside, pick.distance_m, pick.valid_from, pick.valid_to, {answer}
FROM pick
{answer_joins}
"""

_ANSWER = f"""
       g.id, g.code, g.name, g.kind, g.households, g.population,
       g.derived_households, g.derived_population,
       c.id AS c_id, c.code AS c_code, c.name AS c_name, c.phone AS c_phone,
       c.address AS c_address, c.service_hours AS c_hours,
       s.id AS s_id, s.code AS s_code, s.name AS s_name,
       d.id AS d_id, d.code AS d_code, d.name AS d_name,
       {STAFF_JSON}
"""
"""What a lookup answers about its grid (one list for the statement and the in-process index)."""

_ANSWER_JOINS = """
JOIN grids g ON g.id = {grid_id}
JOIN areas c ON c.id = g.community_id
LEFT JOIN areas s ON s.id = c.parent_id
LEFT JOIN areas d ON d.id = s.parent_id
"""
_PICK = {"answer": _ANSWER, "answer_joins": _ANSWER_JOINS.format(grid_id="pick.grid_id")}
LOOKUP_NOW = text(_LOOKUP.format(version="b.valid_to IS NULL", **_PICK))
LOOKUP_AT = text(
    _LOOKUP.format(
        version="b.valid_from <= :at AND (b.valid_to IS NULL OR b.valid_to > :at)", **_PICK
    )
)
LOOKUP_INDEX_ROWS = (
    "SELECT true AS inside, 0.0::float8 AS distance_m, b.valid_from, b.valid_to, "
    "ST_AsBinary(b.boundary) AS wkb, "
    + _ANSWER
    + "FROM grid_boundaries b "
    + _ANSWER_JOINS.format(grid_id="b.grid_id")
    + "WHERE b.valid_to IS NULL"
)
"""Every live boundary with the lookup's answer row: what the in-process index holds
(`app.grids.lookup_index`)."""


LOOKUP_NOW_RAW = RawSql(LOOKUP_NOW.text)
LOOKUP_AT_RAW = RawSql(LOOKUP_AT.text)


async def lookup_raw(
    conn: AsyncConnection, lon: float, lat: float, at: datetime | None = None
) -> Any | None:
    """`lookup` on the raw driver (the endpoint's hot path: asyncpg keeps the statement prepared
    per connection, and SQLAlchemy's per-call work is skipped). The row reads as `lookup`'s."""
    q = LOOKUP_NOW_RAW if at is None else LOOKUP_AT_RAW
    async with raw_of(conn) as raw:
        row = await raw.fetchrow(q.sql, *q.args({"lon": lon, "lat": lat, "at": at}))
    return None if row is None else RecordView(row)


async def lookup(
    db: AsyncSession | AsyncConnection, lon: float, lat: float, at: datetime | None = None
) -> Any | None:
    """The grid containing (lon, lat) in WGS84, else the nearest one (row.inside False).

    A point on an edge shared by several grids resolves to the one with the lowest code, always.
    """
    conn = await db.connection() if isinstance(db, AsyncSession) else db
    if at is None:
        result = await conn.execute(LOOKUP_NOW, {"lon": lon, "lat": lat})
    else:
        result = await conn.execute(LOOKUP_AT, {"lon": lon, "lat": lat, "at": at})
    return result.first()


def brief(row: Any, lang: Lang) -> dict[str, Any]:
    """The grid in the lookup and the service card: its size as `effective_size` gives it (the
    base data's counts when there are any, else the typed numbers), with the source."""
    size = effective_size(row)
    return {
        "id": row.id,
        "code": row.code,
        "name": row.name,
        "kind": row.kind,
        "kind_label": label(GRID_KIND_LABELS, row.kind, lang),
        "households": size["households"],
        "population": size["population"],
        "households_source": size["households_source"],
        "population_source": size["population_source"],
    }


def card(row: Any, lang: Lang, grid: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "grid": brief(row, lang) if grid is None else grid,
        "community": {
            "id": row.c_id,
            "code": row.c_code,
            "name": row.c_name,
            "phone": row.c_phone,
            "address": row.c_address,
            "service_hours": row.c_hours,
        },
        "staff": [
            {**m, "role_label": label(ROLE_LABELS, m["role"], lang)} for m in (row.staff or [])
        ],
        "report_url": f"/open311/qr/{quote(row.code, safe='')}",
    }


def lookup_place(row: Any, lang: Lang) -> bytes:
    """The members of the lookup answer that depend only on the grid and the language, encoded
    as JSON without the braces: what the in-process index keeps per grid (`lookup_index`)."""
    grid = brief(row, lang)
    return orjson.dumps(
        {
            "grid": grid,
            "community": _ref(row.c_id, row.c_code, row.c_name),
            "street": _ref(row.s_id, row.s_code, row.s_name),
            "district": _ref(row.d_id, row.d_code, row.d_name),
            "boundary_valid_from": to_local(row.valid_from),
            "boundary_valid_to": to_local(row.valid_to) if row.valid_to else None,
            "card": card(row, lang, grid),
        }
    )[1:-1]


def lookup_json(
    row: Any,
    lang: Lang,
    lon: float,
    lat: float,
    crs: CRS,
    at: datetime | None,
    place: bytes | None = None,
) -> bytes:
    """The lookup answer in the shape of LookupOut, encoded (times in Asia/Shanghai): the point
    asked about, then the grid's members (`place`, when the caller has them encoded already)."""
    head = orjson.dumps(
        {"lon": lon, "lat": lat, "crs": crs.value, "at": to_local(at) if at else None}
    )
    return head[:-1] + b"," + (lookup_place(row, lang) if place is None else place) + b"}"


_CARD = text(
    f"""
    SELECT g.id, g.code, g.name, g.kind, g.households, g.population,
           g.derived_households, g.derived_population,
           c.id AS c_id, c.code AS c_code, c.name AS c_name, c.phone AS c_phone,
           c.address AS c_address, c.service_hours AS c_hours,
           {STAFF_JSON}
    FROM grids g JOIN areas c ON c.id = g.community_id
    WHERE g.id = :id AND g.deleted_at IS NULL
    """
)


async def service_card(conn: AsyncConnection, grid_id: int, lang: Lang) -> dict[str, Any]:
    row = (await conn.execute(_CARD, {"id": grid_id})).first()
    if row is None:
        raise not_found("网格", "Grid", grid_id)
    return card(row, lang)


def render_boundary(geojson: str | None, crs: CRS) -> dict[str, Any] | None:
    return render(geojson, crs) if geojson else None
