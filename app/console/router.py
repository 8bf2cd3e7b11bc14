"""/console — the single-page console (console/ builds it into console/dist with `make console`).

- `GET /console` is the page (never cached: it names the current build's assets).
- `GET /console/assets/{asset}` are the build's files under `assets/<content hash>/`, cached for a
  year (`immutable`): a new build has a new hash. Scripts and styles go gzip-compressed (the build
  writes the copies) to browsers that accept it. The name is checked against a strict pattern and
  must resolve inside the assets folder, so no path leaves it.
Both are public: the page holds no data; everything it shows comes from the API with a token.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import BeforeValidator

from app.auth.policy import Public
from app.config import get_settings
from app.console import basemap
from app.errors import ApiError
from app.http import ApiRoute, asset_headers, built_asset, page_headers
from app.schemas import strict_integer

router = APIRouter(prefix="/console", tags=["console"], route_class=ApiRoute)

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".png": "image/png",
    ".svg": "image/svg+xml",
    ".pbf": "application/x-protobuf",
}
ASSET = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){1,4}$")
"""`<hash>/<name>` or `<hash>/vendor/<name>`: letters, digits, `_-.`, no segment starting with a dot."""


def csp() -> str:
    """The pages' policy: the app's own origin only, and the base map's when one is set."""
    extra = f" {basemap.origin()}" if basemap.origin() else ""
    return (
        "default-src 'self'; script-src 'self'; worker-src 'self' blob:; child-src 'self' blob:; "
        f"img-src 'self' data: blob:{extra}; style-src 'self'; connect-src 'self'{extra}; "
        "font-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'"
    )


CSP = csp()


def dist_dir() -> Path:
    configured = get_settings().console_dir
    if configured:
        return Path(configured).resolve()
    return (Path(__file__).resolve().parents[2] / "console" / "dist").resolve()


@lru_cache(maxsize=4)
def _page(path: Path, mtime_ns: int) -> bytes:
    return path.read_bytes()


def _not_built() -> ApiError:
    return ApiError(
        "console_not_built",
        detail="指挥台尚未构建：请运行 make console（make run 和 make test 会自动构建）",
        detail_en="The console is not built: run `make console` (make run and make test do)",
    )


@router.get(
    "",
    response_class=HTMLResponse,
    summary="The console (single-page app): login, map, queue, case panel",
    responses={503: {"description": "The console has not been built"}},
)
async def console_page(_: Public) -> HTMLResponse:
    index = dist_dir() / "index.html"
    try:
        body = _page(index, index.stat().st_mtime_ns)
    except OSError:
        raise _not_built() from None
    return HTMLResponse(body, headers=page_headers(csp()))


@router.get(
    "/assets/{asset:path}",
    response_class=FileResponse,
    summary="A file of the built console (content-hashed path, cached for a year)",
    responses={
        200: {"content": {"text/javascript": {}, "text/css": {}}},
        404: {"description": "No such file"},
    },
)
async def console_asset(
    request: Request,
    _: Public,
    asset: Annotated[str, PathParam(max_length=300, description="`<build hash>/<file>`")],
) -> FileResponse:
    missing = ApiError(
        "asset_not_found",
        detail=f"指挥台文件不存在：{asset[:100]}",
        detail_en=f"No such console file: {asset[:100]}",
    )
    return built_asset(
        request, dist_dir() / "assets", asset, TYPES, ASSET, asset_headers(csp()), missing
    )


@router.get(
    "/config.json",
    summary="What the console draws beyond the API's layers: the base map (or null)",
)
async def console_config(request: Request, _: Public) -> dict[str, Any]:
    return {"base_map": basemap.config(str(request.base_url).rstrip("/"))}


TileZ = Annotated[int, PathParam(ge=0, le=22), BeforeValidator(strict_integer)]
TileXY = Annotated[int, PathParam(ge=0, le=(1 << 22) - 1), BeforeValidator(strict_integer)]


@router.get(
    "/basemap/{z}/{x}/{y}",
    response_class=Response,
    summary="A tile of the offline base map (WANGGE_CONSOLE_BASE_MAP_FILE, MBTiles)",
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {}}},
        404: {"description": "No such tile (or no offline base map configured)"},
    },
)
async def basemap_tile(z: TileZ, x: TileXY, y: TileXY, _: Public) -> Response:
    found = (
        await anyio.to_thread.run_sync(basemap.tile, z, x, y) if x < 1 << z and y < 1 << z else None
    )
    if found is None:
        raise ApiError(
            "basemap_tile_not_found",
            detail=f"底图瓦片不存在：{z}/{x}/{y}",
            detail_en=f"No such base map tile: {z}/{x}/{y}",
        )
    data, kind = found
    return Response(data, media_type=kind, headers={"Cache-Control": "public, max-age=86400"})
