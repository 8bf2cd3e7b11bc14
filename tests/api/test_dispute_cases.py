"""Disputes on the case engine (issue 21): a dispute is carried by a case of the 矛盾纠纷 class
(number, place, timeline with its hash chain), every dispute step is a step of that case;
screening reports raised on visits and patrols; the worker's follow-up queue; retention's
forgetter for party names; the grid lookup's size from the base data with its source."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.auth import scope
from app.basedata import retention
from app.cases.chain import verify_timeline
from app.config import get_settings
from app.disputes import service
from tests.api.basedata_support import building_id, grid_id, household, id_number, resident
from tests.factories import Loop, department_id
from tests.helpers import problem

AGREED = {"outcome": "agreed", "agreement": "晚十点后不再装修", "signed_by": "双方当事人"}


async def _timeline(anon, h, case_id):  # type: ignore[no-untyped-def]
    r = await anon.get(f"/api/v1/cases/{case_id}", headers=h)
    assert r.status_code == 200, r.text
    return [(e["action"], e["to_status"]) for e in r.json()["timeline"]]


async def test_a_dispute_is_a_case_and_its_steps_are_the_case_timeline(
    anon, as_user, conn, session
) -> None:
    h = as_user("worker")
    g = await grid_id(conn)
    hh = await household(anon, h, await building_id(conn), room="301")
    p = await resident(anon, h, hh, name="测试甲方")
    r = await anon.post(
        f"/api/v1/grids/{g}/disputes",
        json={
            "title": "楼上漏水纠纷",
            "summary": "楼上卫生间漏水",
            "kind": "neighbour",
            "parties": [{"resident_id": p["id"]}, {"name": "测试乙方"}],
        },
        headers=h,
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert d["case_id"] and d["case_number"]
    case = (await anon.get(f"/api/v1/cases/{d['case_id']}", headers=h)).json()
    assert case["category"]["code"] == "MD-01" and case["status"] == "registered"
    assert case["grid"]["id"] == g and case["urgency"] == "normal"
    # the party's name is not on the case
    assert "测试甲方" not in str(case) and "测试乙方" not in str(case)
    await anon.post(
        f"/api/v1/disputes/{d['id']}/sessions", json={"outcome": "continued"}, headers=h
    )
    await anon.post(f"/api/v1/disputes/{d['id']}/sessions", json=AGREED, headers=h)
    await anon.post(
        f"/api/v1/disputes/{d['id']}/followups", json={"n": 1, "holds": True}, headers=h
    )
    r = await anon.post(f"/api/v1/disputes/{d['id']}/close", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    case = (await anon.get(f"/api/v1/cases/{d['case_id']}", headers=h)).json()
    assert case["status"] == "closed" and case["closed_at"]
    assert await _timeline(anon, h, d["case_id"]) == [
        ("reported", "reported"),
        ("dispute_screened", "registered"),
        ("dispute_session", "handling"),
        ("dispute_session", "handling"),
        ("dispute_followup", "handling"),
        ("dispute_closed", "closed"),
    ]
    checked, broken = await verify_timeline(session, d["case_id"])
    assert checked == 6 and broken == []
    events = (
        await conn.execute(
            text("SELECT type FROM events WHERE case_id = :c ORDER BY id"),
            {"c": d["case_id"]},
        )
    ).scalars()
    assert "case.dispute_closed" in list(events)


async def test_high_risk_case_critical_and_overdue_step(anon, as_user, conn, session) -> None:
    h = as_user("worker")
    g = await grid_id(conn)
    hi = (
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={
                "title": "扬言报复",
                "kind": "family",
                "risk": "high",
                "parties": [{"name": "某甲"}],
            },
            headers=h,
        )
    ).json()
    case = (await anon.get(f"/api/v1/cases/{hi['case_id']}", headers=h)).json()
    assert case["category"]["code"] == "MD-06" and case["urgency"] == "critical"
    assert ("dispute_escalated", "registered") in await _timeline(anon, h, hi["case_id"])
    low = (
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={"title": "劳资纠纷", "kind": "labour", "parties": [{"name": "某乙"}]},
            headers=h,
        )
    ).json()
    await service.tick(session, datetime.now(UTC) + timedelta(days=60))
    steps = await _timeline(anon, h, low["case_id"])
    assert steps[-1] == ("dispute_escalated", "registered")


async def test_screening_reports_from_a_visit_and_a_patrol(anon, as_user, conn) -> None:
    h = as_user("worker")
    g = await grid_id(conn)
    b = await building_id(conn)
    hh = await household(anon, h, b, room="302")
    p = await resident(anon, h, hh, name="测试走访人")
    v = await anon.post(
        f"/api/v1/buildings/{b}/visits",
        json={"purpose": "dispute", "resident_id": p["id"], "note": "排查"},
        headers=h,
    )
    assert v.status_code == 201, v.text
    vid = v.json()["id"]
    r = await anon.post(
        f"/api/v1/visits/{vid}/disputes",
        json={"title": "赡养纠纷", "kind": "family", "risk": "medium"},
        headers=h,
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["source"], d["visit_id"], d["grid_id"]) == ("visit", vid, g)
    assert [x["resident_id"] for x in d["parties"]] == [p["id"]]
    problem(
        await anon.post(
            f"/api/v1/visits/{vid}/disputes",
            json={"title": "x", "kind": "other"},
            headers=as_user("worker2"),
        ),
        404,
        "not_found",
    )
    pr = await anon.post(
        "/api/v1/patrols",
        json={"grid_id": g, "started_at": "2026-11-30T09:00:00+08:00"},
        headers=h,
    )
    assert pr.status_code == 201, pr.text
    problem(
        await anon.post(
            f"/api/v1/patrols/{pr.json()['id']}/disputes",
            json={"title": "占道纠纷", "kind": "neighbour"},
            headers=h,
        ),
        422,
        "validation_error",
    )
    r = await anon.post(
        f"/api/v1/patrols/{pr.json()['id']}/disputes",
        json={"title": "占道纠纷", "kind": "neighbour", "parties": [{"name": "摊主"}]},
        headers=h,
    )
    assert r.status_code == 201, r.text
    assert (r.json()["source"], r.json()["patrol_id"]) == ("patrol", pr.json()["id"])
    # a visit of another grid cannot be named on this grid's dispute
    problem(
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={
                "title": "x",
                "kind": "other",
                "visit_id": vid + 100000,
                "parties": [{"name": "甲"}],
            },
            headers=h,
        ),
        422,
        "validation_error",
    )


async def test_a_resent_report_with_its_client_id_adds_nothing(anon, as_user, conn) -> None:
    """The field app's outbox sends a report with the phone's id: a resend (the answer was lost)
    answers 200 with the dispute stored the first time; another worker's same id is theirs."""
    h = as_user("worker")
    g = await grid_id(conn)
    body = {
        "title": "楼道堆物纠纷",
        "kind": "neighbour",
        "parties": [{"name": "测试甲"}],
        "client_id": "phone-7f3a",
    }
    first = await anon.post(f"/api/v1/grids/{g}/disputes", json=body, headers=h)
    assert first.status_code == 201, first.text
    again = await anon.post(f"/api/v1/grids/{g}/disputes", json=body, headers=h)
    assert again.status_code == 200, again.text
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    pr = await anon.post(
        "/api/v1/patrols",
        json={"grid_id": g, "started_at": "2026-11-30T09:00:00+08:00"},
        headers=h,
    )
    on_patrol = {**body, "client_id": "phone-8b2c"}
    on_patrol.pop("parties")
    on_patrol["parties"] = [{"name": "摊主"}]
    codes = [
        (
            await anon.post(
                f"/api/v1/patrols/{pr.json()['id']}/disputes", json=on_patrol, headers=h
            )
        ).status_code
        for _ in range(2)
    ]
    assert codes == [201, 200]
    n = (
        await conn.execute(
            text("SELECT count(*) FROM disputes WHERE client_id IN ('phone-7f3a', 'phone-8b2c')")
        )
    ).scalar_one()
    assert n == 2
    problem(
        await anon.post(f"/api/v1/grids/{g}/disputes", json={**body, "client_id": ""}, headers=h),
        422,
        "validation_error",
    )


