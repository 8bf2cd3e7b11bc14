"""Areas: plain functions over the session."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from geoalchemy2.shape import from_shape, to_shape
from sqlalchemy import func, or_, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas.models import PARENT_LEVEL, Area
from app.areas.schemas import AreaCreate, AreaUpdate
from app.audit.service import record
from app.auth.policy import Principal, ensure_area_in_scope
from app.config import get_settings
from app.errors import ApiError, not_found
from app.geometry import CRS, parse_boundary, render
from app.grids.models import Grid, GridBoundary
from app.i18n import AREA_LEVEL_LABELS, Lang, label
from app.schemas import reject_nulls
from geo.coverage import CoverageReport, check_coverage
from geo.sizing import GridSize, SizingBand, check_sizing


def _children_count():  # type: ignore[no-untyped-def]
    child = Area.__table__.alias("child")
    areas_below = (
        select(func.count()).select_from(child).where(child.c.parent_id == Area.id)
    ).scalar_subquery()
    grids_below = (
        select(func.count())
        .select_from(Grid)
        .where(Grid.community_id == Area.id, Grid.deleted_at.is_(None))
    ).scalar_subquery()
    return (areas_below + grids_below).label("children")


def to_out(area: Area, children: int, lang: Lang, boundary: dict | None = None) -> dict[str, Any]:
    return {
        "id": area.id,
        "level": area.level,
        "level_label": label(AREA_LEVEL_LABELS, area.level, lang),
        "code": area.code,
        "name": area.name,
        "parent_id": area.parent_id,
        "address": area.address,
        "phone": area.phone,
        "service_hours": area.service_hours,
        "children": children,
        "boundary": boundary,
        "created_at": area.created_at,
        "updated_at": area.updated_at,
    }


async def list_areas(
    session: AsyncSession,
    *,
    level: str | None = None,
    parent_id: int | None = None,
    q: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    limit: int,
    offset: int,
    with_boundary: bool = False,
) -> tuple[list[tuple[Area, int, str | None]], int]:
    cols: list[Any] = [Area, _children_count(), func.count().over().label("total")]
    cols.append(func.ST_AsGeoJSON(Area.boundary, 7).label("geojson") if with_boundary else None)
    stmt = select(*[c for c in cols if c is not None])
    if level:
        stmt = stmt.where(Area.level == level)
    if parent_id is not None:
        stmt = stmt.where(Area.parent_id == parent_id)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(or_(Area.name.ilike(like), Area.code.startswith(q)))
    if bbox:
        stmt = stmt.where(func.ST_Intersects(Area.boundary, func.ST_MakeEnvelope(*bbox, 4326)))
    stmt = stmt.order_by(Area.code).limit(limit).offset(offset)
    rows = (await session.execute(stmt)).all()
    total = rows[0].total if rows else await _count_when_past_end(session, stmt)
    return [(r.Area, r.children, r.geojson if with_boundary else None) for r in rows], total


async def _count_when_past_end(session: AsyncSession, stmt: Any) -> int:
    sub = stmt.limit(None).offset(None).order_by(None).subquery()
    return int((await session.execute(select(func.count()).select_from(sub))).scalar_one())


async def get_area(session: AsyncSession, area_id: int) -> Area:
    area = await session.get(Area, area_id)
    if area is None:
        raise not_found("区域", "Area", area_id)
    return area


async def children_count(session: AsyncSession, area_id: int) -> int:
    stmt = select(_children_count()).where(Area.id == area_id)
    return int((await session.execute(stmt)).scalar_one())


async def boundary_geojson(session: AsyncSession, area: Area, crs: CRS) -> dict | None:
    if area.boundary is None:
        return None
    return render(to_shape(area.boundary), crs)


async def _check_parent(
    session: AsyncSession, level: str, parent_id: int | None, who: Principal | None = None
) -> None:
    want = PARENT_LEVEL.get(level)
    if parent_id is None:
        if level in ("city", "district") and (who is None or who.is_admin):
            return
        raise ApiError(
            "validation_error",
            detail=f"{label(AREA_LEVEL_LABELS, level, 'zh')}必须有上级区域",
            detail_en=f"A {level} needs a parent",
            field="parent_id",
        )
    parent = await session.get(Area, parent_id)
    if parent is None or not await ensure_area_in_scope(session, who, "registry:write", parent_id):
        raise ApiError(
            "unknown_parent",
            detail=f"上级区域不存在：{parent_id}",
            detail_en=f"Unknown parent area: {parent_id}",
            field="parent_id",
        )
    if parent.level != want:
        raise ApiError(
            "invalid_parent",
            detail=f"{label(AREA_LEVEL_LABELS, level, 'zh')}的上级应为"
            f"{label(AREA_LEVEL_LABELS, want or '', 'zh')}",
            detail_en=f"The parent of a {level} must be a {want}",
            field="parent_id",
        )


def _code_exists(code: str) -> ApiError:
    return ApiError(
        "code_exists",
        detail=f"编码已存在：{code}",
        detail_en=f"The code is already in use: {code}",
        field="code",
    )


async def create_area(
    session: AsyncSession,
    data: AreaCreate,
    who: Principal | None = None,
    request: Request | None = None,
) -> Area:
    await _check_parent(session, data.level, data.parent_id, who)
    area = Area(
        level=data.level,
        code=data.code,
        name=data.name,
        parent_id=data.parent_id,
        address=data.address,
        phone=data.phone,
        service_hours=data.service_hours,
    )
    if data.boundary is not None:
        area.boundary = from_shape(parse_boundary(data.boundary, data.crs).geometry, srid=4326)
    session.add(area)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _code_exists(data.code) from None
    await record(
        session,
        "area_created",
        actor=who,
        request=request,
        object_type="area",
        object_id=area.id,
        detail={
            "level": data.level,
            "code": data.code,
            "name": data.name,
            "parent_id": data.parent_id,
            "boundary": data.boundary is not None,
        },
    )
    await session.refresh(area)
    return area


async def update_area(
    session: AsyncSession,
    area_id: int,
    data: AreaUpdate,
    who: Principal | None = None,
    request: Request | None = None,
) -> Area:
    area = await get_area(session, area_id)
    fields = data.model_fields_set
    if "parent_id" in fields:
        await _check_parent(session, area.level, data.parent_id, who)
        area.parent_id = data.parent_id
    reject_nulls(data, "code", "name")
    for name in ("code", "name", "address", "phone", "service_hours"):
        if name in fields:
            setattr(area, name, getattr(data, name))
    if "boundary" in fields:
        area.boundary = (
            None
            if data.boundary is None
            else from_shape(parse_boundary(data.boundary, data.crs).geometry, srid=4326)
        )
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise _code_exists(data.code or "") from None
    changed = sorted(fields - {"crs"})
    await record(
        session,
        "area_updated",
        actor=who,
        request=request,
        object_type="area",
        object_id=area_id,
        detail={
            "fields": changed,
            **{k: getattr(data, k) for k in changed if k not in ("boundary",)},
        },
    )
    await session.refresh(area)
    return area


async def delete_area(
    session: AsyncSession,
    area_id: int,
    who: Principal | None = None,
    request: Request | None = None,
) -> None:
    area = await get_area(session, area_id)
    if await children_count(session, area_id):
        raise ApiError(
            "has_children",
            detail=f"{area.name}还有下级区域或网格，请先删除或移走它们",
            detail_en=f"{area.name} still has child areas or grids; remove or move them first",
        )
    await record(
        session,
        "area_deleted",
        actor=who,
        request=request,
        object_type="area",
        object_id=area_id,
        detail={"level": area.level, "code": area.code, "name": area.name},
    )
    await session.delete(area)


async def coverage(session: AsyncSession, area_id: int) -> tuple[Area, CoverageReport]:
    """Check that the area's children (grids of a community, else child areas) tile it."""
    area = await get_area(session, area_id)
    if area.level == "community":
        stmt = (
            select(Grid.code, GridBoundary.boundary)
            .join(GridBoundary, (GridBoundary.grid_id == Grid.id) & GridBoundary.valid_to.is_(None))
            .where(Grid.community_id == area_id, Grid.deleted_at.is_(None))
            .order_by(Grid.code)
        )
    else:
        stmt = (
            select(Area.code, Area.boundary)
            .where(Area.parent_id == area_id, Area.boundary.is_not(None))
            .order_by(Area.code)
        )
    rows = (await session.execute(stmt)).all()
    children = [(code, to_shape(geom)) for code, geom in rows]
    parent = to_shape(area.boundary) if area.boundary is not None else None
    report = check_coverage(children, parent, sliver_m2=get_settings().sliver_m2)
    return area, report


