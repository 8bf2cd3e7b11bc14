"""The closed loop: every path, deadlines, optimistic concurrency, department scope."""

from __future__ import annotations

from sqlalchemy import text

from tests.factories import Loop
from tests.factories import department_id as _dept_id
from tests.factories import report_case as _report
from tests.helpers import problem

GRID = "360602001001001"  # worker's first grid, 立新社区, 江边街道


async def test_whistle_dispatch_sign_in_feedback_verify_close(anon, as_user, conn) -> None:
    case = await _report(anon, as_user, conn)
    loop = Loop(anon, as_user, case)
    problem(await anon.get(f"/api/v1/cases/{loop.id}", headers=as_user("dept")), 404, "not_found")
    c = await loop.do("community", "register")
    assert c["status"] == "registered" and "whistle" in c["allowed_actions"]
    c = await loop.do("community", "whistle", {"reason": "需要城管局协调处理"})
    assert c["status"] == "whistled"
    c = await loop.do("street", "dispatch")
    assert c["status"] == "dispatched"
    [a] = c["assignments"]
    assert a["department"]["code"] == "CGJ" and a["role"] == "lead" and a["state"] == "dispatched"
    assert a["sign_in_due"] > c["updated_at"][:10]
    # the department now sees it, and it is in its queue; dept2 does not
    d = (await anon.get(f"/api/v1/cases/{loop.id}", headers=as_user("dept"))).json()
    assert d["allowed_actions"] == ["sign_in", "return"]
    assert d["resident"] is None
    queue = (
        await anon.get(
            "/api/v1/cases",
            headers=as_user("dept"),
            params={"department_id": a["department"]["id"]},
        )
    ).json()
    assert loop.id in [x["id"] for x in queue["items"]]
    problem(await anon.get(f"/api/v1/cases/{loop.id}", headers=as_user("dept2")), 404, "not_found")
    c = await loop.do("dept", "sign_in")
    assert c["status"] == "handling" and c["assignments"][0]["handle_due"]
    assert c["timeline"][-1]["detail"]["handle_due"]
    c = await loop.do("dept", "feedback", {"note": "已加装排水沟"})
    assert c["status"] == "feedback"
    c = await loop.do("worker", "verify", {"passed": True, "note": "现场已不积水"})
    assert c["status"] == "verified" and c["assignments"][0]["state"] == "done"
    c = await loop.do("worker", "evaluate", {"satisfaction": "satisfied"})
    assert c["status"] == "closed" and c["closed_at"]
    steps = [e["action"] for e in c["timeline"]]
    assert steps == [
        "reported",
        "register",
        "whistle",
        "dispatch",
        "sign_in",
        "feedback",
        "verify",
        "evaluate",
    ]
    actors = {e["action"]: e["actor"]["name"] for e in c["timeline"] if e["actor"]}
    assert actors["sign_in"] == "城管局派单员" and actors["verify"] == "立新社区网格员"
    assert c["timeline"][3]["detail"]["lead_department_id"] == a["department"]["id"]
    assert c["version"] == 8


