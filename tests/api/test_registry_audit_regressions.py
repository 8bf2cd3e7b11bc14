"""Bug 7 of issue 16: registry writes (areas, grids, boundaries, imports, buildings) were not in
the audit log, boundary versions named no author, and the case timeline was outside any hash
chain."""

from __future__ import annotations

import itertools
import os
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.api.test_loop import Loop, _report
from tests.helpers import SANDBOX, make_sandbox, square

LON, LAT = SANDBOX


_since: dict[str, int] = {"since": 0}


async def _audit(conn, object_type: str, object_id: object | None = None) -> list[tuple]:
    """This test's audit rows (other tests' servers and CLI runs commit theirs)."""
    rows = await conn.execute(
        text(
            "SELECT action, actor, detail FROM audit_log WHERE object_type = :t AND id > :since "
            "AND (CAST(:id AS text) IS NULL OR object_id = CAST(:id AS text)) ORDER BY id"
        ),
        {"t": object_type, "id": None if object_id is None else str(object_id), **_since},
    )
    return [tuple(r) for r in rows]


async def test_registry_writes_are_audited(client: httpx.AsyncClient, demo, conn) -> None:
    _since["since"] = (
        await conn.execute(text("SELECT coalesce(max(id), 0) FROM audit_log"))
    ).scalar_one()
    places = await make_sandbox(client, demo)
    street, community = places["street"], places["community"]
    [(action, actor, detail)] = await _audit(conn, "area", community)
    assert (action, actor) == ("area_created", "admin")
    assert detail["code"] == "360602901001" and detail["boundary"] is True
    r = await client.patch(f"/api/v1/areas/{community}", json={"name": "测试社区二"})
    assert r.status_code == 200, r.text
    assert (await _audit(conn, "area", community))[-1][0] == "area_updated"
    assert (await _audit(conn, "area", community))[-1][2]["name"] == "测试社区二"

    r = await client.post(
        "/api/v1/grids",
        json={
            "code": "360602901001901",
            "name": "审计网格",
            "community_id": community,
            "kind": "city",
            "boundary": square(LON, LAT, 0.005),
        },
    )
    assert r.status_code == 201, r.text
    grid = r.json()["id"]
    r = await client.patch(
        f"/api/v1/grids/{grid}", json={"boundary": square(LON, LAT, 0.004), "households": 120}
    )
    assert r.status_code == 200, r.text
    actions = [a for a, _, _ in await _audit(conn, "grid", grid)]
    assert actions == ["grid_created", "grid_updated"]
    updated = (await _audit(conn, "grid", grid))[-1][2]
    assert updated["fields"] == ["boundary", "households"] and updated["boundary_changed"] is True

    r = await client.post(
        "/api/v1/grids/import",
        json={
            "type": "FeatureCollection",
            "features": [
                {
                    "type": "Feature",
                    "properties": {
                        "code": "360602901001902",
                        "name": "导入网格",
                        "kind": "city",
                        "community_code": "360602901001",
                    },
                    "geometry": square(LON + 0.01, LAT, 0.005),
                }
            ],
        },
    )
    assert r.status_code == 201, r.text
    [(action, actor, detail)] = await _audit(conn, "grid_import")
    assert (action, actor) == ("grids_imported", "admin")
    assert detail["created"] == ["360602901001902"] and detail["mode"] == "create"

    r = await client.post(
        "/api/v1/buildings",
        json={
            "name": "1栋",
            "households": 48,
            "units": 2,
            "geometry": {"type": "Point", "coordinates": [LON + 0.002, LAT + 0.002]},
        },
    )
    assert r.status_code == 201, r.text
    building = r.json()["id"]
    assert (await client.patch(f"/api/v1/buildings/{building}", json={"units": 3})).is_success
    assert (await client.delete(f"/api/v1/buildings/{building}")).status_code == 204
    assert [a for a, _, _ in await _audit(conn, "building", building)] == [
        "building_created",
        "building_updated",
        "building_deleted",
    ]
    assert (await client.delete(f"/api/v1/grids/{grid}")).status_code == 204
    assert (await _audit(conn, "grid", grid))[-1][0] == "grid_deleted"
    other = await client.post(
        "/api/v1/areas",
        json={"level": "community", "code": "360602901002", "name": "空社区", "parent_id": street},
    )
    assert other.status_code == 201, other.text
    assert (await client.delete(f"/api/v1/areas/{other.json()['id']}")).status_code == 204
    assert [a for a, _, _ in await _audit(conn, "area", other.json()["id"])] == [
        "area_created",
        "area_deleted",
    ]
    chain = (await client.get("/api/v1/audit/verify")).json()
    assert chain["ok"] is True, chain


