"""The signed URL prefix of a personal API token, for map clients that cannot send headers
(QGIS's vector tile layers, a GDAL connection string): `/s/wgs_…/tiles/…` and `/s/wgs_…/ogc…`
are served as `/tiles/…` and `/ogc…` with the credential as the bearer token.

The prefix becomes the request's `root_path`, so every link the API writes (OGC paging, the
tile URLs of TileJSON) carries it and the client follows them with the same access. The policy
(`app.auth.policy.authenticate`) keeps a signed credential to the map and to GET/HEAD; anything
else under `/s/` is an unknown route. The access log and metrics name the route template, never
the path, and the log scrubber replaces credentials wherever they appear."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.policy import MAP_PATHS
from app.auth.tokens import parse_signed

PREFIX = "/s/"


class SignedUrlMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("method") in ("GET", "HEAD"):
            root = scope.get("root_path", "")
            path: str = scope["path"]
            route = path[len(root) :] if root and path.startswith(root) else path
            if route.startswith(PREFIX):
                credential, _, rest = route[len(PREFIX) :].partition("/")
                if parse_signed(credential) and ("/" + rest).startswith(MAP_PATHS):
                    scope["root_path"] = f"{root}{PREFIX}{credential}"
                    if not (root and path.startswith(root)):
                        scope["path"] = scope["root_path"] + "/" + rest
                    scope["headers"] = [
                        *(h for h in scope.get("headers", []) if h[0] != b"authorization"),
                        (b"authorization", b"Bearer " + credential.encode("ascii")),
                    ]
        await self.app(scope, receive, send)
