"""/api/v1/areas — districts, streets/towns, communities/villages; coverage and sizing checks."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from app.areas import service
from app.areas.schemas import AreaCreate, AreaLevel, AreaOut, AreaPage, AreaUpdate, SizingReport
from app.auth.policy import RegistryReader, RegistryReporter, RegistryWriter
from app.db import DbSession
from app.geometry import CRS, CrsQuery
from app.http import ApiRoute
from app.i18n import RequestLang, pick
from app.responses import GeoJSONResponse
from app.schemas import (
    BboxQuery,
    IdPath,
    IdQuery,
    LimitQuery,
    OffsetQuery,
    SearchQuery,
    page_limit,
    parse_bbox,
)

router = APIRouter(prefix="/api/v1/areas", tags=["areas"], route_class=ApiRoute)


@router.get("", response_model=AreaPage, summary="List areas")
async def list_areas(
    session: DbSession,
    who: RegistryReader,
    lang: RequestLang,
    level: AreaLevel | None = None,
    parent_id: IdQuery = None,
    q: SearchQuery = None,
    bbox: BboxQuery = None,
    with_boundary: bool = False,
    crs: CrsQuery = CRS.WGS84,
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    limit = page_limit(limit)
    rows, total = await service.list_areas(
        session,
        level=level,
        parent_id=parent_id,
        q=q,
        bbox=parse_bbox(bbox),
        limit=limit,
        offset=offset,
        with_boundary=with_boundary,
    )
    from app.geometry import render

    items = [service.to_out(a, n, lang, render(g, crs) if g else None) for a, n, g in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post(
    "", response_model=AreaOut, status_code=status.HTTP_201_CREATED, summary="Create an area"
)
async def create_area(
    body: AreaCreate,
    request: Request,
    session: DbSession,
    who: RegistryWriter,
    lang: RequestLang,
    response: Response,
) -> dict[str, Any]:
    area = await service.create_area(session, body, who, request)
    response.headers["Location"] = f"/api/v1/areas/{area.id}"
    return service.to_out(area, 0, lang, await service.boundary_geojson(session, area, CRS.WGS84))


@router.get("/{area_id}", response_model=AreaOut, summary="Get an area with its boundary")
async def get_area(
    area_id: IdPath,
    session: DbSession,
    who: RegistryReader,
    lang: RequestLang,
    crs: CrsQuery = CRS.WGS84,
) -> dict[str, Any]:
    area = await service.get_area(session, area_id)
    n = await service.children_count(session, area_id)
    return service.to_out(area, n, lang, await service.boundary_geojson(session, area, crs))


@router.patch("/{area_id}", response_model=AreaOut, summary="Change an area")
async def update_area(
    area_id: IdPath,
    body: AreaUpdate,
    request: Request,
    session: DbSession,
    who: RegistryWriter,
    lang: RequestLang,
) -> dict[str, Any]:
    area = await service.update_area(session, area_id, body, who, request)
    n = await service.children_count(session, area_id)
    return service.to_out(area, n, lang, await service.boundary_geojson(session, area, CRS.WGS84))


@router.delete("/{area_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Delete an empty area")
async def delete_area(
    area_id: IdPath, request: Request, session: DbSession, who: RegistryWriter
) -> Response:
    await service.delete_area(session, area_id, who, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{area_id}/coverage",
    summary="Coverage check: do the children tile the area with no gaps and no overlaps?",
    response_class=GeoJSONResponse,
    responses={200: {"content": {"application/geo+json": {}}}},
)
async def coverage(
    area_id: IdPath, session: DbSession, who: RegistryReporter, crs: CrsQuery = CRS.WGS84
) -> GeoJSONResponse:
    area, report = await service.coverage(session, area_id)
    fc = report.to_geojson()
    if crs is not CRS.WGS84:
        from shapely.geometry import shape

        from app.geometry import render

        for f in fc["features"]:
            if f.get("geometry"):
                f["geometry"] = render(shape(f["geometry"]), crs)
    fc.setdefault("properties", {}).update(
        {"area_id": area.id, "area_code": area.code, "area_name": area.name, "level": area.level}
    )
    return GeoJSONResponse(fc)


@router.get("/{area_id}/sizing", response_model=SizingReport, summary="Grids out of the size band")
async def sizing(
    area_id: IdPath, session: DbSession, who: RegistryReporter, lang: RequestLang
) -> dict[str, Any]:
    findings, checked, band = await service.sizing(session, area_id)
    return {
        "area_id": area_id,
        "checked": checked,
        "band": band.__dict__,
        "findings": [
            {
                "grid_id": x["grid_id"],
                "code": x["finding"].code,
                "name": x["finding"].name,
                "kind": x["finding"].kind,
                "reason": x["finding"].reason,
                "message": pick(lang, x["finding"].message, x["finding"].message_en),
                "value": x["finding"].value,
                "expected_min": x["finding"].expected_min,
                "expected_max": x["finding"].expected_max,
            }
            for x in findings
        ],
    }
