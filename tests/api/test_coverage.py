"""Coverage of a grid by patrols: the lattice, the share of cells a kept track passed within the
radius (checked against an independent geodesic computation), stale cells, hours against the
standard, the coverage tile layer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyproj
from sqlalchemy import text

from app.config import get_settings
from app.loop.deadlines import calendar
from app.patrols import service
from app.schemas import SHANGHAI

GEOD = pyproj.Geod(ellps="WGS84")
LON0, LAT0 = 116.9500, 28.3000  # far from the demo district's grids

GRID = """
WITH g AS (INSERT INTO grids (code, name, community_id, kind, households)
           SELECT 'COV1', '覆盖测试网格', id, 'city', 300 FROM areas WHERE code = '360602001001'
           RETURNING id)
INSERT INTO grid_boundaries (grid_id, boundary, valid_from)
SELECT id, ST_Multi(ST_MakeEnvelope(:x0, :y0, :x1, :y1, 4326)), now() - interval '1 year' FROM g
RETURNING grid_id
"""


async def _grid(conn: Any) -> tuple[int, float, float]:
    lon1, _, _ = GEOD.fwd(LON0, LAT0, 90, 300)
    _, lat1, _ = GEOD.fwd(LON0, LAT0, 0, 300)
    gid = (
        await conn.execute(text(GRID), {"x0": LON0, "y0": LAT0, "x1": lon1, "y1": lat1})
    ).scalar_one()
    return gid, lon1, lat1


async def _patrol(
    session: Any, grid_id: int, t0: datetime, track: list[tuple[float, float]]
) -> int:
    worker = (
        await session.execute(text("SELECT id FROM users WHERE username = 'worker'"))
    ).scalar_one()
    place = await service.place_of_grid(session, grid_id)
    pid = (
        await session.execute(
            text(
                "INSERT INTO patrols (district_id, street_id, community_id, grid_id, worker_id, "
                "status, started_at, ended_at) VALUES (:d, :s, :c, :g, :w, 'ended', :t0, :t1) "
                "RETURNING id"
            ),
            {
                "d": place.district_id,
                "s": place.street_id,
                "c": place.community_id,
                "g": grid_id,
                "w": worker,
                "t0": t0,
                "t1": t0 + timedelta(seconds=10 * len(track)),
            },
        )
    ).scalar_one()
    await session.execute(
        text(
            "INSERT INTO patrol_points (district_id, patrol_id, at, geom, accuracy_m, input_crs) "
            "SELECT :d, :p, u.at, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326), 5, 'wgs84' "
            "FROM unnest(CAST(:ats AS timestamptz[]), CAST(:lons AS float8[]), "
            "CAST(:lats AS float8[])) AS u(at, lon, lat)"
        ),
        {
            "d": place.district_id,
            "p": pid,
            "ats": [t0 + timedelta(seconds=5 + 10 * i) for i in range(len(track))],
            "lons": [x for x, _ in track],
            "lats": [y for _, y in track],
        },
    )
    await service.derive(session, pid, place.district_id)
    return pid


def _expected_visited(centres: list[tuple[float, float]], track: list[tuple[float, float]]) -> int:
    """Cells whose centre is within the radius of the line: geodesic distances (pyproj) to the
    line densified every metre."""
    radius = get_settings().coverage_radius_m
    dense: list[tuple[float, float]] = []
    for (x0, y0), (x1, y1) in itertools.pairwise(track):
        _, _, d = GEOD.inv(x0, y0, x1, y1)
        n = max(int(d), 1)
        dense += [(x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(n)]
    dense.append(track[-1])
    lx = np.array([p[0] for p in dense])
    ly = np.array([p[1] for p in dense])
    hits = 0
    for cx, cy in centres:
        _, _, dist = GEOD.inv(np.full(len(lx), cx), np.full(len(ly), cy), lx, ly)
        hits += bool(dist.min() <= radius)
    return hits


async def test_coverage_of_a_grid_counts_the_cells_the_track_passed(
    anon, as_user, session, conn
) -> None:
    gid, lon1, _lat1 = await _grid(conn)
    # a walk along the middle of the square, west to east, a fix every ~12 m
    _, mid, _ = GEOD.fwd(LON0, LAT0, 0, 150)
    track = [(LON0 + (lon1 - LON0) * i / 25, mid) for i in range(26)]
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    await _patrol(session, gid, t0, track)
    cells = list(
        await conn.execute(
            text("SELECT ST_X(center), ST_Y(center) FROM patrol_cells WHERE grid_id = :g"),
            {"g": gid},
        )
    )
    # 300 m × 300 m in 50 m cells: 36 cells (their centres inside the square)
    assert 30 <= len(cells) <= 42
    expected = _expected_visited([(r[0], r[1]) for r in cells], track)
    since = (t0 - timedelta(days=1)).isoformat()
    until = (datetime.now(UTC) + timedelta(minutes=1)).isoformat()
    r = await anon.get(
        f"/api/v1/grids/{gid}/coverage",
        params={"since": since, "until": until},
        headers=as_user("admin"),
    )
    assert r.status_code == 200, r.text
    c = r.json()
    assert c["cells"] == len(cells) and c["cell_m"] == 50
    assert c["visited"] == expected and 6 <= expected <= 14
    assert c["share"] == round(expected / len(cells), 4)
    assert c["stale"] == len(cells) - expected
    assert c["patrols"] == 1
    worker = next(w for w in c["workers"] if w["hours"] > 0)
    assert worker["hours"] == round(260 / 3600, 2)
    cal = await calendar(conn)
    days = {
        (t0 - timedelta(days=1)).astimezone(SHANGHAI).date() + timedelta(days=i) for i in range(3)
    }
    today = datetime.now(SHANGHAI).date()
    working = [d for d in days if d <= today and cal.is_workday(d)]
    assert worker["working_days"] == len(working)
    assert worker["standard_hours"] == 4 * len(working) and worker["met"] is (len(working) == 0)
    # before the patrol: nothing visited, everything stale
    old = await anon.get(
        f"/api/v1/grids/{gid}/coverage",
        params={
            "since": (t0 - timedelta(days=20)).isoformat(),
            "until": (t0 - timedelta(days=10)).isoformat(),
        },
        headers=as_user("admin"),
    )
    assert old.json()["visited"] == 0 and old.json()["stale"] == len(cells)


async def test_flagged_fixes_do_not_cover(anon, as_user, session, conn) -> None:
    gid, _lon1, _lat1 = await _grid(conn)
    _, mid, _ = GEOD.fwd(LON0, LAT0, 0, 150)
    # two fixes only: a line from west to east, and a wild one 2 km north in 10 s (flagged)
    far_lon, far_lat, _ = GEOD.fwd(LON0 + 0.0005, mid, 0, 2000)
    track = [(LON0 + 0.0001, mid), (far_lon, far_lat), (LON0 + 0.0005, mid)]
    await _patrol(session, gid, datetime.now(UTC) - timedelta(hours=1), track)
    flags = list(
        (
            await conn.execute(
                text(
                    "SELECT flag FROM patrol_points pp JOIN patrols p ON p.id = pp.patrol_id "
                    "AND p.district_id = pp.district_id WHERE p.grid_id = :g ORDER BY at"
                ),
                {"g": gid},
            )
        ).scalars()
    )
    assert flags == [None, "speed", None]
    c = (await anon.get(f"/api/v1/grids/{gid}/coverage", headers=as_user("admin"))).json()
    kept = [track[0], track[2]]
    centres = [
        (r[0], r[1])
        for r in await conn.execute(
            text("SELECT ST_X(center), ST_Y(center) FROM patrol_cells WHERE grid_id = :g"),
            {"g": gid},
        )
    ]
    assert c["visited"] == _expected_visited(centres, kept)


async def test_coverage_scope_and_the_tile_layer(anon, as_user, session, conn) -> None:
    gid, lon1, _lat1 = await _grid(conn)
    _, mid, _ = GEOD.fwd(LON0, LAT0, 0, 150)
    track = [(LON0 + (lon1 - LON0) * i / 25, mid) for i in range(26)]
    await _patrol(session, gid, datetime.now(UTC) - timedelta(hours=2), track)
    url = f"/api/v1/grids/{gid}/coverage"
    for who in ("community", "street", "centre", "admin"):
        assert (await anon.get(url, headers=as_user(who))).status_code == 200, who
    assert (await anon.get(url, headers=as_user("worker"))).status_code == 403
    # the tile over the grid's centre at z16
    import math

    lon, lat = (LON0 + lon1) / 2, mid
    z = 16
    n = 2**z
    x = int((lon + 180) / 360 * n)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * n)
    r = await anon.get(f"/tiles/coverage/{z}/{x}/{y}.mvt", headers=as_user("community"))
    assert r.status_code == 200, r.text
    import mapbox_vector_tile

    layer = mapbox_vector_tile.decode(r.content)["coverage"]
    visited = [f for f in layer["features"] if f["properties"]["visited"]]
    assert visited and len(visited) < len(layer["features"])
    # another community's worker's leader sees no cells of this grid
    other = await anon.get(f"/tiles/coverage/{z}/{x}/{y}.mvt", headers=as_user("dept"))
    assert other.status_code == 403
    tj = await anon.get("/tiles/coverage.json", headers=as_user("centre"))
    assert tj.status_code == 200 and tj.json()["vector_layers"][0]["id"] == "coverage"