async def test_boundary_versions_name_their_author(
    anon: httpx.AsyncClient, as_user, client: httpx.AsyncClient, demo, conn
) -> None:
    places = await make_sandbox(client, demo)
    r = await client.post(
        "/api/v1/grids",
        json={
            "code": "360602901001903",
            "name": "作者网格",
            "community_id": places["community"],
            "kind": "city",
            "boundary": square(LON, LAT, 0.005),
        },
    )
    grid = r.json()["id"]
    # the street office redraws it (a later version: a new statement time). The time as a
    # bind: Citus refuses `valid_from - interval '1 day'` (a STABLE operator on a column) in an
    # UPDATE of a reference table.
    first = (
        await conn.execute(
            text("SELECT valid_from FROM grid_boundaries WHERE grid_id = :g"), {"g": grid}
        )
    ).scalar_one()
    await conn.execute(
        text("UPDATE grid_boundaries SET valid_from = :at WHERE grid_id = :g"),
        {"g": grid, "at": first - timedelta(days=1)},
    )
    r = await anon.patch(
        f"/api/v1/grids/{grid}",
        headers=as_user("centre"),
        json={"boundary": square(LON, LAT, 0.004)},
    )
    assert r.status_code == 200, r.text
    versions = (await client.get(f"/api/v1/grids/{grid}/boundaries")).json()
    names = {
        u: n
        for u, n in (await conn.execute(text("SELECT username, display_name FROM users"))).all()
    }
    assert [v["author"]["name"] for v in versions] == [names["admin"], names["centre"]]
    # versions drawn before authors were recorded say so
    demo_grid = demo["360602001001001"]
    old = (await client.get(f"/api/v1/grids/{demo_grid}/boundaries")).json()
    assert old[0]["author"] is None


async def test_the_case_timeline_is_a_hash_chain(anon, as_user, client, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("community", "register")
    await loop.do("street", "dispatch")
    await loop.do("dept", "sign_in")
    rows = (
        await conn.execute(
            text(
                "SELECT id, district_id, prev_hash, hash FROM case_events WHERE case_id = :c "
                "ORDER BY id"
            ),
            {"c": loop.id},
        )
    ).all()
    assert len(rows) == 4
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    report = (await client.get(f"/api/v1/cases/{loop.id}/timeline/verify")).json()
    assert report == {"ok": True, "checked": 4, "broken": []}
    # only administrators verify
    r = await anon.get(f"/api/v1/cases/{loop.id}/timeline/verify", headers=as_user("street"))
    assert r.status_code == 403
    # a step cannot be edited ...
    edit = text("UPDATE case_events SET note = '改过' WHERE id = :id AND district_id = :d")
    step = {"id": rows[1].id, "d": rows[1].district_id}
    nested = await conn.begin_nested()
    with pytest.raises(DBAPIError, match="append-only"):
        await conn.execute(edit, step)
    await nested.rollback()
    # ... and one edited behind the trigger's back is found
    # (triggers off for this transaction only: no DDL, no lock on the table; on Citus the
    # setting must reach the shard's connection: SET LOCAL propagated to the workers)
    if os.environ.get("WANGGE_CITUS_URL"):
        await conn.execute(text("SET LOCAL citus.propagate_set_commands = 'local'"))
    await conn.execute(text("SET LOCAL session_replication_role = replica"))
    await conn.execute(edit, step)
    await conn.execute(text("SET LOCAL session_replication_role = origin"))
    report = (await client.get(f"/api/v1/cases/{loop.id}/timeline/verify")).json()
    assert report["ok"] is False
    assert report["broken"] == [{"id": rows[1].id, "hash_ok": False, "link_ok": True}]