async def test_follow_up_queue_of_a_worker(anon, as_user, conn) -> None:
    h = as_user("worker")
    g = await grid_id(conn)
    d = (
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={
                "title": "噪音",
                "kind": "neighbour",
                "risk": "medium",
                "parties": [{"name": "甲"}],
            },
            headers=h,
        )
    ).json()
    await anon.post(f"/api/v1/disputes/{d['id']}/sessions", json=AGREED, headers=h)
    q = (await anon.get("/api/v1/me/dispute-followups", headers=h)).json()["items"]
    mine = [(i["n"], i["overdue"]) for i in q if i["dispute_id"] == d["id"]]
    assert mine == [(1, False), (2, False)]
    other = (await anon.get("/api/v1/me/dispute-followups", headers=as_user("worker2"))).json()
    assert all(i["dispute_id"] != d["id"] for i in other["items"])
    await anon.post(
        f"/api/v1/disputes/{d['id']}/followups", json={"n": 1, "holds": True}, headers=h
    )
    q = (await anon.get("/api/v1/me/dispute-followups", headers=h)).json()["items"]
    assert [i["n"] for i in q if i["dispute_id"] == d["id"]] == [2]
    # a dispute that did not go up is not the centre's (tests/api/test_dispute_followups.py)
    centre = (await anon.get("/api/v1/me/dispute-followups", headers=as_user("centre"))).json()
    assert all(i["dispute_id"] != d["id"] for i in centre["items"])
    problem(
        await anon.get("/api/v1/me/dispute-followups", headers=as_user("dept")), 403, "forbidden"
    )


