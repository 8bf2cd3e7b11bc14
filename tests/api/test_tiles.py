"""Vector tiles: decoded with mapbox-vector-tile, compared with the database."""

from __future__ import annotations

from typing import Any

import mapbox_vector_tile
import mercantile
from sqlalchemy import text

from tests.factories import insert_case, point_in_grid
from tests.helpers import problem

GRID = "360602001001001"  # the worker's first grid (立新社区)
OTHER = "360602004001001"  # worker2's grid, in another street
MVT = "application/vnd.mapbox-vector-tile"


def _decode(content: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(content)


async def test_grids_tile_is_public_with_the_grid_and_its_counts(anon, conn) -> None:
    lon, lat = await point_in_grid(conn, GRID)
    t = mercantile.tile(lon, lat, 16)
    r = await anon.get(f"/tiles/grids/16/{t.x}/{t.y}.mvt")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == MVT
    assert r.headers["cache-control"].startswith("public")
    feats = {f["properties"]["code"]: f for f in _decode(r.content)["grids"]["features"]}
    f = feats[GRID]
    want = (
        await conn.execute(
            text(
                "SELECT g.id, g.households, g.kind, cm.name AS community, st.name AS street, "
                "(SELECT count(DISTINCT p.user_id) FROM post_grids pg JOIN posts p "
                " ON p.id = pg.post_id WHERE pg.grid_id = g.id) AS staff "
                "FROM grids g JOIN areas cm ON cm.id = g.community_id "
                "JOIN areas st ON st.id = cm.parent_id WHERE g.code = :g"
            ),
            {"g": GRID},
        )
    ).one()
    assert f["id"] == want.id
    p = f["properties"]
    assert (p["households"], p["kind"], p["community"], p["street"]) == (
        want.households,
        want.kind,
        want.community,
        want.street,
    )
    # leader, worker and the grid's two roster workers
    assert p["staff"] == want.staff == 4
    assert f["geometry"]["type"] in ("Polygon", "MultiPolygon")
    # every grid whose boundary meets the tile (with its 64/4096 buffer) and no other
    n = (
        await conn.execute(
            text(
                "SELECT count(*) FROM grid_boundaries b WHERE b.valid_to IS NULL AND "
                "ST_Intersects(ST_Transform(b.boundary, 3857), "
                "ST_TileEnvelope(16, :x, :y, margin => 64.0 / 4096))"
            ),
            {"x": t.x, "y": t.y},
        )
    ).scalar()
    assert len(feats) == n


async def test_etag_and_not_modified(anon, conn) -> None:
    lon, lat = await point_in_grid(conn, GRID)
    t = mercantile.tile(lon, lat, 14)
    url = f"/tiles/grids/14/{t.x}/{t.y}.mvt"
    r = await anon.get(url)
    tag = r.headers["etag"]
    assert tag.startswith('"') and len(tag) == 34
    again = await anon.get(url, headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == tag
    weak = await anon.get(url, headers={"If-None-Match": f'"nope", W/{tag}'})
    assert weak.status_code == 304  # weak comparison, as RFC 9110 says for If-None-Match
    # the data changes, so does the tag
    await conn.execute(text("UPDATE grids SET households = 1 WHERE code = :g"), {"g": GRID})
    changed = await anon.get(url, headers={"If-None-Match": tag})
    assert changed.status_code == 200 and changed.headers["etag"] != tag


async def test_empty_tile_is_204_and_bad_tiles_are_problems(anon, conn) -> None:
    r = await anon.get("/tiles/grids/16/0/0.mvt")
    assert r.status_code == 204 and r.content == b""
    assert r.headers["cache-control"].startswith("public")
    # below the layer's minzoom (10 for grids): nothing, whatever the data
    lon, lat = await point_in_grid(conn, GRID)
    t = mercantile.tile(lon, lat, 9)
    assert (await anon.get(f"/tiles/grids/9/{t.x}/{t.y}.mvt")).status_code == 204
    t = mercantile.tile(lon, lat, 10)
    assert (await anon.get(f"/tiles/grids/10/{t.x}/{t.y}.mvt")).status_code == 200
    assert (
        problem(await anon.get("/tiles/grids/3/8/0.mvt"), 422, "validation_error")["field"] == "x"
    )
    assert (
        problem(await anon.get("/tiles/areas/3/0/9.mvt"), 422, "validation_error")["field"] == "y"
    )
    r = await anon.get("/tiles/grids/40/0/0.mvt")
    assert r.status_code == 422


async def test_areas_tile_has_streets_and_communities(anon, conn) -> None:
    lon, lat = await point_in_grid(conn, GRID)
    t = mercantile.tile(lon, lat, 14)
    r = await anon.get(f"/tiles/areas/14/{t.x}/{t.y}.mvt")
    feats = _decode(r.content)["areas"]["features"]
    levels = {f["properties"]["level"] for f in feats}
    assert levels == {"street", "community"}
    names = {f["properties"]["name"] for f in feats}
    assert "立新社区" in names and "江边街道" in names


async def _case(conn: Any, grid: str, status: str = "registered", **kw: Any) -> int:
    return await insert_case(
        conn,
        grid,
        status=status,
        category=kw["category"],
        title="tile test",
        urgency=kw.get("urgency", "normal"),
        age_days=kw.get("age_days", 0),
    )


async def _categories(conn: Any) -> list[str]:
    rows = await conn.execute(text("SELECT code FROM categories ORDER BY code LIMIT 2"))
    return [r.code for r in rows]


def _ids(r: Any, layer: str) -> set[int]:
    if r.status_code == 204:
        return set()
    assert r.status_code == 200, r.text
    return {f["id"] for f in _decode(r.content)[layer]["features"]}


async def test_cases_tile_is_scoped_by_the_token(anon, as_user, conn) -> None:
    cat, cat2 = await _categories(conn)
    mine = await _case(conn, GRID, category=cat, urgency="urgent")
    other = await _case(conn, OTHER, category=cat)
    closed = await _case(conn, GRID, status="closed", category=cat2)
    z = 11  # both grids in one tile
    lon, lat = await point_in_grid(conn, GRID)
    t = mercantile.tile(lon, lat, z)
    lon2, lat2 = await point_in_grid(conn, OTHER)
    assert mercantile.tile(lon2, lat2, z) == t
    url = f"/tiles/cases/{z}/{t.x}/{t.y}.mvt"
    assert problem(await anon.get(url), 401, "unauthenticated")
    r = await anon.get(url, headers=as_user("admin"))
    assert r.headers["cache-control"].startswith("private") and r.headers["vary"] == "Authorization"
    assert _ids(r, "cases") >= {mine, other} and closed not in _ids(r, "cases")
    assert _ids(await anon.get(url, headers=as_user("worker")), "cases") == {mine}
    assert _ids(await anon.get(url, headers=as_user("worker2")), "cases") == {other}
    assert _ids(await anon.get(url, headers=as_user("community")), "cases") == {mine}
    assert _ids(await anon.get(url, headers=as_user("dept")), "cases") == set()
    feats = _decode((await anon.get(url, headers=as_user("worker"))).content)["cases"]["features"]
    p = feats[0]["properties"]
    assert (p["status"], p["category"], p["urgency"], p["overdue"]) == (
        "registered",
        cat,
        "urgent",
        False,
    )
    assert p["reported_at"].endswith("+08:00")
    # filters
    closed_only = await anon.get(url, params={"status": "closed"}, headers=as_user("worker"))
    assert _ids(closed_only, "cases") == {closed}
    by_cat = await anon.get(
        url,
        params=[("status", "closed"), ("status", "registered"), ("category", cat2)],
        headers=as_user("worker"),
    )
    assert _ids(by_cat, "cases") == {closed}
    future = await anon.get(url, params={"since": "2099-01-01"}, headers=as_user("worker"))
    assert future.status_code == 204
    bad = await anon.get(url, params={"status": "nope"}, headers=as_user("worker"))
    assert problem(bad, 422, "validation_error")["field"].startswith("status")


async def test_department_sees_cases_dispatched_to_it_and_overdue(anon, as_user, conn) -> None:
    cat, _ = await _categories(conn)
    case = await _case(conn, OTHER, status="dispatched", category=cat)
    dept = (
        await conn.execute(
            text(
                "SELECT p.department_id FROM posts p JOIN users u ON u.id = p.user_id "
                "WHERE u.username = 'dept'"
            )
        )
    ).scalar()
    await conn.execute(
        text(
            "INSERT INTO case_assignments (case_id, district_id, department_id, role, limits, "
            "sign_in_due) SELECT c.id, c.district_id, :d, 'lead', '{}', now() - interval '1 hour' "
            "FROM cases c WHERE c.id = :c"
        ),
        {"c": case, "d": dept},
    )
    lon, lat = await point_in_grid(conn, OTHER)
    t = mercantile.tile(lon, lat, 15)
    url = f"/tiles/cases/15/{t.x}/{t.y}.mvt"
    r = await anon.get(url, headers=as_user("dept"))
    feats = _decode(r.content)["cases"]["features"]
    assert [f["id"] for f in feats] == [case] and feats[0]["properties"]["overdue"] is True
    other_dept = await anon.get(url, params={"department_id": dept + 1}, headers=as_user("admin"))
    assert case not in _ids(other_dept, "cases")
    same = await anon.get(url, params={"department_id": dept}, headers=as_user("admin"))
    assert _ids(same, "cases") == {case}


async def test_hotspots_count_cases_per_grid_in_scope(anon, as_user, conn) -> None:
    cat, _ = await _categories(conn)
    await _case(conn, GRID, category=cat)
    await _case(conn, GRID, status="closed", category=cat)
    await _case(conn, GRID, status="rejected", category=cat, age_days=40)  # before the period
    await _case(conn, OTHER, category=cat)
    z = 11
    lon, lat = await point_in_grid(conn, GRID)
    t = mercantile.tile(lon, lat, z)
    url = f"/tiles/hotspots/{z}/{t.x}/{t.y}.mvt"
    problem(await anon.get(url), 401, "unauthenticated")

    def counts(r: Any) -> dict[str, tuple[int, int]]:
        if r.status_code == 204:
            return {}
        return {
            f["properties"]["code"]: (f["properties"]["cases"], f["properties"]["open"])
            for f in _decode(r.content)["hotspots"]["features"]
        }

    admin = counts(await anon.get(url, headers=as_user("admin")))
    assert admin[GRID] == (2, 1) and admin[OTHER] == (1, 1)
    assert counts(await anon.get(url, headers=as_user("worker"))) == {GRID: (2, 1)}
    longer = await anon.get(url, params={"since": "2000-01-01"}, headers=as_user("worker"))
    assert counts(longer) == {GRID: (3, 1)}
    assert counts(await anon.get(url, headers=as_user("dept"))) == {}


async def test_tilejson(anon, as_user) -> None:
    r = await anon.get("/tiles/grids.json")
    assert r.status_code == 200
    tj = r.json()
    assert tj["tilejson"] == "3.0.0"
    assert tj["tiles"] == ["http://test/tiles/grids/{z}/{x}/{y}.mvt"]
    assert tj["vector_layers"][0]["id"] == "grids"
    assert set(tj["vector_layers"][0]["fields"]) >= {"code", "kind", "households", "staff"}
    w, s, e, n = tj["bounds"]
    assert 116 < w < e < 118 and 28 < s < n < 29
    assert (await anon.get("/tiles/areas.json")).json()["vector_layers"][0]["id"] == "areas"
    problem(await anon.get("/tiles/cases.json"), 401, "unauthenticated")
    r = await anon.get(
        "/tiles/cases.json",
        params={"status": "closed", "category": "SR-01"},
        headers=as_user("worker"),
    )
    assert r.json()["tiles"] == [
        "http://test/tiles/cases/{z}/{x}/{y}.mvt?status=closed&category=SR-01"
    ]
    hs = await anon.get("/tiles/hotspots.json", headers=as_user("worker"))
    assert hs.json()["vector_layers"][0]["fields"]["cases"].startswith("Number")
