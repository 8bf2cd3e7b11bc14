"""/tiles — Mapbox vector tiles of the grids, areas, cases and hot spots, and their TileJSON.

`grids` and `areas` are public (the grid map is published to residents; it carries no personal
data: names of places, household counts, how many staff are on duty). `cases` and `hotspots`
need a bearer token (`cases:read`) and show only what the caller may see. Map libraries send the
header through their request hook (MapLibre's `transformRequest`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BeforeValidator

from app.auth.policy import RULES, CaseReader, CoverageReader, Public
from app.auth.scope import rule_statement_binds
from app.cases.schemas import StatusesQuery
from app.categories.schemas import CategoryCodesQuery
from app.db import ReplicaReader
from app.errors import ApiError
from app.http import ApiRoute
from app.responses import FastJSON
from app.schemas import SHANGHAI, LocalInstant, strict_integer
from app.tiles import service
from app.tiles.schemas import TileJSON

router = APIRouter(prefix="/tiles", tags=["map"], route_class=ApiRoute)

PUBLIC_CACHE = "public, max-age=300"
PRIVATE_CACHE = "private, max-age=30"
HOTSPOT_DAYS = 30

Z = Annotated[
    int, Path(ge=0, le=service.MAX_ZOOM, description="Zoom level"), BeforeValidator(strict_integer)
]
X = Annotated[
    int,
    Path(ge=0, description="Column, 0 at the antimeridian (west)"),
    BeforeValidator(strict_integer),
]
Y = Annotated[
    int, Path(ge=0, description="Row, 0 at the top (XYZ scheme)"), BeforeValidator(strict_integer)
]
StatusQ = StatusesQuery
"""Default: every open status."""
CategoryQ = CategoryCodesQuery
SinceQ = Annotated[
    LocalInstant | None,
    Query(description="Reported at or after (ISO 8601; no offset = Shanghai)"),
]
UntilQ = Annotated[LocalInstant | None, Query(description="Reported before")]
DepartmentQ = Annotated[int | None, Query(description="Dispatched to this department")]

_TILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {service.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        "description": "The tile (ETag: a hash of its bytes)",
    },
    204: {"description": "Nothing in this tile"},
    304: {"description": "Not modified (If-None-Match matched the ETag)"},
}


def _check_tile(z: int, x: int, y: int) -> None:
    n = 1 << z
    for name, v in (("x", x), ("y", y)):
        if v >= n:
            raise ApiError(
                "validation_error",
                detail=f"第 {z} 级瓦片的 {name} 应在 0 到 {n - 1} 之间",
                detail_en=f"At zoom {z}, {name} must be between 0 and {n - 1}",
                field=name,
            )


async def _tile(
    request: Request,
    reader: Any,
    layer: service.Layer,
    z: int,
    x: int,
    y: int,
    extra: dict[str, Any],
) -> Response:
    _check_tile(z, x, y)
    # Below the layer's minzoom (TileJSON says so) features are sub-pixel and a tile would
    # gather a whole city: nothing to draw, and no query.
    tile = b"" if z < layer.minzoom else await service.render_tile(reader, layer, z, x, y, extra)
    headers = {"Cache-Control": PUBLIC_CACHE if layer.public else PRIVATE_CACHE}
    if not layer.public:
        headers["Vary"] = "Authorization"
    if not tile:
        return Response(status_code=204, headers=headers)
    tag = service.etag(tile)
    headers["ETag"] = tag
    inm = request.headers.get("if-none-match")
    if inm and (
        inm.strip() == "*" or tag in (t.strip().removeprefix("W/") for t in inm.split(","))
    ):
        return Response(status_code=304, headers=headers)
    return Response(tile, media_type=service.MEDIA_TYPE, headers=headers)


async def _filters(
    status_: StatusQ = None,
    category: CategoryQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    department_id: DepartmentQ = None,
) -> service.CaseFilters:
    """The case layers' query string (a dependency: async, so it runs without a thread hop)."""
    from app.cases.models import STATUSES

    bad = [s for s in status_ or () if s not in STATUSES]
    if bad:
        raise ApiError(
            "validation_error",
            detail=f"未知的状态：{', '.join(bad)}",
            detail_en=f"Unknown status: {', '.join(bad)}",
            field="status",
        )
    return service.CaseFilters(status_, category, since, until, department_id)


Filters = Annotated[service.CaseFilters, Depends(_filters)]


