"""/api/v1/buildings: placed in their grid by location."""

from __future__ import annotations

import httpx

from tests.helpers import SANDBOX, make_sandbox, problem, square

LON, LAT = SANDBOX


async def test_buildings_crud(client: httpx.AsyncClient, demo) -> None:
    ids = await make_sandbox(client, demo)
    g = await client.post(
        "/api/v1/grids",
        json={
            "code": "BG1",
            "name": "楼栋测试网格",
            "community_id": ids["community"],
            "kind": "city",
            "boundary": square(LON, LAT, 0.01),
        },
    )
    assert g.status_code == 201
    grid_id = g.json()["id"]
    r = await client.post(
        "/api/v1/buildings",
        json={
            "name": "1栋",
            "households": 48,
            "units": 2,
            "geometry": {"type": "Point", "coordinates": [LON + 0.005, LAT + 0.005]},
        },
    )
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["grid_id"] == grid_id and b["grid_code"] == "BG1"
    assert r.headers["location"] == f"/api/v1/buildings/{b['id']}"
    problem(
        await client.post(
            "/api/v1/buildings",
            json={
                "name": "2栋",
                "geometry": {"type": "Point", "coordinates": [LON + 0.015, LAT + 0.005]},
            },
        ),
        422,
        "outside_all_grids",
    )
    problem(
        await client.post(
            "/api/v1/buildings",
            json={
                "name": "3栋",
                "grid_id": demo["360602001001001"],
                "geometry": {"type": "Point", "coordinates": [LON + 0.005, LAT + 0.005]},
            },
        ),
        422,
        "invalid_geometry",
    )
    problem(
        await client.post(
            "/api/v1/buildings",
            json={"name": "4栋", "geometry": {"type": "Point", "coordinates": [LON]}},
        ),
        422,
        "invalid_geometry",
    )
    listed = (await client.get("/api/v1/buildings", params={"grid_id": grid_id})).json()
    assert listed["total"] == 1 and listed["items"][0]["name"] == "1栋"
    r = await client.patch(f"/api/v1/buildings/{b['id']}", json={"households": 50})
    assert r.json()["households"] == 50
    assert (await client.delete(f"/api/v1/buildings/{b['id']}")).status_code == 204
    problem(await client.get(f"/api/v1/buildings/{b['id']}"), 404, "not_found")


async def test_demo_buildings(client: httpx.AsyncClient, demo) -> None:
    body = (await client.get("/api/v1/buildings", params={"area_id": demo["360602001000"]})).json()
    assert body["total"] > 100
    one = body["items"][0]
    assert one["geometry"]["type"] == "Point"
