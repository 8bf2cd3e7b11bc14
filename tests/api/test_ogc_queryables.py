"""Issue 22, GIS analysts: OGC API – Features Part 3 queryables (OWSLib's
`collection_queryables` got a 404), `sortby` and `properties` on items, through the app and
through OWSLib over real HTTP (`test_owslib_reads_the_queryables` in test_ogc_clients.py)."""

from __future__ import annotations

from typing import Any

from tests.factories import insert_case
from tests.helpers import problem

SCHEMA = "application/schema+json"
QUERYABLES = "http://www.opengis.net/def/rel/ogc/1.0/queryables"


async def test_every_collection_links_its_queryables(anon) -> None:
    for c in (await anon.get("/ogc/collections")).json()["collections"]:
        link = next(x for x in c["links"] if x["rel"] == QUERYABLES)
        assert link["type"] == SCHEMA
        r = await anon.get(link["href"].removeprefix("http://test"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith(SCHEMA)
        doc = r.json()
        assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert doc["$id"] == link["href"] and doc["type"] == "object"
        assert "geometry" in doc["properties"] and "datetime" in doc["properties"]


async def test_the_queryables_are_the_filters_that_work(anon) -> None:
    doc = (await anon.get("/ogc/collections/grids/queryables")).json()
    props = doc["properties"]
    assert {"code", "name", "kind", "community_id", "street_id", "households"} <= set(props)
    assert props["households"]["type"] == "integer"
    assert props["geometry"] == {"format": "geometry-multipolygon"}
    assert "staff" not in props  # not a filter
    r = await anon.get("/ogc/collections/grids/items?kind=city&limit=3")
    assert {f["properties"]["kind"] for f in r.json()["features"]} == {"city"}
    cases = (await anon.get("/ogc/collections/cases/queryables")).json()["properties"]
    assert "title" not in cases and "description" not in cases  # never filters
    assert problem(await anon.get("/ogc/collections/nope/queryables"), 404, "unknown_collection")
    bad = await anon.get("/ogc/collections/grids/queryables?x=1")
    assert problem(bad, 400, "invalid_parameter")["field"] == "x"


async def _all(anon: Any, url: str) -> list[dict[str, Any]]:
    r = await anon.get(url)
    assert r.status_code == 200, r.text
    return list(r.json()["features"])


async def test_sortby_orders_the_pages(anon) -> None:
    desc = await _all(anon, "/ogc/collections/grids/items?sortby=-households&limit=500")
    values = [f["properties"]["households"] for f in desc]
    assert values == sorted(values, reverse=True) and len(set(values)) > 1
    # ties broken by id, so the pages are stable and complete
    ties = [(f["properties"]["households"], f["id"]) for f in desc]
    assert ties == sorted(ties, key=lambda t: (-t[0], t[1]))
    # `+name` arrives as " name" when the + is not encoded; `%2Bname` and `name` are the same
    for q in ("sortby=+name", "sortby=%2Bname", "sortby=name"):
        names = [
            f["properties"]["name"]
            for f in await _all(anon, f"/ogc/collections/grids/items?{q}&limit=500")
        ]
        assert names == sorted(names), q
    two = await _all(anon, "/ogc/collections/grids/items?sortby=kind,-households&limit=500")
    keys = [(f["properties"]["kind"], -f["properties"]["households"]) for f in two]
    assert keys == sorted(keys)
    # paging with a sort: the pages together are the sorted whole
    first = await _all(anon, "/ogc/collections/grids/items?sortby=-households&limit=7")
    second = await _all(anon, "/ogc/collections/grids/items?sortby=-households&limit=7&offset=7")
    assert [f["id"] for f in first + second] == [f["id"] for f in desc[:14]]


async def test_sortby_refuses_what_it_cannot_sort_by(anon) -> None:
    for q, why in (
        ("sortby=nope", "unknown"),
        ("sortby=title", "shown only inside the caller's scope"),
        ("sortby=category", "hidden for private classes"),
        ("sortby=status,-status", "twice"),
        ("sortby=", "empty"),
    ):
        r = await anon.get(f"/ogc/collections/cases/items?{q}")
        assert problem(r, 400, "invalid_parameter")["field"] == "sortby", (q, why)
    ok = await anon.get("/ogc/collections/cases/items?sortby=-reported_at&limit=20")
    times = [f["properties"]["reported_at"] for f in ok.json()["features"]]
    assert times == sorted(times, reverse=True)


async def test_properties_selects_what_each_feature_carries(anon, conn) -> None:
    await insert_case(conn, title="只在范围内可见的标题")
    some = await _all(anon, "/ogc/collections/grids/items?properties=code,name&limit=5")
    assert some and all(set(f["properties"]) == {"code", "name"} for f in some)
    assert all(f["geometry"] for f in some)  # the geometry is not a property: always there
    none = await _all(anon, "/ogc/collections/grids/items?properties=&limit=2")
    assert all(f["properties"] == {} for f in none)
    r = await anon.get("/ogc/collections/grids/items?properties=code,secret")
    body = problem(r, 400, "invalid_parameter")
    assert body["field"] == "properties" and "secret" in body["detail"]
    # a property the caller may not see stays unseen when asked for by name
    cases = await _all(anon, "/ogc/collections/cases/items?properties=number,title&limit=5")
    assert cases and all("title" not in f["properties"] for f in cases)


async def test_the_ogc_api_document_declares_them(anon) -> None:
    doc = (await anon.get("/ogc/api")).json()
    assert "/ogc/collections/grids/queryables" in doc["paths"]
    params = doc["paths"]["/ogc/collections/grids/items"]["get"]["parameters"]
    names = {p.get("name") for p in params}
    assert {"sortby", "properties"} <= names
