"""Visits (走访) to a building: a purpose from the catalogue (zh/en), an outcome, a case raised
through the intake, the patrol's timeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from tests.factories import DEMO_GRID, category_code
from tests.helpers import problem


async def _building(conn) -> int:  # type: ignore[no-untyped-def]
    return int(
        (
            await conn.execute(
                text(
                    "SELECT b.id FROM buildings b JOIN grids g ON g.id = b.grid_id "
                    "WHERE g.code = :c ORDER BY b.id LIMIT 1"
                ),
                {"c": DEMO_GRID},
            )
        ).scalar_one()
    )


async def test_the_purpose_catalogue_in_two_languages(anon, as_user) -> None:
    zh = (await anon.get("/api/v1/visit-purposes", headers=as_user("worker"))).json()
    en = (
        await anon.get(
            "/api/v1/visit-purposes", headers={**as_user("worker"), "Accept-Language": "en"}
        )
    ).json()
    assert {"code": "condolence", "name": "走访慰问"} in zh
    assert {"code": "safety", "name": "Safety inspection"} in en
    assert [x["code"] for x in zh] == [x["code"] for x in en]


async def test_a_visit_that_raises_a_case_on_the_patrols_timeline(anon, as_user, conn) -> None:
    h = as_user("worker")
    b = await _building(conn)
    gid = (
        await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": DEMO_GRID})
    ).scalar_one()
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    p = (
        await anon.post(
            "/api/v1/patrols", json={"grid_id": gid, "started_at": t0.isoformat()}, headers=h
        )
    ).json()
    plain = await anon.post(
        f"/api/v1/buildings/{b}/visits",
        json={"purpose": "safety", "outcome": "done", "note": "楼道畅通", "patrol_id": p["id"]},
        headers=h,
    )
    assert plain.status_code == 201, plain.text
    assert plain.json()["purpose_name"] == "安全检查" and plain.json()["case_id"] is None
    cat = await category_code(conn)
    raised = await anon.post(
        f"/api/v1/buildings/{b}/visits",
        json={
            "purpose": "condolence",
            "patrol_id": p["id"],
            "client_id": "v-1",
            "case": {"category": cat, "title": "独居老人家中漏水", "description": "需维修"},
        },
        headers=h,
    )
    assert raised.status_code == 201, raised.text
    v = raised.json()
    assert v["outcome"] == "case_raised" and v["case_id"]
    case = (await anon.get(f"/api/v1/cases/{v['case_id']}", headers=h)).json()
    assert case["title"] == "独居老人家中漏水" and case["building_id"] == b
    # retried: the same visit, no second case
    again = await anon.post(
        f"/api/v1/buildings/{b}/visits",
        json={
            "purpose": "condolence",
            "patrol_id": p["id"],
            "client_id": "v-1",
            "case": {"category": cat, "title": "独居老人家中漏水"},
        },
        headers=h,
    )
    assert again.status_code == 200 and again.json()["id"] == v["id"]
    n = (
        await conn.execute(text("SELECT count(*) FROM cases WHERE title = '独居老人家中漏水'"))
    ).scalar_one()
    assert n == 1
    tl = (await anon.get(f"/api/v1/patrols/{p['id']}/timeline", headers=h)).json()
    kinds = [i["kind"] for i in tl]
    assert kinds.count("visit") == 2 and kinds.count("case") == 1 and kinds[0] == "started"
    listed = (await anon.get(f"/api/v1/buildings/{b}/visits", headers=as_user("leader"))).json()
    assert {v["id"], plain.json()["id"]} <= {x["id"] for x in listed}


async def test_bad_visits(anon, as_user, conn) -> None:
    b = await _building(conn)
    h = as_user("worker")
    r = await anon.post(f"/api/v1/buildings/{b}/visits", json={"purpose": "nonsense"}, headers=h)
    assert problem(r, 422, "unknown_purpose")["field"] == "purpose"
    r = await anon.post(
        f"/api/v1/buildings/{b}/visits",
        json={"purpose": "safety", "case": {"category": "NOPE", "title": "x"}},
        headers=h,
    )
    assert r.status_code == 422
    n = (
        await conn.execute(
            text(
                "SELECT count(*) FROM visits WHERE building_id = :b "
                "AND at > now() - interval '10 minutes'"
            ),
            {"b": b},
        )
    ).scalar_one()
    assert n == 0  # the visit is not stored without its case
    # another community's worker may not record a visit here
    r = await anon.post(
        f"/api/v1/buildings/{b}/visits", json={"purpose": "safety"}, headers=as_user("worker2")
    )
    problem(r, 404, "not_found")
