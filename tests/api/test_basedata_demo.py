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


async def test_demo_disputes(conn, anon, as_user) -> None:
    """The demo grid's disputes: through the disputes service (each a case), at different points
    of the loop, parties demo residents or free names saying 演示; a second load adds nothing."""
    from app.demo.disputes import PLAN, load_disputes

    await load_basedata(conn)
    assert await load_disputes(conn) == len(PLAN)
    assert await load_disputes(conn) == 0  # idempotent
    rows = list(
        await conn.execute(
            text(
                "SELECT d.title, d.status, d.risk, d.escalated_to, d.case_id, c.status AS case_status "
                "FROM disputes d JOIN cases c ON c.id = d.case_id AND c.district_id = d.district_id "
                "ORDER BY d.id"
            )
        )
    )
    assert [(r.title, r.status) for r in rows] == [
        ("楼上装修噪音扰民", "closed"),
        ("赡养老人费用分担", "follow_up"),
        ("楼道堆放杂物占用", "mediating"),
        ("讨要工钱情绪激动", "screened"),
        ("车位归属争议", "failed"),
    ]
    assert [r.case_status for r in rows] == [
        "closed",
        "handling",
        "handling",
        "registered",
        "registered",
    ]
    assert rows[3].escalated_to == "centre"
    names = [n for (n,) in await conn.execute(text("SELECT name FROM dispute_parties ORDER BY id"))]
    assert len(names) == 2 * len(PLAN) and all("演示" in n for n in names)
    g = (await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": GRID})).scalar_one()
    area = (
        await conn.execute(text("SELECT community_id FROM grids WHERE id = :g"), {"g": g})
    ).scalar_one()
    f = (
        await anon.get(
            "/api/v1/dispute-figures", params={"area_id": area}, headers=as_user("community")
        )
    ).json()
    assert (f["screened"], f["mediated"], f["closed"], f["high_risk"]) == (5, 4, 1, 1)
    q = (await anon.get("/api/v1/me/dispute-followups", headers=as_user("worker"))).json()
    assert [i["n"] for i in q["items"]] == [1, 2]
