"""The lookup's in-process index (app.grids.lookup_index, issue 23): the same answers as the
statement for every kind of point, the statement where the index cannot answer, and freshness
through the fingerprint (a changed boundary, community or post rebuilds it)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio
import shapely
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.geometry import CRS
from app.grids import lookup_index, service
from app.grids.schemas import LookupOut
from tests.helpers import DEMO_DISTRICT, SANDBOX, make_sandbox, square

LON, LAT = SANDBOX
POINT = {"lon": 117.03, "lat": 28.24}  # inside a demo grid


@pytest_asyncio.fixture
async def index(conn: AsyncConnection) -> AsyncIterator[lookup_index.Index]:
    lookup_index.clear()
    assert await lookup_index.refresh(conn, 200_000)
    assert lookup_index.current is not None
    yield lookup_index.current
    lookup_index.clear()


async def _points(conn: AsyncConnection) -> list[tuple[float, float]]:
    """Seeded points over the demo's extent, plus every grid's first vertex (on edges shared by
    several grids: the lowest-code rule) and the midpoints of its first ring's first edges."""
    rows = (
        await conn.execute(
            text("SELECT ST_AsBinary(boundary) AS wkb FROM grid_boundaries WHERE valid_to IS NULL")
        )
    ).all()
    geoms = shapely.from_wkb([bytes(r.wkb) for r in rows])
    x0, y0, x1, y1 = shapely.total_bounds(geoms)
    rnd = random.Random(20261202)
    pts = [(rnd.uniform(x0, x1), rnd.uniform(y0, y1)) for _ in range(600)]
    for g in geoms[:120]:
        ring = shapely.get_coordinates(shapely.get_exterior_ring(shapely.get_geometry(g, 0)))
        pts.append(tuple(ring[0]))
        pts.append(tuple((ring[0] + ring[1]) / 2))
    return pts


async def test_index_answers_as_the_statement(conn: AsyncConnection, demo, index) -> None:
    # the demo district's grids (by code): the Citus suite also loads 另一区
    assert sum(1 for r in index.rows if r.code.startswith(DEMO_DISTRICT)) == 273
    inside = outside = 0
    worst = 0.0
    for lon, lat in await _points(conn):
        lon, lat = float(lon), float(lat)  # as the endpoint has them (not numpy's)
        sql = await service.lookup_raw(conn, lon, lat)
        found = lookup_index.locate(lon, lat, "zh")
        assert found is not None, (lon, lat)
        mine, place, distance = found
        if not sql.inside:
            # The nearest grid, and its distance as PostGIS measures it on the ellipsoid.
            assert place is None and distance is not None, (lon, lat)
            assert mine.id == sql.id, (lon, lat)
            worst = max(worst, abs(distance - float(sql.distance_m)))
            outside += 1
            continue
        inside += 1
        assert distance is None and place is not None, (lon, lat)
        i = index.hit(lon, lat)
        assert i is not None and index.rows[i] is mine
        # The whole answer, byte for byte, not only the grid: the card, the parents, the
        # boundary's validity; the index's part encoded once (and kept) as the endpoint sends it.
        for lang in ("zh", "en"):
            for _ in range(2):
                by_index = service.lookup_json(
                    mine, lang, lon, lat, CRS.WGS84, None, index.place(i, lang)
                )
                assert by_index == service.lookup_json(sql, lang, lon, lat, CRS.WGS84, None)
    assert index.place.cache_info().hits > 0
    assert inside > 300 and outside > 50, (inside, outside)
    assert worst < 1e-4, worst  # metres: a tenth of a millimetre


async def test_a_point_far_from_every_grid_is_left_to_the_statement(index) -> None:
    # ~140 km east of the demo district: beyond geo.locate.NEAREST_MAX_DEGREES
    assert lookup_index.locate(118.5, 28.25, "zh") is None
    assert lookup_index.locate(117.2, 28.25, "zh") is not None