@router.get(
    "/grids/{z}/{x}/{y}.mvt",
    summary="Grids as a vector tile (public)",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def grids_tile(
    request: Request, z: Z, x: X, y: Y, reader: ReplicaReader, who: Public
) -> Response:
    return await _tile(request, reader, service.LAYERS["grids"], z, x, y, {})


@router.get(
    "/areas/{z}/{x}/{y}.mvt",
    summary="Streets and communities as a vector tile (public)",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def areas_tile(
    request: Request, z: Z, x: X, y: Y, reader: ReplicaReader, who: Public
) -> Response:
    return await _tile(request, reader, service.LAYERS["areas"], z, x, y, {})


@router.get(
    "/cases/{z}/{x}/{y}.mvt",
    summary="Cases in your scope as a vector tile",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def cases_tile(
    request: Request,
    z: Z,
    x: X,
    y: Y,
    who: CaseReader,
    reader: ReplicaReader,
    f: Filters,
) -> Response:
    extra = {**service.scope_params(who), **f.params(default_open=True)}
    return await _tile(request, reader, service.LAYERS["cases"], z, x, y, extra)


@router.get(
    "/hotspots/{z}/{x}/{y}.mvt",
    summary="Cases per grid over a period (default: the last 30 days), your scope",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def hotspots_tile(
    request: Request,
    z: Z,
    x: X,
    y: Y,
    who: CaseReader,
    reader: ReplicaReader,
    f: Filters,
) -> Response:
    if f.since is None:
        # Whole hours, so that the tiles of one map view agree and stay cacheable.
        now = datetime.now(SHANGHAI).replace(minute=0, second=0, microsecond=0)
        f = service.CaseFilters(
            f.statuses, f.categories, now - timedelta(days=HOTSPOT_DAYS), f.until, f.department_id
        )
    extra = {**service.scope_params(who), **f.params(default_open=False)}
    return await _tile(request, reader, service.LAYERS["hotspots"], z, x, y, extra)


COVERAGE_DAYS = 30


@router.get(
    "/coverage/{z}/{x}/{y}.mvt",
    summary="Patrol coverage cells (visited / not visited since `since`, default 30 days)",
    response_class=Response,
    responses=_TILE_RESPONSES,
)
async def coverage_tile(
    request: Request,
    z: Z,
    x: X,
    y: Y,
    who: CoverageReader,
    reader: ReplicaReader,
    since: Annotated[
        LocalInstant | None, Query(description="Visited at or after (default: 30 days ago)")
    ] = None,
) -> Response:
    if since is None:
        # Whole days, so that the tiles of one map view agree and stay cacheable.
        today = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
        since = today - timedelta(days=COVERAGE_DAYS)
    extra = {**rule_statement_binds(who, RULES["coverage:read"]), "since": since}
    return await _tile(request, reader, service.LAYERS["coverage"], z, x, y, extra)


async def _tilejson(request: Request, reader: Any, name: str) -> Response:
    layer = service.LAYERS[name]
    bounds = await service.data_bounds(reader)
    query = urlencode(list(request.query_params.multi_items()))
    base = str(request.base_url).rstrip("/")
    url = f"{base}/tiles/{name}/{{z}}/{{x}}/{{y}}.mvt" + (f"?{query}" if query else "")
    body = TileJSON(
        tilejson="3.0.0",
        name=name,
        description=layer.description,
        version="1.0.0",
        scheme="xyz",
        tiles=[url],
        minzoom=layer.minzoom,
        maxzoom=layer.maxzoom,
        bounds=bounds,
        center=[
            round((bounds[0] + bounds[2]) / 2, 6),
            round((bounds[1] + bounds[3]) / 2, 6),
            max(layer.minzoom, 12),
        ],
        vector_layers=[
            {
                "id": name,
                "description": layer.description,
                "minzoom": layer.minzoom,
                "maxzoom": layer.maxzoom,
                "fields": layer.fields,
            }
        ],
    )
    cache = PUBLIC_CACHE if layer.public else PRIVATE_CACHE
    return FastJSON(body.model_dump(), headers={"Cache-Control": cache})


@router.get("/grids.json", response_model=TileJSON, summary="TileJSON 3.0 of the grids layer")
async def grids_tilejson(request: Request, reader: ReplicaReader, who: Public) -> Response:
    return await _tilejson(request, reader, "grids")


@router.get("/areas.json", response_model=TileJSON, summary="TileJSON 3.0 of the areas layer")
async def areas_tilejson(request: Request, reader: ReplicaReader, who: Public) -> Response:
    return await _tilejson(request, reader, "areas")


@router.get(
    "/cases.json",
    response_model=TileJSON,
    summary="TileJSON 3.0 of the cases layer (its query string is passed on to the tiles)",
)
async def cases_tilejson(
    request: Request,
    who: CaseReader,
    reader: ReplicaReader,
    f: Filters,
) -> Response:
    return await _tilejson(request, reader, "cases")


@router.get(
    "/hotspots.json",
    response_model=TileJSON,
    summary="TileJSON 3.0 of the hot-spot layer (its query string is passed on to the tiles)",
)
async def hotspots_tilejson(
    request: Request,
    who: CaseReader,
    reader: ReplicaReader,
    f: Filters,
) -> Response:
    return await _tilejson(request, reader, "hotspots")


@router.get(
    "/coverage.json",
    response_model=TileJSON,
    summary="TileJSON 3.0 of the patrol coverage layer (its query string is passed on)",
)
async def coverage_tilejson(
    request: Request,
    who: CoverageReader,
    reader: ReplicaReader,
    since: Annotated[LocalInstant | None, Query(description="Visited at or after")] = None,
) -> Response:
    return await _tilejson(request, reader, "coverage")
