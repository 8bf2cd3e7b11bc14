"""/api/v1/buildings — buildings (楼栋), the nodes of grids."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BeforeValidator

from app.auth.policy import BuildingWriter, RegistryReader
from app.buildings import service
from app.buildings.schemas import BuildingCreate, BuildingOut, BuildingPage, BuildingUpdate
from app.db import DbSession
from app.geometry import CRS, CrsQuery, render
from app.http import ApiRoute
from app.schemas import (
    BboxQuery,
    IdPath,
    IdQuery,
    LimitQuery,
    OffsetQuery,
    page_limit,
    parse_bbox,
    strict_integer,
)

router = APIRouter(prefix="/api/v1/buildings", tags=["buildings"], route_class=ApiRoute)


@router.get("", response_model=BuildingPage, summary="List buildings")
async def list_buildings(
    session: DbSession,
    who: RegistryReader,
    grid_id: IdQuery = None,
    area_id: Annotated[
        int | None,
        BeforeValidator(strict_integer),
        Query(description="Buildings in this area (any level)"),
    ] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    bbox: BboxQuery = None,
    crs: CrsQuery = CRS.WGS84,
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    limit = page_limit(limit)
    rows, total = await service.list_buildings(
        session,
        grid_id=grid_id,
        area_id=area_id,
        q=q,
        bbox=parse_bbox(bbox),
        limit=limit,
        offset=offset,
    )
    items = [service.building_out(r, render(r.geojson, crs)) for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "",
    response_model=BuildingOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a building (placed in its grid by location when grid_id is omitted)",
)
async def create_building(
    body: BuildingCreate,
    request: Request,
    session: DbSession,
    who: BuildingWriter,
    response: Response,
) -> dict[str, Any]:
    building_id = await service.create_building(session, body, who, request)
    response.headers["Location"] = f"/api/v1/buildings/{building_id}"
    row = await service.get_building_row(session, building_id)
    return service.building_out(row, render(row.geojson))


@router.get("/{building_id}", response_model=BuildingOut, summary="Get a building")
async def get_building(
    building_id: IdPath, session: DbSession, who: RegistryReader, crs: CrsQuery = CRS.WGS84
) -> dict[str, Any]:
    row = await service.get_building_row(session, building_id)
    return service.building_out(row, render(row.geojson, crs))


@router.patch("/{building_id}", response_model=BuildingOut, summary="Change a building")
async def update_building(
    building_id: IdPath,
    body: BuildingUpdate,
    request: Request,
    session: DbSession,
    who: BuildingWriter,
) -> dict[str, Any]:
    await service.update_building(session, building_id, body, who, request)
    row = await service.get_building_row(session, building_id)
    return service.building_out(row, render(row.geojson))


@router.delete(
    "/{building_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete a building"
)
async def delete_building(
    building_id: IdPath, request: Request, session: DbSession, who: BuildingWriter
) -> Response:
    await service.delete_building(session, building_id, who, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
