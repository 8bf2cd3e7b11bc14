"""/api/v1/grids — grids, the point lookup, the service card, GeoJSON import and export."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BeforeValidator

from app.auth.policy import (
    RULES,
    Public,
    RegistryReader,
    RegistryReporter,
    RegistryWriter,
    StaffReader,
    area_or_404,
)
from app.db import DbSession, HotFactory, HotReader
from app.errors import ApiError
from app.geometry import CRS, CrsQuery, parse_lonlat, render
from app.grids import lookup_index, service, transfer
from app.grids.schemas import (
    AT_DESCRIPTION,
    BoundaryVersion,
    GridCreate,
    GridKind,
    GridOut,
    GridPage,
    GridUpdate,
    ImportResult,
    LookupOut,
    LookupQuery,
    ServiceCard,
)
from app.http import ApiRoute, query_parameters, read_json_body, read_query
from app.i18n import RequestLang, use_lang
from app.responses import GeoJSONResponse, cached_json
from app.schemas import (
    BboxQuery,
    IdPath,
    LimitQuery,
    LocalInstant,
    OffsetQuery,
    SearchQuery,
    page_limit,
    parse_bbox,
    strict_integer,
)
from app.users.schemas import StaffMember
from app.users.service import grid_staff

router = APIRouter(prefix="/api/v1/grids", tags=["grids"], route_class=ApiRoute)
lookup_router = APIRouter(prefix="/api/v1/grids", tags=["grids"], route_class=ApiRoute)
"""The point lookup alone, included before every other router (`app.main`): the route table is
matched in order, and matching past the routers before it costs a hot path ~0.2 ms."""

AtQuery = Annotated[
    LocalInstant | None,
    Query(description=AT_DESCRIPTION),
]


@router.get("", response_model=GridPage, summary="List grids")
async def list_grids(
    session: DbSession,
    who: RegistryReader,
    lang: RequestLang,
    kind: GridKind | None = None,
    area_id: Annotated[
        int | None,
        BeforeValidator(strict_integer),
        Query(description="Grids in this area (any level)"),
    ] = None,
    q: SearchQuery = None,
    bbox: BboxQuery = None,
    with_boundary: bool = False,
    crs: CrsQuery = CRS.WGS84,
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    limit = page_limit(limit)
    rows, total = await service.list_grids(
        session,
        kind=kind,
        area_id=area_id,
        q=q,
        bbox=parse_bbox(bbox),
        with_boundary=with_boundary,
        limit=limit,
        offset=offset,
    )
    items = [
        service.grid_out(r, lang, render(r.geojson, crs) if with_boundary else None) for r in rows
    ]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@lookup_router.get(
    "/lookup",
    response_model=LookupOut,
    summary="Which grid is this point in?",
    responses={
        200: {
            "description": "The grid and its service card (ETag: a hash of the answer; "
            "`Cache-Control: public, max-age=60`; If-None-Match answers 304)"
        },
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
        404: {"description": "The point is in no grid; the problem names the nearest grid"},
        422: {"description": "Invalid coordinates (out of range, not finite, lat/lon swapped)"},
    },
    openapi_extra={"parameters": query_parameters(LookupQuery)},
)
async def lookup(request: Request, connect: HotFactory, _: Public) -> Response:
    # The hot public path (every QR scan, every phone report): its own router matched first, its
    # query read as one model and its language from the header (FastAPI's resolution of four
    # declared parameters and a dependency cost about 60 µs a request), the answer from the
    # process's index with the grid's part encoded once, or one prepared statement on the raw
    # driver.
    q = read_query(LookupQuery, request)
    lang = use_lang(request.headers.get("accept-language"))
    x, y = parse_lonlat(q.lon, q.lat, q.crs)
    # Now: the process's index of the live boundaries (no round trip): the grid, or the nearest
    # one and its distance. A past time, a point far from every grid or no index yet: the
    # statement.
    found = lookup_index.locate(x, y, lang) if q.at is None else None
    row: Any
    place: bytes | None = None
    distance: float | None = None
    if found is not None:
        row, place, distance = found
    else:
        async with connect() as conn:
            row = await service.lookup_raw(conn, x, y, q.at)
        if row is not None and not row.inside:
            distance = float(row.distance_m)
    if row is None:
        raise ApiError(
            "no_grids",
            detail="当前没有任何网格" if q.at is None else "该时间没有任何网格",
            detail_en="There are no grids" + ("" if q.at is None else " at that time"),
        )
    if distance is not None:
        d = round(distance, 1)
        raise ApiError(
            "outside_all_grids",
            detail=f"该位置不在任何网格内，最近的网格是 {row.name}（{row.code}），距离 {d} 米",
            detail_en=f"The point is in no grid; the nearest is {row.name} ({row.code}), {d} m away",
            extra={
                "nearest": {
                    "grid": service.brief(row, lang),
                    "community": {"id": row.c_id, "code": row.c_code, "name": row.c_name},
                    "distance_m": d,
                }
            },
        )
    body = service.lookup_json(row, lang, q.lon, q.lat, q.crs, q.at, place)
    return cached_json(request, body)


@router.post(
    "/import",
    response_model=ImportResult,
    status_code=status.HTTP_201_CREATED,
    summary="Import grids from a GeoJSON FeatureCollection (all or nothing)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/geo+json": {
                    "schema": {
                        "type": "object",
                        "description": "RFC 7946 FeatureCollection; properties: code, name, kind, "
                        "community_code, households, population, notes",
                        "required": ["type", "features"],
                        "properties": {
                            "type": {"type": "string", "enum": ["FeatureCollection"]},
                            "features": {"type": "array", "items": {"type": "object"}},
                        },
                    }
                },
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
    responses={
        422: {"description": "Every bad feature, with its index and reason; nothing was written"}
    },
)
async def import_grids(
    request: Request,
    session: DbSession,
    who: RegistryWriter,
    repair: Annotated[bool, Query(description="Repair invalid rings instead of rejecting")] = False,
    mode: Annotated[
        transfer.ImportMode, Query(description="create: codes must be new; upsert: update existing")
    ] = "create",
    crs: Annotated[CRS, Query(description="CRS of the file's coordinates")] = CRS.WGS84,
) -> dict[str, Any]:
    fc = await read_json_body(request)
    report = await transfer.import_grids(
        session,
        fc,
        crs=crs,
        repair=repair,
        mode=mode,
        scope=who.area_roots(RULES["registry:write"]),
        who=who,
        request=request,
    )
    return report.__dict__


@router.get(
    "/export",
    summary="Export live grids as GeoJSON (the import format)",
    response_class=GeoJSONResponse,
    responses={200: {"content": {"application/geo+json": {}}}},
)
async def export_grids(
    session: DbSession,
    who: RegistryReporter,
    area_id: Annotated[
        int | None, Query(description="Only grids in this area"), BeforeValidator(strict_integer)
    ] = None,
    crs: CrsQuery = CRS.WGS84,
) -> GeoJSONResponse:
    if area_id is not None:
        await area_or_404(session, who, "registry:report", area_id)
    fc = await transfer.export_grids(
        session, area_id=area_id, crs=crs, scope=who.area_roots(RULES["registry:report"])
    )
    return GeoJSONResponse(fc, headers={"Content-Disposition": 'inline; filename="grids.geojson"'})


@router.post(
    "", response_model=GridOut, status_code=status.HTTP_201_CREATED, summary="Create a grid"
)
async def create_grid(
    body: GridCreate,
    request: Request,
    session: DbSession,
    who: RegistryWriter,
    lang: RequestLang,
    response: Response,
) -> dict[str, Any]:
    grid_id = await service.create_grid(session, body, who, request)
    response.headers["Location"] = f"/api/v1/grids/{grid_id}"
    row = await service.get_grid_row(session, grid_id)
    return service.grid_out(row, lang, render(row.geojson))


@router.get("/{grid_id}", response_model=GridOut, summary="Get a grid (optionally as it was `at`)")
async def get_grid(
    grid_id: IdPath,
    session: DbSession,
    who: RegistryReader,
    lang: RequestLang,
    crs: CrsQuery = CRS.WGS84,
    at: AtQuery = None,
) -> dict[str, Any]:
    row = await service.get_grid_row(session, grid_id, at)
    return service.grid_out(row, lang, render(row.geojson, crs) if row.geojson else None)


@router.patch("/{grid_id}", response_model=GridOut, summary="Change a grid (boundary history kept)")
async def update_grid(
    grid_id: IdPath,
    body: GridUpdate,
    request: Request,
    session: DbSession,
    who: RegistryWriter,
    lang: RequestLang,
) -> dict[str, Any]:
    await service.update_grid(session, grid_id, body, who, request)
    row = await service.get_grid_row(session, grid_id)
    return service.grid_out(row, lang, render(row.geojson))


@router.delete("/{grid_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Retire a grid")
async def delete_grid(
    grid_id: IdPath, request: Request, session: DbSession, who: RegistryWriter
) -> Response:
    await service.delete_grid(session, grid_id, who, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{grid_id}/boundaries",
    response_model=list[BoundaryVersion],
    summary="Every version of the grid's boundary",
)
async def boundaries(
    grid_id: IdPath, session: DbSession, who: RegistryReader, crs: CrsQuery = CRS.WGS84
) -> list[dict[str, Any]]:
    rows = await service.boundary_history(session, grid_id)
    return [
        {
            "id": r.id,
            "valid_from": r.valid_from,
            "valid_to": r.valid_to,
            "area_m2": round(float(r.area_m2), 1),
            "author": (
                {"id": r.created_by, "name": r.author_name} if r.created_by is not None else None
            ),
            "boundary": render(r.geojson, crs),
        }
        for r in rows
    ]


@router.get(
    "/{grid_id}/card",
    response_model=ServiceCard,
    summary="The grid's service card (public)",
    responses={
        200: {"description": "The card (ETag; `Cache-Control: public, max-age=60`)"},
        304: {"description": "Not modified (If-None-Match matched the ETag)"},
    },
)
async def service_card(
    request: Request, grid_id: IdPath, reader: HotReader, _: Public, lang: RequestLang
) -> Response:
    # ETag and `Cache-Control: public, max-age=60`: a phone or a proxy reuses the card.
    card = await service.service_card(reader, grid_id, lang)
    return cached_json(request, orjson.dumps(card))


@router.get(
    "/{grid_id}/staff",
    response_model=list[StaffMember],
    summary="The grid's staff roster (leader, full-time and part-time workers)",
)
async def staff(
    grid_id: IdPath, session: DbSession, who: StaffReader, lang: RequestLang
) -> list[dict[str, Any]]:
    await service.get_grid_row(session, grid_id)
    return (await grid_staff(session, [grid_id], lang)).get(grid_id, [])
