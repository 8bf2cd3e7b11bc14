"""Buildings (楼栋), the nodes of a grid."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.policy import RULES, Principal
from app.auth.scope import covers, object_chain
from app.buildings.models import Building
from app.buildings.schemas import BuildingCreate, BuildingUpdate
from app.errors import ApiError, not_found
from app.geometry import CRS, parse_boundary, parse_lonlat
from app.grids.models import Grid, GridBoundary
from app.grids.service import below_area, lookup
from app.schemas import reject_nulls


def parse_building_geometry(geometry: Any, crs: CRS) -> BaseGeometry:
    if isinstance(geometry, dict) and geometry.get("type") == "Point":
        coords = geometry.get("coordinates")
        if not (isinstance(coords, list) and len(coords) in (2, 3)) or not all(
            isinstance(c, int | float) and not isinstance(c, bool) for c in coords
        ):
            raise ApiError(
                "invalid_geometry",
                field="geometry",
                detail="Point 的 coordinates 应为 [经度, 纬度]",
                detail_en="A Point's coordinates must be [lon, lat]",
            )
        return Point(*parse_lonlat(float(coords[0]), float(coords[1]), crs))
    return parse_boundary(geometry, crs, field="geometry").geometry


async def _place(
    session: AsyncSession, geom: BaseGeometry, grid_id: int | None, who: Principal | None = None
) -> int:
    """The grid the building belongs to: the given one (it must contain the building) or found."""
    probe = geom if geom.geom_type == "Point" else geom.representative_point()
    if grid_id is None:
        row = await lookup(session, probe.x, probe.y)
        if row is None or not row.inside:
            raise ApiError(
                "outside_all_grids",
                status=422,
                field="geometry",
                detail="楼栋不在任何网格内，请指定 grid_id 或修正位置",
                detail_en="The building is in no grid; give grid_id or fix its location",
            )
        if not await _grid_in_scope(session, who, int(row.id)):
            raise ApiError(
                "outside_all_grids",
                status=422,
                field="geometry",
                detail="楼栋所在网格不在您的管辖范围内",
                detail_en="The building's grid is outside your area",
            )
        return int(row.id)
    inside = (
        await session.execute(
            select(
                func.ST_Intersects(
                    GridBoundary.boundary,
                    func.ST_SetSRID(func.ST_MakePoint(probe.x, probe.y), 4326),
                )
            )
            .join(Grid, Grid.id == GridBoundary.grid_id)
            .where(
                GridBoundary.grid_id == grid_id,
                GridBoundary.valid_to.is_(None),
                Grid.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if inside is None or not await _grid_in_scope(session, who, grid_id):
        raise ApiError(
            "unknown_parent",
            field="grid_id",
            detail=f"网格不存在：{grid_id}",
            detail_en=f"Unknown grid: {grid_id}",
        )
    if not inside:
        raise ApiError(
            "invalid_geometry",
            field="geometry",
            detail="楼栋位置不在所指定的网格内",
            detail_en="The building is not inside the given grid",
        )
    return grid_id


async def _grid_in_scope(session: AsyncSession, who: Principal | None, grid_id: int) -> bool:
    if who is None:
        return True
    _, chain, _, _, _ = await object_chain(session, "grid_id", grid_id)
    return covers(who, RULES["buildings:write"], chain, grid_id)


def _select() -> Any:
    return select(
        Building,
        Grid.code.label("grid_code"),
        Grid.name.label("grid_name"),
        func.ST_AsGeoJSON(Building.geom, 7).label("geojson"),
        func.count().over().label("total"),
    ).join(Grid, Grid.id == Building.grid_id)


async def list_buildings(
    session: AsyncSession,
    *,
    grid_id: int | None,
    area_id: int | None,
    q: str | None,
    bbox: tuple[float, float, float, float] | None,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    stmt = _select()
    if grid_id is not None:
        stmt = stmt.where(Building.grid_id == grid_id)
    if area_id is not None:
        stmt = stmt.where(Grid.community_id.in_(below_area(area_id)))
    if q:
        stmt = stmt.where(Building.name.ilike(f"%{q}%"))
    if bbox:
        stmt = stmt.where(func.ST_Intersects(Building.geom, func.ST_MakeEnvelope(*bbox, 4326)))
    rows = (
        await session.execute(
            stmt.order_by(Building.grid_id, Building.id).limit(limit).offset(offset)
        )
    ).all()
    if rows:
        return list(rows), int(rows[0].total)
    count = select(func.count()).select_from(stmt.order_by(None).subquery())
    return [], int((await session.execute(count)).scalar_one())


async def get_building_row(session: AsyncSession, building_id: int) -> Any:
    row = (await session.execute(_select().where(Building.id == building_id))).first()
    if row is None:
        raise not_found("楼栋", "Building", building_id)
    return row


async def create_building(
    session: AsyncSession,
    data: BuildingCreate,
    who: Principal | None = None,
    request: Request | None = None,
) -> int:
    geom = parse_building_geometry(data.geometry, data.crs)
    grid_id = await _place(session, geom, data.grid_id, who)
    b = Building(
        grid_id=grid_id,
        name=data.name,
        address=data.address,
        households=data.households,
        units=data.units,
        geom=from_shape(geom, srid=4326),
    )
    session.add(b)
    await session.flush()
    await record(
        session,
        "building_created",
        actor=who,
        request=request,
        object_type="building",
        object_id=b.id,
        detail={"name": data.name, "grid_id": grid_id},
    )
    return b.id


async def update_building(
    session: AsyncSession,
    building_id: int,
    data: BuildingUpdate,
    who: Principal | None = None,
    request: Request | None = None,
) -> None:
    b = await session.get(Building, building_id)
    if b is None:
        raise not_found("楼栋", "Building", building_id)
    fields = data.model_fields_set
    reject_nulls(data, "name", "households", "units")
    for name in ("name", "address", "households", "units"):
        if name in fields:
            setattr(b, name, getattr(data, name))
    if "geometry" in fields or "grid_id" in fields:
        if "geometry" in fields and data.geometry is not None:
            geom = parse_building_geometry(data.geometry, data.crs)
        else:
            geom = to_shape(b.geom)
        b.grid_id = await _place(
            session, geom, data.grid_id if "grid_id" in fields else b.grid_id, who
        )
        b.geom = from_shape(geom, srid=4326)
    b.updated_at = func.now()
    changed = sorted(fields - {"crs"})
    await record(
        session,
        "building_updated",
        actor=who,
        request=request,
        object_type="building",
        object_id=building_id,
        detail={
            "fields": changed,
            **{k: getattr(data, k) for k in changed if k != "geometry"},
            "grid_id": b.grid_id,
        },
    )


async def delete_building(
    session: AsyncSession,
    building_id: int,
    who: Principal | None = None,
    request: Request | None = None,
) -> None:
    b = await session.get(Building, building_id)
    if b is None:
        raise not_found("楼栋", "Building", building_id)
    await record(
        session,
        "building_deleted",
        actor=who,
        request=request,
        object_type="building",
        object_id=building_id,
        detail={"name": b.name, "grid_id": b.grid_id},
    )
    await session.delete(b)


def building_out(row: Any, geometry: dict[str, Any] | None) -> dict[str, Any]:
    b: Building = row.Building
    return {
        "id": b.id,
        "grid_id": b.grid_id,
        "grid_code": row.grid_code,
        "grid_name": row.grid_name,
        "name": b.name,
        "address": b.address,
        "households": b.households if b.derived_households is None else b.derived_households,
        "households_source": "typed" if b.derived_households is None else "base_data",
        "households_typed": b.households,
        "units": b.units,
        "geometry": geometry,
        "created_at": b.created_at,
        "updated_at": b.updated_at,
    }
