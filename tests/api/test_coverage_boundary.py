"""A grid whose boundary changes gets a new coverage lattice (the registry's extension point
`on_boundary_change`, registered from above in `app/extensions.py`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import text

from app.grids import service as grids_service
from app.patrols import coverage
from tests.factories import DEMO_GRID, point_in_grid

_INSIDE_NEW = text(
    """
    SELECT count(*) AS cells,
           count(*) FILTER (WHERE NOT ST_Intersects(b.boundary, c.center)) AS outside
    FROM patrol_cells c JOIN grid_boundaries b ON b.grid_id = c.grid_id AND b.valid_to IS NULL
    WHERE c.grid_id = :g
    """
)


async def test_a_new_boundary_gets_a_new_lattice(anon, as_user, conn) -> None:
    assert coverage.rebuild_cells in grids_service._boundary_hooks  # create_app registered it
    gid = (
        await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": DEMO_GRID})
    ).scalar_one()
    # A patrol through the grid, ended an hour later.
    lon, lat = await point_in_grid(conn)
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(minutes=40)
    h = as_user("worker")
    pid = (
        await anon.post(
            "/api/v1/patrols", json={"grid_id": gid, "started_at": t0.isoformat()}, headers=h
        )
    ).json()["id"]
    k = 1 / (111_320 * math.cos(math.radians(lat)))
    points = [
        {
            "at": (t0 + timedelta(minutes=i)).isoformat(),
            "lon": lon + 8 * (i - 15) * k,
            "lat": lat,
            "accuracy_m": 5,
        }
        for i in range(31)
    ]
    r = await anon.post(
        f"/api/v1/patrols/{pid}/points", json={"crs": "wgs84", "points": points}, headers=h
    )
    assert r.status_code == 200, r.text
    await anon.post(f"/api/v1/patrols/{pid}/end", json={"at": now.isoformat()}, headers=h)
    params = {
        "since": (now - timedelta(days=1)).isoformat(),
        "until": (now + timedelta(minutes=1)).isoformat(),
    }
    before = (
        await anon.get(f"/api/v1/grids/{gid}/coverage", params=params, headers=as_user("community"))
    ).json()
    assert before["cells"] > 0 and before["visited"] > 0

    # The boundary shrinks to the part within ~150 m of the point (inside the old one).
    shape = (
        await conn.execute(
            text(
                "SELECT ST_AsGeoJSON(ST_Intersection(b.boundary, "
                "ST_Expand(ST_SetSRID(ST_MakePoint(:x, :y), 4326), :e))) FROM grid_boundaries b "
                "WHERE b.grid_id = :g AND b.valid_to IS NULL"
            ),
            {"x": lon, "y": lat, "e": 150 * k, "g": gid},
        )
    ).scalar_one()
    r = await anon.patch(
        f"/api/v1/grids/{gid}",
        json={"boundary": orjson.loads(shape), "crs": "wgs84"},
        headers=as_user("admin"),
    )
    assert r.status_code == 200, r.text
    row = (await conn.execute(_INSIDE_NEW, {"g": gid})).one()
    assert 0 < row.cells < before["cells"] and row.outside == 0  # made for the new boundary
    after = (
        await anon.get(f"/api/v1/grids/{gid}/coverage", params=params, headers=as_user("community"))
    ).json()
    assert after["cells"] == row.cells
    assert 0 < after["visited"] <= after["cells"]  # the earlier patrol counted again
    stale_hits = (
        await conn.execute(
            text(
                "SELECT count(*) FROM patrol_cell_hits h LEFT JOIN patrol_cells c "
                "ON c.id = h.cell_id AND c.district_id = h.district_id "
                "WHERE h.grid_id = :g AND c.id IS NULL"
            ),
            {"g": gid},
        )
    ).scalar_one()
    assert stale_hits == 0
