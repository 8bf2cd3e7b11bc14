"""The demo grid's base data: deterministic, obviously fictitious, ID numbers that pass the check
digit, marked demo, encrypted like any other; a second load adds nothing."""

from __future__ import annotations

from sqlalchemy import text

from app.basedata import crypto
from app.basedata.checks import id_number_problem
from app.demo.basedata import GRID, load_basedata


async def test_demo_base_data(conn, anon, as_user) -> None:
    n = await load_basedata(conn)
    assert n > 100
    assert await load_basedata(conn) == 0  # idempotent
    rows = list(
        await conn.execute(
            text("SELECT name, id_enc, key_version, demo, tags FROM residents ORDER BY id")
        )
    )
    assert len(rows) == n and all(r.demo for r in rows)
    assert all("演示" in r.name for r in rows)
    ids = [crypto.open_sealed(r.id_enc, "id_number", r.key_version) for r in rows]
    assert all(id_number_problem(i) is None and i.startswith("360602") for i in ids)
    assert all(900 <= int(i[14:17]) <= 999 for i in ids)
    assert any("elderly_alone" in r.tags for r in rows)
    g = (await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": GRID})).scalar_one()
    grid = (await anon.get(f"/api/v1/grids/{g}", headers=as_user("worker"))).json()
    assert grid["households_source"] == "base_data" and grid["population"] == n
    plan = (await anon.get("/api/v1/me/visit-plan", headers=as_user("worker"))).json()["items"]
    assert plan and all(x["grid_id"] == g for x in plan) and plan[0]["due"]


async def test_the_same_data_every_time(conn) -> None:
    await load_basedata(conn)
    first = [
        tuple(r)
        for r in await conn.execute(text("SELECT name, id_masked, tags FROM residents ORDER BY id"))
    ]
    await conn.execute(text("DELETE FROM houses"))
    await load_basedata(conn)
    again = [
        tuple(r)
        for r in await conn.execute(text("SELECT name, id_masked, tags FROM residents ORDER BY id"))
    ]
    assert first == again