async def sizing(
    session: AsyncSession, area_id: int
) -> tuple[list[dict[str, Any]], int, SizingBand]:
    """Grids below the area whose size is out of the configured band."""
    await get_area(session, area_id)
    s = get_settings()
    band = SizingBand(
        city_min=s.city_households_min,
        city_max=s.city_households_max,
        rural_min=s.rural_households_min,
        rural_max=s.rural_households_max,
    )
    below = select(Area.id).where(Area.id == area_id).cte("below", recursive=True)
    below = below.union_all(select(Area.id).where(Area.parent_id == below.c.id))
    rows = (
        (
            await session.execute(
                select(Grid)
                .where(Grid.community_id.in_(select(below.c.id)), Grid.deleted_at.is_(None))
                .order_by(Grid.code)
            )
        )
        .scalars()
        .all()
    )
    ids = {g.code: g.id for g in rows}
    sizes = [
        GridSize(
            id=str(g.id),
            code=g.code,
            name=g.name,
            kind=g.kind,
            households=g.households if g.derived_households is None else g.derived_households,
            population=g.population if g.derived_population is None else g.derived_population,
            notes=g.notes,
        )
        for g in rows
    ]
    findings = check_sizing(sizes, band)
    out = []
    for f in findings:
        out.append({"grid_id": ids[f.code], "finding": f})
    return out, len(rows), band


_UP = text(
    """
    SELECT array_remove(ARRAY[a1.id, a2.id, a3.id, a4.id], NULL) AS chain,
           CASE 'district' WHEN a1.level THEN a1.id WHEN a2.level THEN a2.id
                           WHEN a3.level THEN a3.id WHEN a4.level THEN a4.id END AS district_id
    FROM areas a1 LEFT JOIN areas a2 ON a2.id = a1.parent_id
    LEFT JOIN areas a3 ON a3.id = a2.parent_id LEFT JOIN areas a4 ON a4.id = a3.parent_id
    WHERE a1.id = :id
    """
)
"""The area tree has four levels (the `level` check): the chain up is four joins, no recursive
CTE (which Citus cannot plan over its reference tables beside other tables)."""


async def up_chain(session: AsyncSession, area_id: int) -> tuple[list[int], int | None]:
    """The area's id and its ancestors' (itself first, up to the root), and the district among
    them (None above the districts); ([], None) for no such area."""
    row = (await session.execute(_UP, {"id": area_id})).first()
    if row is None:
        return [], None
    return list(row.chain), row.district_id
