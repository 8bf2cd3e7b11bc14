"""/app — 网格通, the grid worker's field app (a PWA; field/ builds it into field/dist with
`make field`).

- `GET /app` is the page, `GET /app/sw.js` the service worker (scope `/app`, allowed by header) and
  `GET /app/manifest.webmanifest` the manifest: never cached by HTTP (they name the current build).
- `GET /app/assets/{asset}` are the build's files under `assets/<content hash>/`, cached for a year
  (`immutable`); scripts and styles go gzip-compressed to browsers that accept it. The name is
  checked against a strict pattern and must resolve inside the assets folder.
All are public: the app holds no data; everything it shows comes from the API with a token.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from app.auth.policy import Public
from app.config import get_settings
from app.errors import ApiError
from app.http import ApiRoute, asset_headers, built_asset, page_headers

router = APIRouter(prefix="/app", tags=["field app"], route_class=ApiRoute)

TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
    ".webmanifest": "application/manifest+json",
}
ASSET = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}){1,3}$")
"""`<hash>/<name>` or `<hash>/vendor/<name>`: letters, digits, `_-.`, no segment starting with a dot."""

CSP = (
    "default-src 'self'; script-src 'self'; worker-src 'self'; "
    "img-src 'self' data: blob:; style-src 'self'; connect-src 'self'; "
    "font-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
PAGE_HEADERS = page_headers(CSP)
ASSET_HEADERS = asset_headers(CSP)


def dist_dir() -> Path:
    configured = get_settings().field_dir
    if configured:
        return Path(configured).resolve()
    return (Path(__file__).resolve().parents[2] / "field" / "dist").resolve()


def _not_built() -> ApiError:
    return ApiError(
        "field_app_not_built",
        detail="网格通尚未构建：请运行 make field（make run 和 make test 会自动构建）",
        detail_en="The field app is not built: run `make field` (make run and make test do)",
    )


def _page(name: str, media_type: str, extra: dict[str, str] | None = None) -> Response:
    try:
        body = (dist_dir() / name).read_bytes()
    except OSError:
        raise _not_built() from None
    return Response(body, media_type=media_type, headers={**PAGE_HEADERS, **(extra or {})})


@router.get(
    "",
    response_class=Response,
    summary="网格通, the grid worker's field app (PWA): sign-in, map, report, queue, outbox",
    responses={200: {"content": {"text/html": {}}}, 503: {"description": "Not built"}},
)
async def field_page(_: Public) -> Response:
    return _page("index.html", TYPES[".html"])


@router.get(
    "/sw.js",
    response_class=Response,
    summary="The field app's service worker (caches the app shell)",
    responses={200: {"content": {"text/javascript": {}}}, 503: {"description": "Not built"}},
)
async def field_service_worker(_: Public) -> Response:
    return _page("sw.js", TYPES[".js"], {"Service-Worker-Allowed": "/app"})


@router.get(
    "/manifest.webmanifest",
    response_class=Response,
    summary="The field app's web app manifest (installable)",
    responses={
        200: {"content": {"application/manifest+json": {}}},
        503: {"description": "Not built"},
    },
)
async def field_manifest(_: Public) -> Response:
    return _page("manifest.webmanifest", TYPES[".webmanifest"])


@router.get(
    "/assets/{asset:path}",
    response_class=FileResponse,
    summary="A file of the built field app (content-hashed path, cached for a year)",
    responses={
        200: {"content": {"text/javascript": {}, "text/css": {}, "image/png": {}}},
        404: {"description": "No such file"},
    },
)
async def field_asset(
    request: Request,
    _: Public,
    asset: Annotated[str, PathParam(max_length=300, description="`<build hash>/<file>`")],
) -> FileResponse:
    missing = ApiError(
        "asset_not_found",
        detail=f"网格通文件不存在：{asset[:100]}",
        detail_en=f"No such field app file: {asset[:100]}",
    )
    return built_asset(request, dist_dir() / "assets", asset, TYPES, ASSET, ASSET_HEADERS, missing)
