"""The demo quarter of the community mechanisms: loaded with the district, idempotent, and showing
something real through the API."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.test_community_lists import COMMUNITY


async def test_demo_quarter_is_loaded_once(conn) -> None:
    from app.demo.community import load_community

    before = (await conn.execute(text("SELECT count(*) FROM community_tasks"))).scalar_one()
    assert await load_community(conn) == 0
    after = (await conn.execute(text("SELECT count(*) FROM community_tasks"))).scalar_one()
    assert before == after
    measures = (
        await conn.execute(
            text(
                "SELECT count(*), count(DISTINCT department_id) FROM grid_support_measures "
                "WHERE code ~ '^[A-Z]+-[0-9]{2}$'"
            )
        )
    ).one()
    assert tuple(measures) == (86, 25)  # Yuehu: 25 departments, 86 measures


async def test_demo_quarter_through_the_api(anon, as_user, demo) -> None:
    area = demo[COMMUNITY]
    h = as_user("community")
    meetings = (await anon.get(f"/api/v1/areas/{area}/meetings", headers=h)).json()
    assert [m["period"] for m in meetings][:2] == ["2026Q4", "2026Q3"]
    r = await anon.get(f"/api/v1/areas/{area}/meetings/{meetings[0]['id']}/report", headers=h)
    units = r.json()["units"]
    assert len(units) == 9 and sum(u["assigned"] for u in units) >= 3
    assert any(u["service_hours"] > 0 for u in units)
    s = (
        await anon.get(
            f"/api/v1/areas/{area}/evaluations/summary", headers=h, params={"period": "2026Q3"}
        )
    ).json()
    assert s["totals"]["rated"] == 9 and all(u["ratings"] == 7 for u in s["units"])
    board = (await anon.get(f"/api/v1/public/areas/{area}/board")).json()
    assert {m["step"] for m in board["matters"]} == {1, 2, 3, 4, 5}
    unmatched = (
        await anon.get(f"/api/v1/areas/{area}/needs", headers=h, params={"unmatched": "true"})
    ).json()
    assert len(unmatched) >= 5
    matches = (
        await anon.get(f"/api/v1/areas/{area}/needs/{unmatched[0]['id']}/matches", headers=h)
    ).json()
    assert matches and matches[0]["score"] >= 50
    report = (
        await anon.get(
            f"/api/v1/areas/{area}/volunteer-report",
            headers=h,
            params={"since": "2026-10-01", "until": "2026-11-30"},
        )
    ).json()
    assert report["totals"]["hours"] > 0 and report["totals"]["members"] == 17
    r = await anon.get("/api/v1/support-measures", headers=as_user("worker"))
    assert len(r.json()) >= 86


async def test_every_community_table_carries_its_district_and_community(conn) -> None:
    from app.community.models import CommunityScoped
    from app.models import Base

    tables = {
        m.class_.__tablename__
        for m in Base.registry.mappers
        if issubclass(m.class_, CommunityScoped)
    }
    assert len(tables) >= 17
    rows = await conn.execute(
        text(
            """
            SELECT tc.table_name, kcu.column_name FROM information_schema.table_constraints tc
            JOIN information_schema.key_column_usage kcu ON kcu.constraint_name = tc.constraint_name
            JOIN information_schema.constraint_column_usage ccu
              ON ccu.constraint_name = tc.constraint_name
            WHERE tc.constraint_type = 'FOREIGN KEY' AND ccu.table_name = 'areas'
              AND kcu.column_name IN ('district_id', 'community_id')
            """
        )
    )
    fks: dict[str, set[str]] = {}
    for r in rows:
        fks.setdefault(r.table_name, set()).add(r.column_name)
    for t in tables:
        assert fks.get(t) == {"district_id", "community_id"}, t
    assert "district_id" in fks["grid_support_measures"]


async def test_community_figures_of_the_demo_quarters(anon, as_user, demo) -> None:
    street = demo["360602001000"]  # 江边街道: only 立新社区 has a demo quarter
    url = f"/api/v1/areas/{street}/community-figures"
    r = await anon.get(url, headers=as_user("centre"), params={"period": "2026Q3"})
    assert r.status_code == 200, r.text
    q3 = r.json()
    assert (q3["communities"], q3["communities_with_committee"], q3["communities_met"]) == (6, 1, 1)
    assert q3["meetings"] == 1 and sum(q3["needs"].values()) == 10
    assert sum(q3["unit_ratings"].values()) == 63  # 9 member units x 7 raters
    assert q3["party_members"] == 17 and q3["services"] == 0
    r = await anon.get(url, headers=as_user("street"), params={"period": "2026Q4"})
    q4 = r.json()
    # Q4: 6 + 5 confirmed task services (3 h, 2.5 h) and 6 direct ones (1.5 h)
    assert (q4["services"], q4["service_hours"]) == (17, 39.5)
    assert q4["tasks"]["due"] >= q4["tasks"]["done"] and q4["unit_ratings"] == {}
    r = await anon.get(url, headers=as_user("worker"), params={"period": "2026Q4"})
    assert r.status_code == 403
