"""OGC API – Features: the documents, paging, bbox/datetime/property filters, CRS (Part 2) and
the fields of cases by caller. Real clients (GDAL, OWSLib) are in test_ogc_clients.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from openapi_spec_validator import validate
from sqlalchemy import text

from tests.factories import insert_case
from tests.helpers import problem

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
GRID = "360602001001001"


async def test_landing_conformance_and_api(anon) -> None:
    r = await anon.get("/ogc")
    assert r.status_code == 200
    rels = {x["rel"]: x for x in r.json()["links"]}
    assert {"self", "service-desc", "conformance", "data"} <= set(rels)
    assert rels["service-desc"]["type"] == "application/vnd.oai.openapi+json;version=3.0"
    assert rels["data"]["href"] == "http://test/ogc/collections"
    conf = (await anon.get("/ogc/conformance")).json()["conformsTo"]
    assert set(conf) == {
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
        "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables-query-parameters",
        "http://www.opengis.net/spec/ogcapi-records-1/1.0/conf/sorting",
    }
    api = await anon.get("/ogc/api")
    assert api.headers["content-type"].startswith("application/vnd.oai.openapi+json")
    doc = api.json()
    assert doc["openapi"].startswith("3.0")
    validate(doc)  # a valid OpenAPI 3.0 document (conformance class oas30)
    assert {"/ogc", "/ogc/conformance", "/ogc/collections"} <= set(doc["paths"])
    for cid in ("grids", "communities", "streets", "buildings", "cases"):
        assert f"/ogc/collections/{cid}/items" in doc["paths"]
        assert f"/ogc/collections/{cid}/items/{{featureId}}" in doc["paths"]
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert (limit["minimum"], limit["maximum"]) == (1, 10_000)
    # every $ref resolves
    refs: list[str] = []

    def walk(x: Any) -> None:
        if isinstance(x, dict):
            if "$ref" in x:
                refs.append(x["$ref"])
            for v in x.values():
                walk(v)
        elif isinstance(x, list):
            for v in x:
                walk(v)

    walk(doc)
    for ref in refs:
        node: Any = doc
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]


async def test_collections(anon, conn) -> None:
    body = (await anon.get("/ogc/collections")).json()
    ids = [c["id"] for c in body["collections"]]
    assert ids == ["grids", "communities", "streets", "buildings", "cases"]
    grids = (await anon.get("/ogc/collections/grids")).json()
    assert grids["storageCrs"] == CRS84
    assert set(grids["crs"]) == {CRS84, EPSG + "4326", EPSG + "4490", EPSG + "3857"}
    assert grids["itemType"] == "feature"
    items = next(x for x in grids["links"] if x["rel"] == "items")
    assert items["type"] == "application/geo+json"
    want = (
        await conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                "ST_Extent(boundary) e FROM grid_boundaries WHERE valid_to IS NULL) x"
            )
        )
    ).one()
    assert grids["extent"]["spatial"]["bbox"][0] == pytest.approx(list(want), abs=1e-6)
    problem(await anon.get("/ogc/collections/nope"), 404, "unknown_collection")
    cases = (await anon.get("/ogc/collections/cases")).json()["extent"]
    assert len(cases["spatial"]["bbox"][0]) == 4 and len(cases["temporal"]["interval"][0]) == 2


async def _all(anon, url: str, **params: Any) -> tuple[list[dict], list[dict]]:
    """Follow the `next` links; the features and every page."""
    feats, pages = [], []
    r = await anon.get(url, params=params)
    for _ in range(100):
        assert r.status_code == 200, r.text
        page = r.json()
        pages.append(page)
        feats += page["features"]
        nxt = [x["href"] for x in page["links"] if x["rel"] == "next"]
        if not nxt:
            return feats, pages
        r = await anon.get(nxt[0])
    raise AssertionError("paging never ended")


async def test_items_paging_counts_and_links(anon, conn) -> None:
    n = (
        await conn.execute(
            text(
                "SELECT count(*) FROM grids g JOIN grid_boundaries b ON b.grid_id = g.id "
                "AND b.valid_to IS NULL WHERE g.deleted_at IS NULL"
            )
        )
    ).scalar()
    feats, pages = await _all(anon, "/ogc/collections/grids/items", limit=100)
    # the demo's 273 grids, and one more with `make test-citus`'s second district (另一区)
    assert n in (273, 274)
    assert len(feats) == n and len({f["id"] for f in feats}) == n
    assert [p["numberReturned"] for p in pages] == [100, 100, n - 200]
    assert all(p["numberMatched"] == n for p in pages)
    assert pages[0]["timeStamp"].endswith("Z")
    rels = [{x["rel"] for x in p["links"]} for p in pages]
    assert rels[0] == {"self", "collection", "next"}
    assert rels[1] == {"self", "collection", "next", "prev"}
    assert rels[2] == {"self", "collection", "prev"}
    r = await anon.get("/ogc/collections/grids/items", params={"limit": 2})
    assert r.headers["content-type"] == "application/geo+json"
    assert r.headers["content-crs"] == f"<{CRS84}>"
    f = r.json()["features"][0]
    assert f["type"] == "Feature" and f["geometry"]["type"] == "MultiPolygon"
    assert {"code", "kind", "community", "street", "households", "staff"} <= set(f["properties"])
    # a limit above the maximum is clamped; invalid ones are 400
    big = await anon.get("/ogc/collections/grids/items", params={"limit": 50_000})
    assert big.json()["numberReturned"] == n
    for bad in ("0", "x", "-1"):
        r = await anon.get("/ogc/collections/grids/items", params={"limit": bad})
        assert problem(r, 400, "invalid_parameter")["field"] == "limit"
    r = await anon.get("/ogc/collections/grids/items", params={"colour": "red"})
    assert problem(r, 400, "invalid_parameter")["field"] == "colour"


async def test_one_feature(anon, conn) -> None:
    gid = (await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": GRID})).scalar()
    r = await anon.get(f"/ogc/collections/grids/items/{gid}")
    assert r.status_code == 200 and r.headers["content-type"] == "application/geo+json"
    body = r.json()
    assert body["id"] == gid and body["properties"]["code"] == GRID
    assert {x["rel"] for x in body["links"]} == {"self", "collection"}
    problem(await anon.get("/ogc/collections/grids/items/999999999"), 404, "unknown_feature")
    problem(await anon.get("/ogc/collections/grids/items/abc"), 404, "unknown_feature")


async def test_bbox_in_each_crs(anon, conn) -> None:
    box = (117.0, 28.22, 117.03, 28.25)
    n = (
        await conn.execute(
            text(
                "SELECT count(*) FROM grid_boundaries WHERE valid_to IS NULL AND "
                "ST_Intersects(boundary, ST_MakeEnvelope(117.0, 28.22, 117.03, 28.25, 4326))"
            )
        )
    ).scalar()
    assert n > 0
    url = "/ogc/collections/grids/items"
    lonlat = ",".join(map(str, box))
    latlon = ",".join(map(str, (box[1], box[0], box[3], box[2])))
    r = await anon.get(url, params={"bbox": lonlat, "limit": 1000})
    assert r.json()["numberMatched"] == n
    r = await anon.get(url, params={"bbox": latlon, "bbox-crs": EPSG + "4326", "limit": 1000})
    assert r.json()["numberMatched"] == n
    merc = (
        await conn.execute(
            text(
                "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT "
                "ST_Transform(ST_MakeEnvelope(117.0, 28.22, 117.03, 28.25, 4326), 3857) e) x"
            )
        )
    ).one()
    r = await anon.get(
        url, params={"bbox": ",".join(map(str, merc)), "bbox-crs": "EPSG:3857", "limit": 1000}
    )
    assert r.json()["numberMatched"] == n
    six = await anon.get(url, params={"bbox": "117.0,28.22,0,117.03,28.25,10", "limit": 1000})
    assert six.json()["numberMatched"] == n
    for bad in ("1,2,3", "117.03,28.22,117.0,28.25", "a,b,c,d", "0,95,1,96"):
        assert (
            problem(await anon.get(url, params={"bbox": bad}), 400, "invalid_parameter")["field"]
            == "bbox"
        )
    r = await anon.get(url, params={"bbox": lonlat, "bbox-crs": "EPSG:9999"})
    assert problem(r, 400, "invalid_parameter")["field"] == "bbox-crs"


async def test_crs_of_the_answer(anon, conn) -> None:
    gid = (await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": GRID})).scalar()
    url = f"/ogc/collections/grids/items/{gid}"
    lon, lat = (await anon.get(url)).json()["geometry"]["coordinates"][0][0][0]
    assert 116 < lon < 118 and 28 < lat < 29
    r = await anon.get(url, params={"crs": EPSG + "4326"})
    assert r.headers["content-crs"] == f"<{EPSG}4326>"
    assert r.json()["geometry"]["coordinates"][0][0][0] == [lat, lon]  # latitude first
    r = await anon.get(url, params={"crs": EPSG + "4490"})
    assert r.headers["content-crs"] == f"<{EPSG}4490>"
    assert r.json()["geometry"]["coordinates"][0][0][0] == pytest.approx([lat, lon], abs=1e-6)
    r = await anon.get(url, params={"crs": EPSG + "3857"})
    x, y = r.json()["geometry"]["coordinates"][0][0][0]
    want = (
        await conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM ST_Transform(ST_SetSRID(ST_MakePoint(:x, :y), 4326), 3857) p"
            ),
            {"x": lon, "y": lat},
        )
    ).one()
    assert (x, y) == pytest.approx(tuple(want), abs=0.01)
    # a page in another CRS says so too
    page = await anon.get("/ogc/collections/grids/items", params={"crs": "[EPSG:3857]", "limit": 1})
    assert page.headers["content-crs"] == f"<{EPSG}3857>"
    r = await anon.get(url, params={"crs": "EPSG:2000"})
    assert problem(r, 400, "invalid_parameter")["field"] == "crs"


async def test_property_filters(anon, conn, demo) -> None:
    community = demo["360602001001"]
    n = (
        await conn.execute(
            text("SELECT count(*) FROM grids WHERE community_id = :c"), {"c": community}
        )
    ).scalar()
    r = await anon.get("/ogc/collections/grids/items", params={"community_id": community})
    assert r.json()["numberMatched"] == n == 8
    r = await anon.get("/ogc/collections/grids/items", params={"code": f"{GRID},360602001001002"})
    assert sorted(f["properties"]["code"] for f in r.json()["features"]) == [
        GRID,
        "360602001001002",
    ]
    r = await anon.get("/ogc/collections/communities/items", params={"code": "360602001001"})
    f = r.json()["features"]
    assert [x["properties"]["name"] for x in f] == ["立新社区"]
    streets = (await anon.get("/ogc/collections/streets/items")).json()
    n_streets = (
        await conn.execute(text("SELECT count(*) FROM areas WHERE level = 'street'"))
    ).scalar()
    assert streets["numberMatched"] == n_streets in (6, 7)  # 7 with the second district
    r = await anon.get("/ogc/collections/grids/items", params={"households": "many"})
    assert problem(r, 400, "invalid_parameter")["field"] == "households"


async def _case(conn: Any, grid: str, reported: str, status: str = "registered") -> int:
    return await insert_case(
        conn,
        grid,
        title="井盖破损",
        description="张三 13800138000 报告",
        address="某路 1 号",
        status=status,
        reported_at=datetime.fromisoformat(reported),
    )


async def test_cases_public_fields_and_scope(anon, as_user, conn) -> None:
    mine = await _case(conn, GRID, "2026-03-01T10:00:00+08:00")
    other = await _case(conn, "360602004001001", "2026-03-05T10:00:00+08:00")
    await _case(conn, GRID, "2026-03-02T10:00:00+08:00", status="rejected")
    url = "/ogc/collections/cases/items"
    anon_feats = {f["id"]: f for f in (await anon.get(url)).json()["features"]}
    assert set(anon_feats) == {mine, other}  # rejected ones are never listed
    public = {
        "number",
        "status",
        "category",
        "category_name",
        "urgency",
        "reported_at",
        "closed_at",
        "grid_id",
        "community_id",
        "community",
        "street_id",
        "street",
    }
    assert set(anon_feats[mine]["properties"]) == public
    assert anon_feats[mine]["geometry"]["type"] == "Point"
    worker = {
        f["id"]: f for f in (await anon.get(url, headers=as_user("worker"))).json()["features"]
    }
    assert worker[mine]["properties"]["title"] == "井盖破损"
    assert worker[mine]["properties"]["overdue"] is False
    assert set(worker[other]["properties"]) == public  # outside the worker's grids
    admin = await anon.get(f"{url}/{other}", headers=as_user("admin"))
    assert admin.json()["properties"]["address"] == "某路 1 号"
    one = await anon.get(f"{url}/{other}")
    assert "title" not in one.json()["properties"]
    # datetime: instants, days, open and closed intervals
    for dt, want in (
        ("2026-03-01", {mine}),
        ("2026-03-01T02:00:00Z", {mine}),
        ("2026-03-01T00:00:00Z/2026-03-31T00:00:00Z", {mine, other}),
        ("../2026-03-02", {mine}),
        ("2026-03-02/..", {other}),
        ("2027-01-01/..", set()),
    ):
        r = await anon.get(url, params={"datetime": dt})
        assert {f["id"] for f in r.json()["features"]} == want, dt
    for dt in ("yesterday", "../..", "2026-03-05/2026-03-01", "a/b/c"):
        r = await anon.get(url, params={"datetime": dt})
        assert problem(r, 400, "invalid_parameter")["field"] == "datetime", dt
    r = await anon.get(url, params={"status": "registered", "grid_id": "x"})
    assert problem(r, 400, "invalid_parameter")["field"] == "grid_id"
    problem(await anon.get(url, headers={"Authorization": "Bearer nonsense"}), 401, "invalid_token")