async def test_retention_forgets_party_names(anon, as_user, conn, session) -> None:
    h = as_user("worker")
    g = await grid_id(conn)
    hh = await household(anon, h, await building_id(conn), room="303")
    gone = await resident(anon, h, hh, name="测试迁走", id_number=id_number(61))
    erased = await resident(anon, h, hh, name="测试删掉", id_number=id_number(62))
    d = (
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={
                "title": "家庭纠纷",
                "kind": "family",
                "parties": [{"resident_id": gone["id"]}, {"resident_id": erased["id"]}],
            },
            headers=h,
        )
    ).json()
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/sessions",
        json={
            "outcome": "agreed",
            "agreement": "测试迁走与测试删掉约定：晚十点后不再装修",
            "signed_by": "测试迁走、测试删掉",
            "note": "测试删掉到场",
        },
        headers=h,
    )
    assert r.status_code in (200, 201), r.text
    await anon.patch(f"/api/v1/residents/{gone['id']}", json={"status": "moved_away"}, headers=h)
    later = datetime.now(UTC) + timedelta(days=get_settings().basedata_retention_days + 1)
    assert (await retention.tick(session, later))["reduced_residents"] >= 1
    r = await anon.post(
        f"/api/v1/residents/{erased['id']}/erase",
        json={"reason": "本人书面申请删除"},
        headers=as_user("community"),
    )
    assert r.status_code == 200, r.text
    parties = (
        await conn.execute(
            text("SELECT resident_id, name FROM dispute_parties WHERE dispute_id = :d ORDER BY id"),
            {"d": d["id"]},
        )
    ).all()
    assert [tuple(p) for p in parties] == [
        (gone["id"], service.REMOVED_NAME),
        (None, service.REMOVED_NAME),
    ]
    # Their names are gone from the dispute's free text too (the agreement, its signers, notes).
    texts = (
        await conn.execute(
            text(
                "SELECT d.agreement, s.agreement AS s_agreement, s.signed_by, s.note "
                "FROM disputes d JOIN dispute_sessions s ON s.dispute_id = d.id "
                "AND s.district_id = d.district_id WHERE d.id = :d"
            ),
            {"d": d["id"]},
        )
    ).one()
    blob = " ".join(t or "" for t in texts)
    assert "测试迁走" not in blob and "测试删掉" not in blob, blob
    assert texts.signed_by == f"{service.REMOVED_NAME}、{service.REMOVED_NAME}"
    assert "晚十点后不再装修" in texts.s_agreement


async def test_lookup_shows_the_base_data_size_with_its_source(anon, as_user, conn) -> None:
    h = as_user("worker")
    g = await grid_id(conn)
    hh = await household(anon, h, await building_id(conn), room="304")
    await resident(anon, h, hh, name="测试住户")
    row = (
        await conn.execute(
            text(
                "SELECT derived_households, derived_population, "
                "ST_X(ST_PointOnSurface(b.boundary)) AS lon, ST_Y(ST_PointOnSurface(b.boundary)) AS lat "
                "FROM grids g JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL "
                "WHERE g.id = :g"
            ),
            {"g": g},
        )
    ).one()
    assert row.derived_households and row.derived_population
    r = await anon.get("/api/v1/grids/lookup", params={"lon": row.lon, "lat": row.lat})
    assert r.status_code == 200, r.text
    grid = r.json()["grid"]
    assert grid["id"] == g
    assert (grid["households"], grid["households_source"]) == (row.derived_households, "base_data")
    assert (grid["population"], grid["population_source"]) == (row.derived_population, "base_data")
    # a grid without base data: the typed number
    typed = (
        await conn.execute(
            text(
                "SELECT g.id, g.households, ST_X(ST_PointOnSurface(b.boundary)) AS lon, "
                "ST_Y(ST_PointOnSurface(b.boundary)) AS lat FROM grids g "
                "JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL "
                "WHERE g.derived_households IS NULL AND g.households IS NOT NULL "
                "ORDER BY g.id LIMIT 1"
            )
        )
    ).first()
    if typed is not None:
        r = await anon.get("/api/v1/grids/lookup", params={"lon": typed.lon, "lat": typed.lat})
        got = r.json()["grid"]
        if got["id"] == typed.id:
            assert (got["households"], got["households_source"]) == (typed.households, "typed")


