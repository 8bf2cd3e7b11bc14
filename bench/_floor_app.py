"""BENCH ONLY, never serve it: `app.main.app` plus `GET /bench/db-floor`, the cheapest endpoint
that touches the database: one `SELECT 1` on the hot pool's raw driver (as the lookup's one
statement runs), a tiny orjson answer, no policy. bench/bench_lookup.py serves this so that the
lookup is compared with the floor of "one HTTP request and one database round trip" beside the
floor of one HTTP request (`/healthz`), in the same process and the same run.

`GET /bench/route-floor` is the framework's floor for a route shaped like the lookup: the same
dependencies (the hot pool's factory, the policy's public marker), the same query model read the
same way (`app.http.read_query`) and the language from the header, answering a constant: what
the stack costs before the lookup does anything of its own."""

from __future__ import annotations

import orjson
from fastapi import Request, Response

from app.auth.policy import Public
from app.db import HotFactory, raw_of
from app.grids.schemas import LookupQuery
from app.http import read_query
from app.i18n import use_lang
from app.main import app


async def db_floor(connect: HotFactory) -> Response:
    async with connect() as conn, raw_of(conn) as raw:
        value = await raw.fetchval("SELECT 1")
    return Response(orjson.dumps({"ok": value}), media_type="application/json")


async def route_floor(request: Request, connect: HotFactory, _: Public) -> Response:
    q = read_query(LookupQuery, request)
    lang = use_lang(request.headers.get("accept-language"))
    return Response(orjson.dumps({"lang": lang, "crs": q.crs.value}), media_type="application/json")


for path, endpoint in (("/bench/db-floor", db_floor), ("/bench/route-floor", route_floor)):
    app.add_api_route(path, endpoint, methods=["GET"], include_in_schema=False)
    # First in the route table, as the lookup is first among the app's own routes.
    app.router.routes.insert(0, app.router.routes.pop())
