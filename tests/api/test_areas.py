"""/api/v1/areas: CRUD, filters, paging, parents, coverage and sizing reports."""

from __future__ import annotations

import httpx

from tests.helpers import DEMO_DISTRICT, SANDBOX, make_sandbox, problem, square


async def test_list_filters_and_paging(client: httpx.AsyncClient, demo) -> None:
    # within the demo district (by code): the Citus suite also loads 另一区
    r = await client.get("/api/v1/areas", params={"level": "street", "q": DEMO_DISTRICT})
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 6
    assert {a["level"] for a in body["items"]} == {"street"}
    assert body["items"][0]["level_label"] == "街道/镇"
    mine = {"q": DEMO_DISTRICT}  # the district, its 6 streets and 35 communities
    page = (await client.get("/api/v1/areas", params={**mine, "limit": 10, "offset": 40})).json()
    assert page["total"] == 42 and len(page["items"]) == 2
    past = (await client.get("/api/v1/areas", params={**mine, "limit": 10, "offset": 400})).json()
    assert past["items"] == [] and past["total"] == 42
    kids = (await client.get("/api/v1/areas", params={"parent_id": demo["360602000000"]})).json()
    assert kids["total"] == 6
    found = (await client.get("/api/v1/areas", params={"q": "立新"})).json()
    assert [a["name"] for a in found["items"]] == ["立新社区"]
    by_code = (await client.get("/api/v1/areas", params={"q": "3606021"})).json()
    assert by_code["total"] >= 1 and all(a["code"].startswith("3606021") for a in by_code["items"])
    bbox = (
        await client.get(
            "/api/v1/areas", params={"bbox": "117.03,28.24,117.031,28.241", "level": "community"}
        )
    ).json()
    assert 1 <= bbox["total"] <= 3


async def test_bad_bbox_and_paging(client: httpx.AsyncClient) -> None:
    problem(await client.get("/api/v1/areas", params={"bbox": "1,2,3"}), 422, "validation_error")
    problem(
        await client.get("/api/v1/areas", params={"bbox": "117,28,116,29"}), 422, "validation_error"
    )
    problem(
        await client.get("/api/v1/areas", params={"bbox": "nan,1,2,3"}), 422, "validation_error"
    )
    problem(await client.get("/api/v1/areas", params={"limit": 0}), 422, "validation_error")
    r = await client.get("/api/v1/areas", params={"limit": 100000})
    assert r.json()["limit"] == 500


async def test_create_get_update_delete(client: httpx.AsyncClient, demo) -> None:
    ids = await make_sandbox(client, demo)
    r = await client.get(f"/api/v1/areas/{ids['community']}")
    a = r.json()
    assert a["name"] == "测试社区" and a["level"] == "community" and a["children"] == 0
    assert a["boundary"]["type"] == "MultiPolygon"
    assert a["created_at"].endswith("+08:00")
    r = await client.patch(
        f"/api/v1/areas/{ids['community']}", json={"name": "测试社区二", "phone": "0701-1"}
    )
    assert r.status_code == 200 and r.json()["name"] == "测试社区二"
    assert r.json()["phone"] == "0701-1"
    problem(await client.delete(f"/api/v1/areas/{ids['street']}"), 409, "has_children")
    assert (await client.delete(f"/api/v1/areas/{ids['community']}")).status_code == 204
    problem(await client.get(f"/api/v1/areas/{ids['community']}"), 404, "not_found")


async def test_parent_rules(client: httpx.AsyncClient, demo) -> None:
    base = {"code": "360602777000", "name": "某街道"}
    problem(
        await client.post("/api/v1/areas", json={**base, "level": "street"}),
        422,
        "validation_error",
    )
    body = problem(
        await client.post("/api/v1/areas", json={**base, "level": "street", "parent_id": 10**9}),
        422,
        "unknown_parent",
    )
    assert body["field"] == "parent_id"
    problem(
        await client.post(
            "/api/v1/areas",
            json={**base, "level": "community", "parent_id": demo["360602000000"]},
        ),
        422,
        "invalid_parent",
    )
    problem(
        await client.post(
            "/api/v1/areas",
            json={
                "code": "360602001000",
                "name": "重复",
                "level": "street",
                "parent_id": demo["360602000000"],
            },
        ),
        409,
        "code_exists",
    )
    problem(
        await client.post("/api/v1/areas", json={**base, "code": "12345", "level": "city"}),
        422,
        "validation_error",
    )


async def test_area_boundary_validation(client: httpx.AsyncClient, demo) -> None:
    bow_tie = {
        "type": "Polygon",
        "coordinates": [
            [[117.5, 28.5], [117.51, 28.51], [117.51, 28.5], [117.5, 28.51], [117.5, 28.5]]
        ],
    }
    body = problem(
        await client.post(
            "/api/v1/areas",
            json={
                "level": "street",
                "code": "360602778000",
                "name": "x",
                "parent_id": demo["360602000000"],
                "boundary": bow_tie,
            },
        ),
        422,
        "invalid_geometry",
    )
    assert body["field"] == "boundary"
    assert body["errors"][0]["code"] == "self_intersection"
    assert body["errors"][0]["location"] == [117.505, 28.505]


async def test_coverage_clean_and_broken(client: httpx.AsyncClient, demo) -> None:
    r = await client.get(f"/api/v1/areas/{demo['360602001001']}/coverage")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/geo+json")
    fc = r.json()
    assert fc["type"] == "FeatureCollection" and fc["properties"]["ok"] is True
    assert fc["features"] == []

    ids = await make_sandbox(client, demo)
    lon, lat = SANDBOX
    grids = [square(lon, lat, 0.01), square(lon + 0.005, lat, 0.01)]  # overlap; rest is a gap
    for i, g in enumerate(grids):
        r = await client.post(
            "/api/v1/grids",
            json={
                "code": f"T{i}",
                "name": f"测试网格{i}",
                "community_id": ids["community"],
                "kind": "city",
                "households": 300,
                "boundary": g,
            },
        )
        assert r.status_code == 201, r.text
    fc = (await client.get(f"/api/v1/areas/{ids['community']}/coverage")).json()
    assert fc["properties"]["ok"] is False
    kinds = sorted(f["properties"]["kind"] for f in fc["features"])
    assert kinds.count("overlap") == 1 and "gap" in kinds
    overlap = next(f for f in fc["features"] if f["properties"]["kind"] == "overlap")
    assert 500_000 < overlap["properties"]["area_m2"] < 600_000  # 0.005° × 0.01° near 28.5° N


async def test_sizing_lists_grids_out_of_band(client: httpx.AsyncClient, demo) -> None:
    district = demo["360602000000"]
    r = await client.get(f"/api/v1/areas/{district}/sizing")
    assert r.status_code == 200
    assert r.json()["checked"] == 273 and r.json()["findings"] == []
    grid = demo["360602001001001"]
    assert (
        await client.patch(f"/api/v1/grids/{grid}", json={"households": 900})
    ).status_code == 200
    body = (
        await client.get(f"/api/v1/areas/{district}/sizing", headers={"accept-language": "en"})
    ).json()
    [f] = body["findings"]
    assert f["grid_id"] == grid and f["value"] == 900 and f["expected_max"] == 350
    assert f["reason"] == "too_many_households"
    problem(await client.get("/api/v1/areas/999999999/sizing"), 404, "not_found")
