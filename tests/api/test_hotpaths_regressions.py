"""Issue 23, hot paths at the floor: the lookup's and the card's ETag / Cache-Control (304 on
If-None-Match), the hot pool's generic plans, the pool defaults, the worker count of `make run`
and the image."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import httpx
from fastapi import FastAPI, Query, Request
from sqlalchemy import text

from app.errors import install
from app.geometry import CRS
from app.grids.router import AtQuery
from app.grids.schemas import LookupQuery
from app.http import query_parameters, read_query
from app.schemas import LocalInstant

ROOT = Path(__file__).resolve().parents[2]
POINT = {"lon": 117.03, "lat": 28.24}  # inside a demo grid (test_grids)


async def test_lookup_is_cacheable_and_revalidates(anon: httpx.AsyncClient, demo) -> None:
    r = await anon.get("/api/v1/grids/lookup", params=POINT)
    assert r.status_code == 200, r.text
    tag = r.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"') and len(tag) == 34
    assert r.headers["cache-control"] == "public, max-age=60"
    assert "Accept-Language" in r.headers["vary"]
    assert r.headers["content-type"] == "application/json"
    assert r.json()["grid"]["code"]
    # The same answer, the same tag; a matching If-None-Match (strong or weak, in a list) is 304.
    again = await anon.get("/api/v1/grids/lookup", params=POINT)
    assert again.headers["etag"] == tag and again.content == r.content
    for inm in (tag, f"W/{tag}", f'"x", {tag}', "*"):
        nm = await anon.get("/api/v1/grids/lookup", params=POINT, headers={"If-None-Match": inm})
        assert nm.status_code == 304 and nm.content == b"" and nm.headers["etag"] == tag
    other = await anon.get("/api/v1/grids/lookup", params=POINT, headers={"If-None-Match": '"x"'})
    assert other.status_code == 200 and other.content == r.content
    # Another language is another answer (labels), another tag.
    en = await anon.get("/api/v1/grids/lookup", params=POINT, headers={"Accept-Language": "en"})
    assert en.status_code == 200 and en.headers["etag"] != tag


async def test_lookup_errors_are_not_cached(anon: httpx.AsyncClient, demo) -> None:
    r = await anon.get("/api/v1/grids/lookup", params={"lon": 117.5, "lat": 28.0})
    assert r.status_code == 404 and r.json()["code"] == "outside_all_grids"
    assert "etag" not in r.headers and r.headers.get("cache-control") != "public, max-age=60"


async def test_card_is_cacheable_and_revalidates(anon: httpx.AsyncClient, demo) -> None:
    grid = (await anon.get("/api/v1/grids/lookup", params=POINT)).json()["grid"]["id"]
    r = await anon.get(f"/api/v1/grids/{grid}/card")
    assert r.status_code == 200 and r.json()["grid"]["id"] == grid
    assert r.headers["cache-control"] == "public, max-age=60"
    nm = await anon.get(f"/api/v1/grids/{grid}/card", headers={"If-None-Match": r.headers["etag"]})
    assert nm.status_code == 304 and nm.content == b""
    missing = await anon.get("/api/v1/grids/999999999/card")
    assert missing.status_code == 404 and "etag" not in missing.headers


async def test_hot_pool_plans_generically() -> None:
    """Generic plans by default; the mode the setting it runs with asks for (`make test-citus`
    turns them off: `WANGGE_DB_HOT_GENERIC_PLANS=false`, scripts/test-citus.sh)."""
    from app.config import Settings, get_settings
    from app.db import Database

    assert Settings.model_fields["db_hot_generic_plans"].default is True
    want = "force_generic_plan" if get_settings().db_hot_generic_plans else "auto"
    hot = Database()
    try:
        async with hot.hot.connect() as conn:
            mode = (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one()
            assert mode == want
        async with hot.reader.connect() as conn:
            assert (await conn.execute(text("SHOW plan_cache_mode"))).scalar_one() == "auto"
    finally:
        await hot.dispose()


def test_pool_defaults() -> None:
    from app.config import Settings

    fields = Settings.model_fields
    assert fields["db_pool_size"].default == 20
    assert fields["db_hot_pool_size"].default == 16


def test_make_run_and_the_image_serve_one_worker_per_core() -> None:
    run = (ROOT / "scripts" / "run.sh").read_text()
    assert "WEB_CONCURRENCY=${WEB_CONCURRENCY:-$(nproc" in run
    assert '--workers "$WEB_CONCURRENCY"' in run
    docker = (ROOT / "Dockerfile").read_text()
    assert "--workers ${WEB_CONCURRENCY:-$(nproc)}" in docker
    assert "WEB_CONCURRENCY=4" not in docker


def _sample_path(path: str) -> str:
    """A concrete path the route answers (every parameter a number: ids are digits)."""
    return re.sub(r"\{\w+(:\w+)?\}", "12", path)


def test_the_router_order_decides_nothing_but_speed() -> None:
    """The routers are ordered for speed (the hot paths first, `app/main.py`); that is safe only
    if no path of one router is also answered by a route of another, for the same method. Within
    one router its author orders (Open311's catch-all comes after its own routes)."""
    from app.http import api_routes
    from app.main import create_app

    entries = create_app().router.routes
    owned = [(i, r) for i, entry in enumerate(entries) for r in api_routes([entry])]
    assert len(owned) > 250
    clashes = [
        (a.path, b.path, sorted(a.methods & b.methods))
        for i, a in owned
        for j, b in owned
        if i != j and a.methods & b.methods and b.path_regex.match(_sample_path(a.path))
    ]
    assert clashes == []
    # The phone's hot paths are among the first entries (bench/bench_routes.py measures them).
    first = {r.path for _, r in owned[: sum(1 for i, _ in owned if i <= 11)]}
    for path in (
        "/api/v1/cases",
        "/api/v1/sync",
        "/api/v1/patrols/{patrol_id:digits}/points",
        "/api/v1/me/tasks",
    ):
        assert path in first, path


QUERIES = [
    "",
    "lon=117.02",
    "lon=abc&lat=28.2",
    "lon=&lat=1",
    "lon=nan&lat=28.2",
    "lon=1e400&lat=1",
    "lon=117.02&lat=28.24&crs=bad",
    "lon=117.02&lat=28.24&crs=",
    "lon=117.02&lat=28.24&crs=gcj02",
    "lon=117.02&lat=28.24&at=notatime",
    "lon=117.02&lat=28.24&at=1999-01-01",
    "lon=117.02&lat=28.24&at=2026-06-01T00:00:00",
    "lon=117.02&lat=28.24&at=2026-06-01T00:00:00Z",
    "lon=117.02&lat=28.24&lon=117.03",  # repeated: the last wins
    "lon=117.02&lat=28.24&unknown=1",
    "lon=%20117.02&lat=28.24",
]


async def test_a_query_model_reads_as_declared_parameters() -> None:
    """`app.http.read_query` (the lookup's query, one pydantic-core call) accepts, converts and
    refuses exactly as FastAPI's declared query parameters do: the same values, the same 422
    problem (code, field, Chinese and English messages), and the same OpenAPI parameters."""
    # (the routes' annotations are resolved in this module's globals: imported at its top)
    app = FastAPI()
    install(app)

    def _out(lon: float, lat: float, crs: CRS, at: LocalInstant | None) -> dict[str, Any]:
        return {"lon": lon, "lat": lat, "crs": crs.value, "at": at.isoformat() if at else None}

    @app.get("/declared")
    async def declared(
        lon: float,
        lat: float,
        crs: Annotated[CRS, Query(description="CRS of lon/lat")] = CRS.WGS84,
        at: AtQuery = None,
    ) -> dict[str, Any]:
        return _out(lon, lat, crs, at)

    @app.get("/model", openapi_extra={"parameters": query_parameters(LookupQuery)})
    async def model(request: Request) -> dict[str, Any]:
        q = read_query(LookupQuery, request)
        return _out(q.lon, q.lat, q.crs, q.at)

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        for qs in QUERIES:
            for lang in ("zh", "en"):
                h = {"Accept-Language": lang}
                a = await c.get(f"/declared?{qs}", headers=h)
                b = await c.get(f"/model?{qs}", headers=h)
                assert (a.status_code, a.headers["content-type"]) == (
                    b.status_code,
                    b.headers["content-type"],
                ), qs
                body_a = {k: v for k, v in a.json().items() if k != "instance"}
                body_b = {k: v for k, v in b.json().items() if k != "instance"}
                assert body_a == body_b, qs
    doc = app.openapi()["paths"]
    assert doc["/declared"]["get"]["parameters"] == doc["/model"]["get"]["parameters"]
