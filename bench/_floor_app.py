"""BENCH ONLY, never serve it: `app.main.app` plus `GET /bench/db-floor`, the cheapest endpoint
that touches the database: one `SELECT 1` on the hot pool's raw driver (as the lookup's one
statement runs), a tiny orjson answer, no policy. bench/bench_lookup.py serves this so that the
lookup is compared with the floor of "one HTTP request and one database round trip" beside the
floor of one HTTP request (`/healthz`), in the same process and the same run."""

from __future__ import annotations

import orjson
from fastapi import Response

from app.db import HotFactory, raw_of
from app.main import app


async def db_floor(connect: HotFactory) -> Response:
    async with connect() as conn, raw_of(conn) as raw:
        value = await raw.fetchval("SELECT 1")
    return Response(orjson.dumps({"ok": value}), media_type="application/json")


app.add_api_route("/bench/db-floor", db_floor, methods=["GET"], include_in_schema=False)
# First in the route table, as the lookup is first among the app's own routes.
app.router.routes.insert(0, app.router.routes.pop())