async def test_endpoint_answers_from_the_index(
    anon: httpx.AsyncClient, conn: AsyncConnection, demo
) -> None:
    lookup_index.clear()
    by_sql = await anon.get("/api/v1/grids/lookup", params=POINT)
    assert by_sql.status_code == 200
    far_point = {"lon": 117.5, "lat": 28.0}  # ~40 km from the demo district's grids
    far_sql = await anon.get("/api/v1/grids/lookup", params=far_point)
    try:
        await lookup_index.refresh(conn, 200_000)
        by_index = await anon.get("/api/v1/grids/lookup", params=POINT)
        assert by_index.content == by_sql.content
        assert by_index.headers["etag"] == by_sql.headers["etag"]
        # The spliced bytes are the documented shape.
        assert LookupOut.model_validate(by_index.json()).grid.id == by_sql.json()["grid"]["id"]
        # Outside every grid: the nearest grid and its distance, as the statement answers.
        far = await anon.get("/api/v1/grids/lookup", params=far_point)
        assert far.status_code == 404 and far.json()["code"] == "outside_all_grids"
        assert far.json()["nearest"]["distance_m"] > 10_000  # (另一区 on Citus is nearer)
        assert {k: v for k, v in far.json().items() if k != "request_id"} == {
            k: v for k, v in far_sql.json().items() if k != "request_id"
        }
        # In the past: the statement (the old map).
        past = await anon.get(
            "/api/v1/grids/lookup", params={**POINT, "at": "2026-06-01T00:00:00+08:00"}
        )
        assert past.status_code == 200 and past.json()["at"] == "2026-06-01T00:00:00+08:00"
        assert past.json()["grid"] == by_sql.json()["grid"]
    finally:
        lookup_index.clear()


async def test_a_changed_boundary_rebuilds_it(
    client: httpx.AsyncClient, conn: AsyncConnection, demo
) -> None:
    ids = await make_sandbox(client, demo)
    probe = {"lon": LON + 0.015, "lat": LAT + 0.005}
    lookup_index.clear()
    try:
        await lookup_index.refresh(conn, 200_000)
        assert not await lookup_index.refresh(conn, 200_000)  # nothing moved: kept
        r = await client.post(
            "/api/v1/grids",
            json={
                "code": "IX1",
                "name": "网格IX1",
                "community_id": ids["community"],
                "kind": "city",
                "households": 300,
                "population": 900,
                "boundary": square(LON, LAT, 0.01),
            },
        )
        assert r.status_code == 201, r.text
        gid = r.json()["id"]
        # Until the refresh sees it, the index answers from what it was built on.
        assert lookup_index.answer(LON + 0.005, LAT + 0.005) is None
        assert await lookup_index.refresh(conn, 200_000)
        assert lookup_index.answer(LON + 0.005, LAT + 0.005).code == "IX1"
        assert lookup_index.answer(probe["lon"], probe["lat"]) is None
        # A new boundary version: the index follows it.
        r = await client.patch(f"/api/v1/grids/{gid}", json={"boundary": square(LON, LAT, 0.02)})
        assert r.status_code == 200, r.text
        assert await lookup_index.refresh(conn, 200_000)
        got = await client.get("/api/v1/grids/lookup", params=probe)
        assert got.status_code == 200 and got.json()["grid"]["code"] == "IX1"
        # Not only the boundaries: the community's phone on the card.
        r = await client.patch(f"/api/v1/areas/{ids['community']}", json={"phone": "0791-88886666"})
        assert r.status_code == 200, r.text
        assert await lookup_index.refresh(conn, 200_000)
        card = (await client.get("/api/v1/grids/lookup", params=probe)).json()["card"]
        assert card["community"]["phone"] == "0791-88886666"
        # A retired grid leaves the index.
        assert (await client.delete(f"/api/v1/grids/{gid}")).status_code == 204
        assert await lookup_index.refresh(conn, 200_000)
        assert lookup_index.answer(probe["lon"], probe["lat"]) is None
    finally:
        lookup_index.clear()


async def test_too_many_grids_keep_no_index(conn: AsyncConnection, demo) -> None:
    lookup_index.clear()
    assert await lookup_index.refresh(conn, 100)
    assert lookup_index.current is None
    assert not await lookup_index.refresh(conn, 100)  # and it is not rebuilt on every check
    assert lookup_index.answer(*POINT.values()) is None
    lookup_index.clear()


async def test_the_server_process_keeps_one(engine) -> None:
    """The app's lifespan starts the refresher (make run): an index on the committed demo, with
    the fingerprint of what the database holds."""
    from app.main import app

    lookup_index.clear()
    try:
        async with app.router.lifespan_context(app):
            for _ in range(200):
                if lookup_index.current is not None:
                    break
                await asyncio.sleep(0.05)
            assert lookup_index.current is not None
            rows = lookup_index.current.rows
            assert sum(1 for r in rows if r.code.startswith(DEMO_DISTRICT)) == 273
            async with engine.connect() as c:
                assert lookup_index.current.fingerprint == await lookup_index.fingerprint(c)
    finally:
        lookup_index.clear()


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_index_rows_are_the_statements_columns(conn: AsyncConnection, demo, index, lang):
    sql = await service.lookup_raw(conn, POINT["lon"], POINT["lat"])
    mine = index.lookup(POINT["lon"], POINT["lat"])
    assert mine is not None and mine.id == sql.id and mine.valid_from == sql.valid_from
    assert service.card(mine, lang) == service.card(sql, lang)
