"""Disputes (矛盾纠纷排查化解): screening with parties from the base data or free, high risk to the
centre at once, mediation sessions with an agreement, referral to a joint review meeting,
follow-up visits, closure only after they hold; the clock's escalation; the figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.disputes import service
from tests.api.basedata_support import building_id, grid_id, household, resident
from tests.helpers import problem

COMMUNITY = "360602001001"


async def _dispute(anon, h, g, **kw):  # type: ignore[no-untyped-def]
    body = {
        "title": "邻里噪音纠纷",
        "kind": "neighbour",
        "parties": [{"name": "测试甲"}, {"name": "测试乙"}],
    }
    r = await anon.post(f"/api/v1/grids/{g}/disputes", json=body | kw, headers=h)
    assert r.status_code == 201, r.text
    return r.json()


async def test_the_loop_to_closure(anon, as_user, conn) -> None:
    h = as_user("worker")
    g = await grid_id(conn)
    hh = await household(anon, h, await building_id(conn))
    p = await resident(anon, h, hh, name="测试当事人")
    d = await _dispute(anon, h, g, parties=[{"resident_id": p["id"]}, {"name": "测试邻居"}])
    assert d["status"] == "screened" and d["escalated_to"] is None
    assert [x["name"] for x in d["parties"]] == ["测试当事人", "测试邻居"]
    problem(
        await anon.post(f"/api/v1/disputes/{d['id']}/close", headers=h), 409, "followup_pending"
    )
    problem(
        await anon.post(
            f"/api/v1/disputes/{d['id']}/sessions", json={"outcome": "agreed"}, headers=h
        ),
        422,
        "agreement_required",
    )
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/sessions",
        json={"outcome": "continued", "note": "首次调解"},
        headers=h,
    )
    assert r.json()["status"] == "mediating"
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/sessions",
        json={
            "outcome": "agreed",
            "agreement": "晚十点后不再装修",
            "signed_by": "测试当事人、测试邻居",
        },
        headers=h,
    )
    d = r.json()
    assert d["status"] == "follow_up" and [f["n"] for f in d["followups"]] == [1]
    # the follow-up does not hold: back to mediation, then agreed again
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/followups", json={"n": 1, "holds": False}, headers=h
    )
    assert r.json()["status"] == "mediating"
    problem(
        await anon.post(f"/api/v1/disputes/{d['id']}/close", headers=h), 409, "followup_pending"
    )
    await anon.post(
        f"/api/v1/disputes/{d['id']}/sessions",
        json={"outcome": "agreed", "agreement": "重新约定", "signed_by": "双方"},
        headers=h,
    )
    await conn.execute(
        text("DELETE FROM dispute_followups WHERE dispute_id = :d AND done_at IS NOT NULL"),
        {"d": d["id"]},
    )
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/followups", json={"n": 1, "holds": True}, headers=h
    )
    assert r.json()["status"] == "follow_up", r.text
    r = await anon.post(f"/api/v1/disputes/{d['id']}/close", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "closed", r.text
    # another dispute of the same person: a repeat party in the figures
    await _dispute(anon, h, g, parties=[{"resident_id": p["id"]}])
    area = (
        await conn.execute(text("SELECT id FROM areas WHERE code = :c"), {"c": COMMUNITY})
    ).scalar_one()
    f = (
        await anon.get(
            "/api/v1/dispute-figures", params={"area_id": area}, headers=as_user("community")
        )
    ).json()
    assert (
        f["screened"] == 2 and f["mediated"] == 1 and f["closed"] == 1 and f["success_rate"] == 1.0
    )
    assert f["repeat_parties"] == 1 and f["repeat_disputes"] == 2
    problem(
        await anon.get(
            "/api/v1/dispute-figures", params={"area_id": area}, headers=as_user("worker2")
        ),
        404,
        "not_found",
    )


async def test_high_risk_to_the_centre_names_masked_for_it(anon, as_user, conn) -> None:
    g = await grid_id(conn)
    d = await _dispute(anon, as_user("worker"), g, risk="high", kind="family")
    assert d["escalated_to"] == "centre" and d["escalated_at"]
    audit = (
        await conn.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'dispute_escalated' AND object_id = :i"
            ),
            {"i": str(d["id"])},
        )
    ).scalar_one()
    assert audit == 1
    centre = (await anon.get(f"/api/v1/disputes/{d['id']}", headers=as_user("centre"))).json()
    assert [x["name"] for x in centre["parties"]] == ["测**", "测**"]
    problem(
        await anon.get(f"/api/v1/disputes/{d['id']}", headers=as_user("worker2")), 404, "not_found"
    )
    problem(
        await anon.post(
            f"/api/v1/disputes/{d['id']}/sessions",
            json={"outcome": "continued"},
            headers=as_user("centre"),
        ),
        403,
        "forbidden",
    )


async def test_overdue_goes_to_the_centre_and_referral(anon, as_user, conn, session) -> None:
    h = as_user("worker")
    g = await grid_id(conn)
    d = await _dispute(anon, h, g, risk="low")
    assert d["due_at"] > d["reported_at"]
    out = await service.tick(session, datetime.now(UTC) + timedelta(days=60))
    assert out["escalated_disputes"] >= 1
    got = (await anon.get(f"/api/v1/disputes/{d['id']}", headers=h)).json()
    assert got["escalated_to"] == "centre"
    meeting = (
        await conn.execute(
            text(
                "INSERT INTO community_meetings (district_id, community_id, title, held_at, period) "
                "SELECT s.parent_id, c.id, '会商研判会', now(), '2026Q4' FROM areas c "
                "JOIN areas s ON s.id = c.parent_id WHERE c.code = :c RETURNING id"
            ),
            {"c": COMMUNITY},
        )
    ).scalar_one()
    problem(
        await anon.post(
            f"/api/v1/disputes/{d['id']}/refer", json={"meeting_id": meeting + 1000}, headers=h
        ),
        422,
        "validation_error",
    )
    r = await anon.post(
        f"/api/v1/disputes/{d['id']}/refer", json={"meeting_id": meeting}, headers=h
    )
    assert (
        r.status_code == 200
        and r.json()["status"] == "referred"
        and r.json()["meeting_id"] == meeting
    )
    problem(
        await anon.post(
            f"/api/v1/grids/{g}/disputes",
            json={"title": "x", "kind": "other", "parties": [{}]},
            headers=h,
        ),
        422,
        "validation_error",
    )