async def test_every_dispute_case_is_of_a_private_class(conn) -> None:
    """Open311, OGC and the tiles show no description, address or place of a private class's
    case to outsiders (app.auth.scope): every category a dispute's case may take is one."""
    codes = sorted({*service.CATEGORY_OF.values(), service.HIGH_RISK_CATEGORY})
    classes = (
        await conn.execute(
            text("SELECT code, class_code FROM categories WHERE code = ANY(:c) ORDER BY code"),
            {"c": codes},
        )
    ).all()
    assert [c.code for c in classes] == codes
    assert all(scope.is_private(c.class_code) for c in classes), classes


async def test_referral_to_a_department_is_the_loops_dispatch(anon, as_user, conn) -> None:
    """协调联动: the dispute's case is dispatched by the loop (routed by its category, MD-01 →
    the political-legal committee, or to the department chosen); the department it goes to sees
    the persons the dispute names (they are the case's persons); a referral meanwhile is on the
    timeline and leaves the case's state to the loop."""
    h = as_user("worker")
    g = await grid_id(conn)
    hh = await household(anon, h, await building_id(conn), room="305")
    p = await resident(anon, h, hh, name="测试占道", id_number=id_number(71))
    # a person outside the caller's grids is no party of theirs (need-to-know): worker2 in its
    # own grid may not name (and so read the name of) a person of the worker's grid
    g2 = (
        await conn.execute(
            text(
                "SELECT pg.grid_id FROM users u JOIN posts po ON po.user_id = u.id "
                "JOIN post_grids pg ON pg.post_id = po.id WHERE u.username = 'worker2' LIMIT 1"
            )
        )
    ).scalar_one()
    assert g2 != g
    bad = problem(
        await anon.post(
            f"/api/v1/grids/{g2}/disputes",
            json={"title": "x", "kind": "other", "parties": [{"resident_id": p["id"]}]},
            headers=as_user("worker2"),
        ),
        422,
        "validation_error",
    )
    assert bad["field"] == "parties[0].resident_id" and "测试占道" not in str(bad)
    d = (
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={
                "title": "邻里占道",
                "kind": "neighbour",
                "parties": [{"resident_id": p["id"]}, {"name": "甲"}],
            },
            headers=h,
        )
    ).json()
    problem(
        await anon.get(f"/api/v1/residents/{p['id']}", headers=as_user("dept")), 404, "not_found"
    )
    routed = (
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={"title": "邻里漏水", "kind": "neighbour", "parties": [{"name": "乙"}]},
            headers=h,
        )
    ).json()
    r = await anon.get(f"/api/v1/cases/{routed['case_id']}", headers=as_user("street"))
    other = Loop(anon, as_user, {"id": routed["case_id"]})
    other.etag = r.headers["etag"]
    c = await other.do("street", "dispatch")
    assert [a["department"]["code"] for a in c["assignments"]] == ["ZFW"]
    await anon.post(
        f"/api/v1/disputes/{d['id']}/sessions", json={"outcome": "continued"}, headers=h
    )
    r = await anon.get(f"/api/v1/cases/{d['case_id']}", headers=as_user("street"))
    assert r.json()["status"] == "handling" and "dispatch" not in r.json()["allowed_actions"]
    # mediation failed: back to registered, for the loop's referral
    await anon.post(f"/api/v1/disputes/{d['id']}/sessions", json={"outcome": "failed"}, headers=h)
    r = await anon.get(f"/api/v1/cases/{d['case_id']}", headers=as_user("street"))
    assert r.status_code == 200 and r.json()["status"] == "registered", r.text
    assert "dispatch" in r.json()["allowed_actions"], r.text
    loop = Loop(anon, as_user, {"id": d["case_id"]})
    loop.etag = r.headers["etag"]
    c = await loop.do(
        "street", "dispatch", {"lead_department_id": await department_id(conn, "CGJ")}
    )
    assert c["status"] == "dispatched"
    assert [a["department"]["code"] for a in c["assignments"]] == ["CGJ"]
    seen = (await anon.get(f"/api/v1/residents/{p['id']}", headers=as_user("dept"))).json()
    assert seen["name"] == "测试占道" and seen["id_number"] != id_number(71)
    problem(
        await anon.post(
            f"/api/v1/disputes/{d['id']}/sessions", json={"outcome": "continued"}, headers=h
        ),
        409,
        "dispute_state",
    )
    meeting = (
        await conn.execute(
            text(
                "INSERT INTO community_meetings (district_id, community_id, title, held_at, period) "
                "SELECT s.parent_id, c.id, '会商研判会', now(), '2026Q4' FROM areas c "
                "JOIN areas s ON s.id = c.parent_id WHERE c.code = '360602001001' RETURNING id"
            )
        )
    ).scalar_one()
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/refer", json={"meeting_id": meeting}, headers=h
    )
    assert r.status_code == 200, r.text
    steps = await _timeline(anon, h, d["case_id"])
    assert steps[-2:] == [("dispatch", "dispatched"), ("dispute_referred", "dispatched")]