async def test_on_the_spot(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    c = await loop.do("worker", "on_spot", {"note": "当场清理"})
    assert c["status"] == "feedback" and c["assignments"] == []
    c = await loop.do("leader", "verify", {"passed": True})
    c = await loop.do("worker", "evaluate", {"satisfaction": "basically_satisfied"})
    assert c["status"] == "closed"


async def test_returned_and_rerouted(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    c = await loop.do("dept", "return", {"reason": "不属于本部门职责，应由住建局处理"})
    assert c["status"] == "returned" and c["assignments"][0]["state"] == "returned"
    problem(
        await anon.post(
            f"/api/v1/cases/{loop.id}/actions/sign_in",
            json={},
            headers={**as_user("dept"), "If-Match": loop.etag},
        ),
        409,
        "action_not_allowed",
    )
    zjj = await _dept_id(conn, "ZJJ")
    c = await loop.do("street", "dispatch", {"lead_department_id": zjj})
    states = {a["department"]["code"]: a["state"] for a in c["assignments"]}
    assert states == {"CGJ": "returned", "ZJJ": "dispatched"}
    c = await loop.do("dept2", "sign_in")
    assert c["status"] == "handling"


async def test_rework_twice_then_pass(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("centre", "dispatch")
    await loop.do("dept", "sign_in")
    for n in (1, 2):
        await loop.do("dept", "feedback")
        c = await loop.do("worker", "verify", {"passed": False, "note": "仍然积水"})
        assert c["status"] == "rework" and c["rework_count"] == n
        assert c["assignments"][0]["rework_count"] == n and c["assignments"][0]["state"] == "rework"
    await loop.do("dept", "feedback")
    c = await loop.do("worker", "verify", {"passed": True})
    assert c["status"] == "verified" and c["rework_count"] == 2


async def test_extension_and_suspension(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    c = await loop.do("dept", "sign_in")
    due = c["assignments"][0]["handle_due"]
    await loop.do(
        "dept", "request_extension", {"amount": 2, "unit": "days", "reason": "需采购材料"}
    )
    problem(
        await anon.post(
            f"/api/v1/cases/{loop.id}/actions/request_extension",
            json={"amount": 1, "unit": "days", "reason": "x"},
            headers={**as_user("dept"), "If-Match": loop.etag},
        ),
        409,
        "action_not_allowed",
    )
    c = await loop.do("street", "decide_extension", {"approve": True})
    a = c["assignments"][0]
    assert a["handle_due"] > due and a["extension"]["state"] == "approved"
    c = await loop.do("street", "suspend", {"reason": "需等待汛期结束后施工"})
    assert c["status"] == "suspended" and c["assignments"][0]["state"] == "suspended"
    c = await loop.do("street", "resume")
    assert c["status"] == "handling" and c["assignments"][0]["state"] == "handling"


async def test_joint_handling(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    zjj = await _dept_id(conn, "ZJJ")
    c = await loop.do("street", "dispatch", {"co_department_ids": [zjj]})
    assert [(a["department"]["code"], a["role"]) for a in c["assignments"]] == [
        ("CGJ", "lead"),
        ("ZJJ", "co"),
    ]
    await loop.do("dept", "sign_in")
    c = await loop.do("dept", "feedback")
    assert c["status"] == "handling" and c["timeline"][-1]["detail"]["waiting_for"] == [zjj]
    await loop.do("dept2", "sign_in")
    c = await loop.do("dept2", "feedback")
    assert c["status"] == "feedback"


async def test_reopen_within_the_window(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("worker", "on_spot")
    await loop.do("worker", "verify", {"passed": True})
    await loop.do("worker", "evaluate", {"satisfaction": "dissatisfied"})
    c = await loop.do("community", "reopen", {"reason": "居民反映问题复现"})
    assert c["status"] == "registered" and c["satisfaction"] is None
    assert c["reopen_count"] == 1 and c["closed_at"] is None
    await loop.do("worker", "on_spot")
    await loop.do("worker", "verify", {"passed": True})
    await loop.do("worker", "evaluate", {"satisfaction": "satisfied"})
    await conn.execute(
        text("UPDATE cases SET closed_at = now() - interval '8 days' WHERE id = :id"),
        {"id": loop.id},
    )
    problem(
        await anon.post(
            f"/api/v1/cases/{loop.id}/actions/reopen",
            json={"reason": "x"},
            headers={**as_user("community"), "If-Match": loop.etag},
        ),
        409,
        "action_not_allowed",
    )


async def test_reject_and_preconditions(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    url = f"/api/v1/cases/{loop.id}/actions/reject"
    problem(
        await anon.post(url, json={"reason": "无效"}, headers=as_user("community")),
        428,
        "if_match_required",
    )
    body = problem(
        await anon.post(
            url, json={"reason": "无效"}, headers={**as_user("community"), "If-Match": '"7"'}
        ),
        412,
        "version_mismatch",
    )
    assert body["current_version"] == 1
    problem(
        await anon.post(url, json={}, headers={**as_user("community"), "If-Match": '"1"'}),
        422,
        "validation_error",
    )
    problem(
        await anon.post(
            url, json={"reason": "x"}, headers={**as_user("worker"), "If-Match": '"1"'}
        ),
        403,
        "forbidden",
    )
    c = await loop.do("community", "reject", {"reason": "重复上报且已处理"})
    assert c["status"] == "rejected" and c["allowed_actions"] == []
    body = problem(
        await anon.post(
            f"/api/v1/cases/{loop.id}/actions/dispatch",
            json={},
            headers={**as_user("street"), "If-Match": loop.etag},
        ),
        409,
        "action_not_allowed",
    )
    assert body["allowed_actions"] == [] and body["case_status"] == "rejected"
    # worker2 cannot even see the case to act on it
    problem(
        await anon.post(
            f"/api/v1/cases/{loop.id}/actions/verify",
            json={"passed": True},
            headers={**as_user("worker2"), "If-Match": loop.etag},
        ),
        404,
        "not_found",
    )


async def test_overdue_filter(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    await conn.execute(
        text(
            "UPDATE case_assignments SET sign_in_due = now() - interval '1 hour' "
            "WHERE case_id = :id"
        ),
        {"id": loop.id},
    )
    late = (
        await anon.get("/api/v1/cases", params={"overdue": True}, headers=as_user("street"))
    ).json()
    assert loop.id in [x["id"] for x in late["items"]]
    c = await loop.get("street")
    assert c["assignments"][0]["overdue"] is True and c["assignments"][0]["hours_left"] <= 0
    on_time = (
        await anon.get("/api/v1/cases", params={"overdue": False}, headers=as_user("street"))
    ).json()
    assert loop.id not in [x["id"] for x in on_time["items"]]


async def test_deadlines_across_golden_week(conn) -> None:
    """Golden Week 2025: 1–8 October off, Sunday 28 September and Saturday 11 October worked
    (国办发明电〔2024〕12号)."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from app.loop import deadlines

    sh = ZoneInfo("Asia/Shanghai")
    start = datetime(2025, 9, 30, 16, 0, tzinfo=sh)
    d = await deadlines.due(conn, start, 1, "days")
    assert d.at.astimezone(sh).date().isoformat() == "2025-10-09" and not d.provisional
    # Friday 10 October 16:00 plus 3 working hours lands on the make-up Saturday 11 October.
    d = await deadlines.due(conn, datetime(2025, 10, 10, 16, 0, tzinfo=sh), 3, "hours")
    assert d.at.astimezone(sh).date().isoformat() == "2025-10-11"
    # 2027 has no official schedule yet: weekends only, provisional
    d = await deadlines.due(conn, datetime(2026, 12, 31, 10, 0, tzinfo=sh), 2, "days")
    assert d.provisional


async def test_calendar_years_and_loading_one(anon, client, as_user, conn) -> None:
    from app.loop import deadlines

    built = (await anon.get("/api/v1/calendar/2025", headers=as_user("worker"))).json()
    assert built["source"] == "builtin" and "2025-10-01" in str(built["schedule"]["holidays"])
    none = (await anon.get("/api/v1/calendar/2027", headers=as_user("worker"))).json()
    assert none == {"year": 2027, "source": "none", "provisional": True, "schedule": None}
    # a case dispatched on the last day of 2026: its sign-in deadline falls into 2027
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    await conn.execute(
        text(
            "UPDATE case_assignments SET dispatched_at = '2026-12-31 17:00+08', provisional = true "
            "WHERE case_id = :id"
        ),
        {"id": loop.id},
    )
    problem(
        await anon.put("/api/v1/calendar/2027", json={"year": 2027}, headers=as_user("centre")),
        403,
        "forbidden",
    )
    problem(
        await client.put("/api/v1/calendar/2027", json={"year": 2026, "holidays": []}),
        422,
        "validation_error",
    )
    problem(
        await client.put("/api/v1/calendar/2027", json={"year": 2027, "holidays": ["x"]}),
        422,
        "validation_error",
    )
    # 2027 as an administrator would load it (元旦 Friday 1 January off)
    r = await client.put(
        "/api/v1/calendar/2027",
        json={"year": 2027, "holidays": [{"date": "2027-01-01", "name": "元旦"}], "workdays": []},
    )
    assert r.status_code == 200, r.text
    assert r.json()["recomputed"] >= 1
    a = (await loop.get())["assignments"][0]
    assert a["provisional"] is False
    # 2 working hours from 17:00 on 31 December: 1 January is a holiday → Monday 4 January
    assert a["sign_in_due"].startswith("2027-01-04")
    deadlines.forget()


async def test_scheduler_escalates_once_per_level_and_reminds(anon, as_user, conn, session) -> None:
    from datetime import timedelta

    from app.loop.scheduler import tick

    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    c = await loop.do("street", "dispatch")
    due = (
        await conn.execute(
            text("SELECT sign_in_due FROM case_assignments WHERE case_id = :id"), {"id": loop.id}
        )
    ).scalar_one()
    # 10 minutes before the deadline: a reminder, once
    r = await tick(session, now=due - timedelta(minutes=10))
    assert r["reminded"] >= 1
    assert (await tick(session, now=due - timedelta(minutes=9)))["reminded"] == 0
    # a minute late: escalated to the street (督办), once however often the clock runs
    r = await tick(session, now=due + timedelta(minutes=1))
    assert r["escalated"] >= 1
    assert (await tick(session, now=due + timedelta(minutes=2)))["escalated"] == 0
    # still late 4 hours after: the centre
    assert (await tick(session, now=due + timedelta(hours=5)))["escalated"] >= 1
    assert (await tick(session, now=due + timedelta(hours=6)))["escalated"] == 0
    c = await loop.get("street")
    esc = [e for e in c["timeline"] if e["action"] == "escalated"]
    assert [e["detail"]["escalated_to"] for e in esc] == ["street", "centre"]
    assert esc[0]["note"].startswith("签收超时")
    types = list(
        (
            await conn.execute(
                text("SELECT type FROM events WHERE case_id = :id ORDER BY id"), {"id": loop.id}
            )
        ).scalars()
    )
    assert types == [
        "case.reported",
        "case.dispatch",
        "case.deadline_soon",
        "case.overdue",
        "case.overdue",
    ]
    # signing in starts a new clock with its own escalation
    c = await loop.do("dept", "sign_in")
    level = (
        await conn.execute(
            text("SELECT escalation_level FROM case_assignments WHERE case_id = :id"),
            {"id": loop.id},
        )
    ).scalar()
    assert level == 0


async def test_scheduler_warns_once_about_a_missing_year(anon, as_user, conn, session) -> None:
    from datetime import timedelta

    from app.loop.scheduler import tick

    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    await conn.execute(
        text(
            "UPDATE case_assignments SET provisional = true, sign_in_due = '2027-01-04 10:00+08' "
            "WHERE case_id = :id"
        ),
        {"id": loop.id},
    )
    now = (await conn.execute(text("SELECT now()"))).scalar_one()
    assert (await tick(session, now=now))["missing_years"] == [2027]
    assert (await tick(session, now=now + timedelta(hours=1)))["missing_years"] == []
    msg = (
        await conn.execute(
            text("SELECT payload->>'message' FROM events WHERE type = 'calendar.year_missing'")
        )
    ).scalar()
    assert msg.startswith("2027 年")


async def test_catalogue_edits_apply_to_new_dispatches_only(anon, client, as_user, conn) -> None:
    first = Loop(anon, as_user, await _report(anon, as_user, conn))
    c = await first.do("street", "dispatch")
    cat = c["category"]["code"]
    before = c["assignments"][0]["sign_in_due"]
    new_limits = {
        u: {"sign_in_hours": 6, "handle": 10, "handle_unit": "days"}
        for u in ("normal", "urgent", "critical")
    }
    r = await client.patch(f"/api/v1/categories/{cat}", json={"limits": new_limits})
    assert r.status_code == 200, r.text
    assert r.json()["limits"]["normal"]["sign_in_hours"] == 6
    assert (await first.get())["assignments"][0]["sign_in_due"] == before
    second = Loop(anon, as_user, await _report(anon, as_user, conn, category=cat))
    c2 = await second.do("street", "dispatch")
    assert c2["assignments"][0]["sign_in_due"] > before
    # a routing rule for 江边街道 sends the category to 住建局 instead
    street = (await conn.execute(text("SELECT id FROM areas WHERE code = '360602001000'"))).scalar()
    zjj = await _dept_id(conn, "ZJJ")
    r = await client.post(
        "/api/v1/routing-rules",
        json={"category_code": cat, "street_id": street, "department_id": zjj},
    )
    assert r.status_code == 201, r.text
    third = Loop(anon, as_user, await _report(anon, as_user, conn, category=cat))
    c3 = await third.do("street", "dispatch")
    assert c3["assignments"][0]["department"]["code"] == "ZJJ"
    assert (await client.delete(f"/api/v1/routing-rules/{r.json()['id']}")).status_code == 204
    problem(await client.patch("/api/v1/categories/XX-99", json={"name": "x"}), 404, "not_found")
    problem(
        await client.patch(f"/api/v1/categories/{cat}", json={"lead_department": "NOPE"}),
        422,
        "validation_error",
    )
    problem(
        await anon.patch(
            f"/api/v1/categories/{cat}", json={"name": "x"}, headers=as_user("centre")
        ),
        403,
        "forbidden",
    )
    r = await client.post(
        "/api/v1/categories",
        json={
            "code": "SR-99",
            "class_code": "SR",
            "name": "测试类别",
            "name_en": "Test",
            "lead_department": "CGJ",
            "limits": new_limits,
        },
    )
    assert r.status_code == 201, r.text
    retired = await client.patch("/api/v1/categories/SR-99", json={"active": False})
    assert retired.json()["active"] is False
    codes = [x["code"] for x in (await client.get("/api/v1/categories")).json()]
    assert "SR-99" not in codes


async def test_cli_load_calendar(engine, tmp_path) -> None:
    import asyncio
    import json

    from tests.api.test_import import _cli

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"year": 2031, "holidays": ["2030-01-01"]}))
    r = await asyncio.to_thread(_cli, "load-calendar", str(bad))
    assert r.returncode == 1 and "invalid schedule" in r.stderr
    good = tmp_path / "2031.json"
    good.write_text(
        json.dumps(
            {"year": 2031, "holidays": [{"date": "2031-01-01", "name": "元旦"}], "workdays": []}
        )
    )
    try:
        r = await asyncio.to_thread(_cli, "load-calendar", str(good))
        assert r.returncode == 0 and "2031 loaded" in r.stdout, r.stdout + r.stderr
    finally:
        async with engine.begin() as c:
            await c.execute(text("DELETE FROM work_schedules WHERE year = 2031"))


async def test_a_department_queue_shows_only_its_own(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")  # to CGJ (dept), not ZJJ (dept2)
    cgj, zjj = await _dept_id(conn, "CGJ"), await _dept_id(conn, "ZJJ")
    own = (
        await anon.get("/api/v1/cases", params={"department_id": cgj}, headers=as_user("dept"))
    ).json()
    assert loop.id in [x["id"] for x in own["items"]]
    peek = (
        await anon.get("/api/v1/cases", params={"department_id": cgj}, headers=as_user("dept2"))
    ).json()
    assert loop.id not in [x["id"] for x in peek["items"]]
    mine = (
        await anon.get("/api/v1/cases", params={"department_id": zjj}, headers=as_user("dept2"))
    ).json()
    assert loop.id not in [x["id"] for x in mine["items"]]
