"""/api/v1/grids: CRUD, geometry validation, boundary history, lookup, service card."""

from __future__ import annotations

import math

import httpx
import pytest
from sqlalchemy import text

from geo.crs import wgs84_to_bd09, wgs84_to_gcj02
from tests.helpers import SANDBOX, bowtie, make_sandbox, problem, square

LON, LAT = SANDBOX


async def _grid(client: httpx.AsyncClient, community: int, code: str, boundary: dict, **kw) -> dict:
    r = await client.post(
        "/api/v1/grids",
        json={
            "code": code,
            "name": f"网格{code}",
            "community_id": community,
            "kind": "city",
            "households": 300,
            "population": 900,
            "boundary": boundary,
            **kw,
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_list_and_get(client: httpx.AsyncClient, demo) -> None:
    # within the demo district: the Citus suite also loads 另一区 (one grid)
    district = {"area_id": demo["360602000000"]}
    body = (await client.get("/api/v1/grids", params={**district, "limit": 500})).json()
    assert body["total"] == 273 and len(body["items"]) == 273
    kinds = [g["kind"] for g in body["items"]]
    assert (kinds.count("city"), kinds.count("rural"), kinds.count("special")) == (213, 57, 3)
    rural = (
        await client.get("/api/v1/grids", params={**district, "kind": "rural", "limit": 1})
    ).json()
    assert rural["total"] == 57 and rural["items"][0]["kind_label"] == "农村网格"
    in_street = (await client.get("/api/v1/grids", params={"area_id": demo["360602001000"]})).json()
    assert in_street["total"] > 0
    assert all(g["street"]["code"] == "360602001000" for g in in_street["items"])
    grid = in_street["items"][0]
    got = (await client.get(f"/api/v1/grids/{grid['id']}")).json()
    assert got["boundary"]["type"] == "MultiPolygon"
    assert got["district"]["name"] == "月湖区"
    assert got["boundary_valid_from"] == "2020-01-01T00:00:00+08:00"
    gcj = (await client.get(f"/api/v1/grids/{grid['id']}", params={"crs": "gcj02"})).json()
    x0, y0 = got["boundary"]["coordinates"][0][0][0]
    gx, gy = gcj["boundary"]["coordinates"][0][0][0]
    ex, ey = wgs84_to_gcj02(x0, y0)
    assert math.isclose(gx, ex, abs_tol=2e-7) and math.isclose(gy, ey, abs_tol=2e-7)
    with_geom = (
        await client.get("/api/v1/grids", params={"with_boundary": True, "limit": 2})
    ).json()
    assert all(g["boundary"]["type"] == "MultiPolygon" for g in with_geom["items"])
    bbox = (
        await client.get("/api/v1/grids", params={"bbox": f"{LON},{LAT},{LON + 0.01},{LAT + 0.01}"})
    ).json()
    assert bbox["total"] == 0


async def test_create_validates_geometry(client: httpx.AsyncClient, demo) -> None:
    ids = await make_sandbox(client, demo)
    base = {"code": "G1", "name": "网格", "community_id": ids["community"], "kind": "city"}
    cases = {
        "self_intersection": bowtie(LON, LAT),
        "unclosed_ring": {
            "type": "Polygon",
            "coordinates": [
                [[LON, LAT], [LON + 0.01, LAT], [LON + 0.01, LAT + 0.01], [LON, LAT + 0.01]]
            ],
        },
        "swapped_lat_lon": {
            "type": "Polygon",
            "coordinates": [
                [
                    [LAT, LON],
                    [LAT, LON + 0.01],
                    [LAT + 0.01, LON + 0.01],
                    [LAT + 0.01, LON],
                    [LAT, LON],
                ]
            ],
        },
        "too_few_points": {
            "type": "Polygon",
            "coordinates": [[[LON, LAT], [LON + 0.01, LAT], [LON, LAT]]],
        },
        "wrong_type": {"type": "Point", "coordinates": [LON, LAT]},
    }
    for code, geom in cases.items():
        body = problem(
            await client.post("/api/v1/grids", json={**base, "boundary": geom}),
            422,
            "invalid_geometry",
        )
        assert code in [e["code"] for e in body["errors"]], (code, body)
        assert body["field"] == "boundary"
    # NaN cannot be written in strict JSON; Python clients send it anyway.
    nan_ring = "[[[NaN, 28.5], [117.51, 28.5], [117.51, 28.51], [NaN, 28.5]]]"
    raw = (
        f'{{"code": "G1", "name": "x", "community_id": {ids["community"]}, "kind": "city", '
        f'"boundary": {{"type": "Polygon", "coordinates": {nan_ring}}}}}'
    )
    r = await client.post(
        "/api/v1/grids", content=raw, headers={"content-type": "application/json"}
    )
    nan = problem(r, 422, "invalid_geometry")
    assert nan["field"] == "boundary" and "not_finite" in [e["code"] for e in nan["errors"]], nan
    # outside its community
    body = problem(
        await client.post(
            "/api/v1/grids", json={**base, "boundary": square(LON + 0.015, LAT, 0.01)}
        ),
        422,
        "invalid_geometry",
    )
    assert body["outside_m2"] > 400_000
    problem(
        await client.post(
            "/api/v1/grids",
            json={**base, "community_id": ids["street"], "boundary": square(LON, LAT)},
        ),
        422,
        "invalid_parent",
    )
    await _grid(client, ids["community"], "G1", square(LON, LAT))
    problem(
        await client.post("/api/v1/grids", json={**base, "boundary": square(LON, LAT)}),
        409,
        "code_exists",
    )


async def test_create_in_other_crs(client: httpx.AsyncClient, demo) -> None:
    ids = await make_sandbox(client, demo)
    sq = square(LON + 0.002, LAT + 0.002, 0.01)
    ring = sq["coordinates"][0]
    gcj = [list(wgs84_to_gcj02(x, y)) for x, y in ring]
    g = await _grid(
        client, ids["community"], "GCJ", {"type": "Polygon", "coordinates": [gcj]}, crs="gcj02"
    )
    back = g["boundary"]["coordinates"][0][0]
    for (x, y), (bx, by) in zip(ring, back, strict=False):
        assert abs(x - bx) < 2e-7 and abs(y - by) < 2e-7


async def test_boundary_history_and_lookup_at(client: httpx.AsyncClient, demo, conn) -> None:
    ids = await make_sandbox(client, demo)
    g = await _grid(client, ids["community"], "H1", square(LON, LAT, 0.01))
    # Pretend the grid was drawn a year ago, so "before the edit" is a distinct time.
    await conn.execute(
        text(
            "UPDATE grid_boundaries SET valid_from = now() - interval '365 days' WHERE grid_id = :g"
        ),
        {"g": g["id"]},
    )
    probe = {"lon": LON + 0.015, "lat": LAT + 0.005}
    problem(await client.get("/api/v1/grids/lookup", params=probe), 404, "outside_all_grids")
    r = await client.patch(f"/api/v1/grids/{g['id']}", json={"boundary": square(LON, LAT, 0.02)})
    assert r.status_code == 200, r.text
    now = (await client.get("/api/v1/grids/lookup", params=probe)).json()
    assert now["grid"]["code"] == "H1"
    then = await client.get("/api/v1/grids/lookup", params={**probe, "at": "2026-01-01T00:00:00"})
    problem(then, 404, "outside_all_grids")
    versions = (await client.get(f"/api/v1/grids/{g['id']}/boundaries")).json()
    assert len(versions) == 2
    assert versions[0]["valid_to"] == versions[1]["valid_from"]
    assert versions[1]["area_m2"] == pytest.approx(4 * versions[0]["area_m2"], rel=0.01)
    old = (
        await client.get(f"/api/v1/grids/{g['id']}", params={"at": "2026-01-01T08:00:00+08:00"})
    ).json()
    assert old["boundary"]["coordinates"][0][0][2] == [LON + 0.01, LAT + 0.01]
    # The same boundary again is no new version.
    await client.patch(f"/api/v1/grids/{g['id']}", json={"boundary": square(LON, LAT, 0.02)})
    assert len((await client.get(f"/api/v1/grids/{g['id']}/boundaries")).json()) == 2
    # Retiring the grid keeps its history for past lookups.
    assert (await client.delete(f"/api/v1/grids/{g['id']}")).status_code == 204
    problem(await client.get(f"/api/v1/grids/{g['id']}"), 404, "not_found")
    problem(await client.get("/api/v1/grids/lookup", params=probe), 404, "outside_all_grids")
    past = await client.get("/api/v1/grids/lookup", params={**probe, "at": "2020-06-01T00:00:00Z"})
    problem(past, 404, "outside_all_grids")  # the grid did not exist yet in 2020
    yesterday = (
        await client.get(
            "/api/v1/grids/lookup",
            params={"lon": LON + 0.005, "lat": LAT + 0.005, "at": "2026-06-01T00:00:00+08:00"},
        )
    ).json()
    assert yesterday["grid"]["code"] == "H1"


async def test_lookup_demo_point_with_card(client: httpx.AsyncClient, demo) -> None:
    r = await client.get("/api/v1/grids/lookup", params={"lon": 117.03, "lat": 28.24})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["district"]["code"] == "360602000000"
    assert body["grid"]["code"].startswith(body["community"]["code"])
    assert body["card"]["community"]["service_hours"]
    assert body["card"]["community"]["phone"].startswith("0701-")
    card = (await client.get(f"/api/v1/grids/{body['grid']['id']}/card")).json()
    assert card == body["card"]


@pytest.mark.parametrize(
    "crs,convert",
    [("gcj02", wgs84_to_gcj02), ("bd09", wgs84_to_bd09), ("cgcs2000", lambda x, y: (x, y))],
)
async def test_lookup_in_chinese_crs(client: httpx.AsyncClient, crs, convert) -> None:
    want = (await client.get("/api/v1/grids/lookup", params={"lon": 117.05, "lat": 28.25})).json()
    x, y = convert(117.05, 28.25)
    got = (await client.get("/api/v1/grids/lookup", params={"lon": x, "lat": y, "crs": crs})).json()
    assert got["grid"]["id"] == want["grid"]["id"]
    assert got["crs"] == crs


async def test_lookup_shared_edge_and_vertex_is_stable(client: httpx.AsyncClient, demo) -> None:
    ids = await make_sandbox(client, demo)
    await _grid(client, ids["community"], "E2", square(LON + 0.01, LAT, 0.01))
    await _grid(client, ids["community"], "E1", square(LON, LAT, 0.01))
    await _grid(client, ids["community"], "E3", square(LON, LAT + 0.01, 0.01))
    for point in (
        {"lon": LON + 0.01, "lat": LAT + 0.005},  # on the E1|E2 edge
        {"lon": LON + 0.01, "lat": LAT + 0.01},
    ):  # the vertex E1, E2, E3 share
        codes = {
            (await client.get("/api/v1/grids/lookup", params=point)).json()["grid"]["code"]
            for _ in range(5)
        }
        assert codes == {"E1"}


async def test_lookup_outside_names_the_nearest_grid(client: httpx.AsyncClient, demo) -> None:
    ids = await make_sandbox(client, demo)
    await _grid(client, ids["community"], "N1", square(LON, LAT, 0.01))
    # 0.001° of latitude south of N1 is about 111 m.
    body = problem(
        await client.get("/api/v1/grids/lookup", params={"lon": LON + 0.005, "lat": LAT - 0.001}),
        404,
        "outside_all_grids",
    )
    assert body["nearest"]["grid"]["code"] == "N1"
    assert body["nearest"]["distance_m"] == pytest.approx(110.8, abs=0.5)


@pytest.mark.parametrize(
    "params,code",
    [
        ({"lon": 200, "lat": 28}, "out_of_range"),
        ({"lon": 28.24, "lat": 117.03}, "swapped_lat_lon"),
        ({"lon": "nan", "lat": 28}, "not_finite"),
        ({"lon": "inf", "lat": 28}, "not_finite"),
    ],
)
async def test_lookup_rejects_bad_points(client: httpx.AsyncClient, params, code) -> None:
    body = problem(await client.get("/api/v1/grids/lookup", params=params), 422, "invalid_point")
    assert body["errors"][0]["code"] == code


async def test_lookup_bad_crs_and_time(client: httpx.AsyncClient) -> None:
    problem(
        await client.get("/api/v1/grids/lookup", params={"lon": 117, "lat": 28, "crs": "utm"}),
        422,
        "validation_error",
    )
    problem(
        await client.get("/api/v1/grids/lookup", params={"lon": 117, "lat": 28, "at": "yesterday"}),
        422,
        "validation_error",
    )


async def test_update_rules(client: httpx.AsyncClient, demo) -> None:
    ids = await make_sandbox(client, demo)
    g = await _grid(client, ids["community"], "U1", square(LON, LAT, 0.01))
    problem(
        await client.patch(f"/api/v1/grids/{g['id']}", json={"name": None}), 422, "validation_error"
    )
    problem(await client.patch(f"/api/v1/grids/{g['id']}", json={"id": 3}), 422, "validation_error")
    problem(
        await client.patch(f"/api/v1/grids/{g['id']}", json={"community_id": demo["360602001001"]}),
        422,
        "invalid_geometry",
    )
    r = await client.patch(
        f"/api/v1/grids/{g['id']}", json={"kind": "special", "notes": "鹰潭市第二中学"}
    )
    assert r.json()["kind"] == "special" and r.json()["notes"] == "鹰潭市第二中学"
    problem(await client.patch("/api/v1/grids/999999999", json={"name": "x"}), 404, "not_found")


async def test_lookup_answer_matches_its_schema(client: httpx.AsyncClient) -> None:
    """The hot path writes JSON itself; it must still be exactly the documented LookupOut."""
    from app.grids.schemas import LookupOut

    body = (
        await client.get(
            "/api/v1/grids/lookup",
            params={"lon": 117.03, "lat": 28.24, "at": "2025-01-01T00:00:00"},
        )
    ).json()
    assert LookupOut.model_validate(body).model_dump(mode="json") == body
    assert body["at"] == "2025-01-01T00:00:00+08:00"
