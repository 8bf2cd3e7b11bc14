"""`/docs`: Swagger UI served from the installed package (`swagger-ui-py`, Apache-2.0: its static
swagger-ui build), never from a CDN: the page works offline and needs no subresource integrity.
The page's one inline script runs under a nonce; ReDoc (a CDN script) is not served."""

from __future__ import annotations

import importlib.util
import secrets
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse

ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
PREFIX = "/docs/assets/"


def static_dir() -> Path:
    spec = importlib.util.find_spec("swagger_ui")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def csp(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


def install(app: FastAPI, title: str) -> None:
    root = static_dir()

    async def docs(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{title} — API",
            swagger_js_url=PREFIX + "swagger-ui-bundle.js",
            swagger_css_url=PREFIX + "swagger-ui.css",
            swagger_favicon_url=PREFIX + "favicon-32x32.png",
            oauth2_redirect_url="/docs/oauth2-redirect",
        )
        body = bytes(page.body).replace(b"<script>", f'<script nonce="{nonce}">'.encode())
        return Response(
            body,
            media_type="text/html; charset=utf-8",
            headers={"Content-Security-Policy": csp(nonce), "Cache-Control": "no-cache"},
        )

    async def redirect(request: Request) -> Response:
        return get_swagger_ui_oauth2_redirect_html()

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in ASSETS:  # a fixed list: no path from the client reaches the disk
            return Response(status_code=404)
        return FileResponse(
            root / name,
            media_type=ASSETS[name],
            headers={"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"},
        )

    app.add_route("/docs", docs, include_in_schema=False)
    app.add_route("/docs/oauth2-redirect", redirect, include_in_schema=False)
    app.add_route(PREFIX + "{name}", asset, include_in_schema=False)
