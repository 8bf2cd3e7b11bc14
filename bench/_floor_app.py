"""BENCH ONLY, never serve it: `app.main.app` plus `GET /bench/db-floor`, the cheapest endpoint
that touches the database: one `SELECT 1` on the hot pool's raw driver (as the lookup's one
statement runs), a tiny orjson answer, no policy. bench/bench_lookup.py serves this so that the
lookup is compared with the floor of "one HTTP request and one database round trip" beside the
floor of one HTTP request (`/healthz`), in the same process and the same run.

`GET /bench/route-floor` is the framework's floor for a route shaped like the lookup: the same
dependencies (the policy's public marker, the language, the hot pool's factory) and the same four
query parameters, validated the same way, answering a constant: what FastAPI costs before the
lookup does anything of its own."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Query, Response

from app.auth.policy import Public
from app.db import HotFactory, raw_of
from app.geometry import CRS
from app.grids.router import AtQuery
from app.i18n import RequestLang
from app.main import app


async def db_floor(connect: HotFactory) -> Response:
    async with connect() as conn, raw_of(conn) as raw:
        value = await raw.fetchval("SELECT 1")
    return Response(orjson.dumps({"ok": value}), media_type="application/json")


async def route_floor(
    connect: HotFactory,
    _: Public,
    lang: RequestLang,
    lon: float,
    lat: float,
    crs: Annotated[CRS, Query()] = CRS.WGS84,
    at: AtQuery = None,
) -> Response:
    return Response(orjson.dumps({"lang": lang}), media_type="application/json")


for path, endpoint in (("/bench/db-floor", db_floor), ("/bench/route-floor", route_floor)):
    app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    # First in the route table, as the lookup is first among the app's own routes.
    app.router.routes.insert(0, app.router.routes.pop())
