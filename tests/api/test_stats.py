"""Evaluation (考评): every indicator computed by hand on a small fixed scenario driven through the
real loop (returned and re-routed, reworked, reopened, merged, rejected, overdue, closed across
the National Day holiday), drill-down links that open exactly the cases behind each figure,
scope, ratings and rankings, and the fact tables against a recomputation from scratch."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from app.events.outbox import CHANGED_SQL
from app.worktime.calendar import default_calendar
from tests.factories import Loop
from tests.factories import department_id as _dept_id
from tests.factories import report_case as _report
from tests.helpers import assert_stats_facts_exact, problem

SH = ZoneInfo("Asia/Shanghai")
STREET = "360602001000"  # 江边街道
COMMUNITY = "360602001001"  # 立新社区
SEPT = {"period": "month", "at": "2025-09-15"}


def t(s: str) -> datetime:
    return datetime.fromisoformat(s).replace(tzinfo=SH)


async def _changed(conn, *case_ids: int) -> None:
    """A writer marks the cases it changed (app.events.outbox.changed), as the app's do."""
    await conn.execute(text(CHANGED_SQL), {"ids": list(case_ids)})


async def _set_case(conn, case_id: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    await conn.execute(text(f"UPDATE cases SET {sets} WHERE id = :id"), {**values, "id": case_id})
    await _changed(conn, case_id)


async def _set_assignment(conn, case_id: int, dept: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    await conn.execute(
        text(
            f"UPDATE case_assignments SET {sets} WHERE case_id = :c AND department_id = :d "
            "AND state <> 'withdrawn'"
        ),
        {**values, "c": case_id, "d": dept},
    )
    await _changed(conn, case_id)


async def scenario(anon, as_user, conn) -> dict[str, int]:
    """Six cases in 立新社区 reported 29–30 Sept 2025 (see the module docstring)."""
    cgj, zjj = await _dept_id(conn, "CGJ"), await _dept_id(conn, "ZJJ")
    ids: dict[str, int] = {}

    # A: dispatched to CGJ, signed in and handed in on time, verified, satisfied, closed on 9 Oct.
    a = Loop(anon, as_user, await _report(anon, as_user, conn))
    await a.do("community", "register")
    await a.do("street", "dispatch", {"lead_department_id": cgj, "co_department_ids": []})
    await a.do("dept", "sign_in")
    await a.do("dept", "feedback")
    await a.do("worker", "verify", {"passed": True})
    await a.do("worker", "evaluate", {"satisfaction": "satisfied"})
    ids["A"] = a.id

    # B: CGJ returns it, re-routed to ZJJ, signed in late, rework, handed in late, unreachable.
    b = Loop(anon, as_user, await _report(anon, as_user, conn))
    await b.do("community", "register")
    await b.do("street", "dispatch", {"lead_department_id": cgj, "co_department_ids": []})
    await b.do("dept", "return", {"reason": "不属于本部门职责"})
    await b.do("street", "dispatch", {"lead_department_id": zjj, "co_department_ids": []})
    await b.do("dept2", "sign_in")
    await b.do("dept2", "feedback")
    await b.do("worker", "verify", {"passed": False})
    await b.do("dept2", "feedback")
    await b.do("worker", "verify", {"passed": True})
    await b.do("worker", "evaluate", {"satisfaction": "unreachable"})
    ids["B"] = b.id

    # C: handled on the spot, closed dissatisfied, then reopened.
    c = Loop(anon, as_user, await _report(anon, as_user, conn))
    await c.do("worker", "on_spot")
    await c.do("worker", "verify", {"passed": True})
    await c.do("worker", "evaluate", {"satisfaction": "dissatisfied"})
    await c.do("community", "reopen", {"reason": "居民反映问题复发"})
    ids["C"] = c.id

    # D: a duplicate of A (merged: not counted anywhere).
    d = await _report(anon, as_user, conn)
    r = await anon.post(
        f"/api/v1/cases/{d['id']}/duplicate", headers=as_user("community"), json={"of": a.id}
    )
    assert r.status_code == 200, r.text
    ids["D"] = d["id"]

    # E: rejected.
    e = Loop(anon, as_user, await _report(anon, as_user, conn))
    await e.do("community", "reject", {"reason": "不属于受理范围"})
    ids["E"] = e.id

    # F: dispatched to CGJ, never signed in: overdue now.
    f = Loop(anon, as_user, await _report(anon, as_user, conn))
    await f.do("street", "dispatch", {"lead_department_id": cgj, "co_department_ids": []})
    ids["F"] = f.id

    # The times, fixed (the loop above ran at now()).
    await _set_case(
        conn, ids["A"], reported_at=t("2025-09-29 09:00"), closed_at=t("2025-10-09 10:00")
    )
    await _set_assignment(
        conn,
        ids["A"],
        cgj,
        dispatched_at=t("2025-09-29 09:30"),
        sign_in_due=t("2025-09-29 11:30"),
        signed_in_at=t("2025-09-29 10:00"),
        handle_due=t("2025-10-10 17:30"),
        feedback_at=t("2025-10-09 09:30"),
    )
    await _set_case(
        conn, ids["B"], reported_at=t("2025-09-29 14:00"), closed_at=t("2025-10-11 10:00")
    )
    await _set_assignment(
        conn, ids["B"], cgj, dispatched_at=t("2025-09-29 14:10"), sign_in_due=t("2025-09-29 16:10")
    )
    await _set_assignment(
        conn,
        ids["B"],
        zjj,
        dispatched_at=t("2025-09-30 09:00"),
        sign_in_due=t("2025-09-30 11:00"),
        signed_in_at=t("2025-09-30 15:00"),
        handle_due=t("2025-10-10 12:00"),
        feedback_at=t("2025-10-10 16:00"),
    )
    await _set_case(conn, ids["C"], reported_at=t("2025-09-30 10:00"))
    await _set_case(conn, ids["D"], reported_at=t("2025-09-30 11:00"))
    await _set_case(conn, ids["E"], reported_at=t("2025-09-30 11:30"))
    await _set_case(conn, ids["F"], reported_at=t("2025-09-30 16:00"))
    await _set_assignment(
        conn, ids["F"], cgj, dispatched_at=t("2025-09-30 16:10"), sign_in_due=t("2025-10-09 09:40")
    )
    return ids


CASE_COUNTS = {
    "received": "ABCEF",
    "accepted": "ABCF",
    "rejected": "E",
    "dispatched": "ABF",
    "returned": "B",
    "closed": "AB",
    "resolved": "AB",
    "handed_in": "ABC",
    "reworked": "B",
    "reopened": "C",
    "overdue_now": "F",
    "signed_in": "AB",
    "sign_in_counted": "ABF",
    "signed_in_on_time": "A",
    "handle_counted": "AB",
    "handled_on_time": "A",
    "response_counted": "ABCF",
    "responded": "AC",
    "evaluated": "AC",  # C's 不满意 stays counted after its reopen (issue 16, bug 14)
    "satisfied": "A",
    "unreachable": "B",
}
CGJ_COUNTS = {
    "received": "ABF",
    "accepted": "AF",
    "rejected": "",
    "dispatched": "ABF",
    "returned": "B",
    "closed": "A",
    "resolved": "A",
    "handed_in": "A",
    "reworked": "",
    "reopened": "",
    "overdue_now": "F",
    "signed_in": "A",
    "sign_in_counted": "AF",
    "signed_in_on_time": "A",
    "handle_counted": "A",
    "handled_on_time": "A",
    "response_counted": "AF",
    "responded": "A",
    "evaluated": "A",
    "satisfied": "A",
    "unreachable": "",
}
ZJJ_COUNTS = {
    "received": "B",
    "accepted": "B",
    "dispatched": "B",
    "returned": "",
    "closed": "B",
    "handed_in": "B",
    "reworked": "B",
    "overdue_now": "",
    "sign_in_counted": "B",
    "signed_in_on_time": "",
    "handle_counted": "B",
    "handled_on_time": "",
    "evaluated": "",
    "unreachable": "B",
}


def test_working_hours_across_the_holiday_by_hand() -> None:
    cal = default_calendar()
    assert not cal.is_workday(date(2025, 10, 8)) and cal.is_workday(date(2025, 10, 11))
    # A: 29 Sept 9:00–12:00 + 14:30–17:30, 30 Sept 6.5 h, 1–8 Oct holiday, 9 Oct 8:30–10:00.
    assert cal.working_hours_between(t("2025-09-29 09:00"), t("2025-10-09 10:00")) == 14.0
    # B: 29 Sept 3 h, 30 Sept 6.5, 9 and 10 Oct 6.5 each, Saturday 11 Oct (调休) 1.5.
    assert cal.working_hours_between(t("2025-09-29 14:00"), t("2025-10-11 10:00")) == 24.0


async def test_sql_working_hours_match_the_calendar(conn) -> None:
    cal = default_calendar()
    pairs = [
        ("2025-09-29 09:00", "2025-10-09 10:00"),
        ("2025-09-29 14:00", "2025-10-11 10:00"),
        ("2025-09-27 23:00", "2025-09-28 09:00"),  # a make-up Sunday
        ("2026-02-13 12:30", "2026-02-25 08:00"),  # the Spring Festival
        ("2025-12-31 17:00", "2026-01-05 14:45"),
        ("2024-05-01 00:00", "2024-05-01 23:59"),
        ("2025-03-03 12:10", "2025-03-03 14:40"),  # across lunch
    ]
    for a, b in pairs:
        got = (
            await conn.execute(text("SELECT stats_wh(:a, :b)"), {"a": t(a), "b": t(b)})
        ).scalar_one()
        assert got == pytest.approx(cal.working_hours_between(t(a), t(b)), abs=1e-9), (a, b)


async def _ids(anon, as_user, url: str, who: str = "admin") -> set[int]:
    r = await anon.get(url + "&limit=500", headers=as_user(who))
    assert r.status_code == 200, (url, r.text)
    return {c["id"] for c in r.json()["items"]}


def _expect(letters: str, ids: dict[str, int]) -> set[int]:
    return {ids[x] for x in letters}


async def test_indicators_by_hand(anon, as_user, conn, demo) -> None:
    ids = await scenario(anon, as_user, conn)
    street = demo[STREET]
    r = await anon.get(
        "/api/v1/stats/indicators", params={"unit": "street", **SEPT}, headers=as_user("admin")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["period"]["label"] == "2025-09"
    assert body["period"]["since"] == "2025-09-01T00:00:00+08:00"
    [row] = [x for x in body["items"] if x["unit"]["id"] == street]
    assert row["unit"]["name"] == "江边街道"
    f = row["figures"]
    for m, letters in CASE_COUNTS.items():
        assert f[m]["value"] == len(letters), m
        assert await _ids(anon, as_user, f[m]["cases_url"]) == _expect(letters, ids), m
    rates = {
        "sign_in_on_time_rate": (1, 3),
        "handled_on_time_rate": (1, 2),
        "rework_rate": (1, 3),
        "closure_rate": (2, 4),
        "return_rate": (1, 3),
        "response_rate": (2, 4),
        "resolution_rate": (2, 4),
        "satisfaction_rate": (1, 2),
        "unreachable_share": (1, 3),
    }
    for name, (num, den) in rates.items():
        assert (f[name]["numerator"], f[name]["denominator"]) == (num, den), name
        assert f[name]["value"] == round(num / den, 4), name
    # Working hours: sign-in A 0.5, B 3.5 (ZJJ, the lead after re-routing); close A 14, B 24.
    assert f["sign_in_hours"]["mean"] == 2.0 and f["sign_in_hours"]["p90"] == 3.2
    assert f["sign_in_hours"]["n"] == 2
    assert f["close_hours"]["mean"] == 19.0 and f["close_hours"]["p90"] == 23.0
    households = (
        await conn.execute(
            text(
                "SELECT sum(g.households) FROM grids g JOIN areas c ON c.id = g.community_id "
                "WHERE c.parent_id = :s AND g.deleted_at IS NULL"
            ),
            {"s": street},
        )
    ).scalar_one()
    assert f["per_1000_households"]["households"] == households
    assert f["per_1000_households"]["value"] == round(5 * 1000 / households, 2)
    # Default thresholds: 5 cases rate; score from the weighted rates.
    score = 100 * (20 * 1 / 3 + 30 * 1 / 2 + 10 * (1 - 1 / 3) + 20 * 2 / 4 + 20 * 1 / 2) / 100
    assert row["score"] == round(score, 2) and row["rating"] == "unqualified"
    assert row["rating_label"] == "不合格"

    # The same scenario by community, grid and grid worker: the same numbers.
    for unit, key in (("community", demo[COMMUNITY]), ("grid", demo["360602001001001"])):
        r = await anon.get(
            "/api/v1/stats/indicators",
            params={"unit": unit, "unit_id": key, **SEPT},
            headers=as_user("admin"),
        )
        [only] = r.json()["items"]
        assert only["figures"]["received"]["value"] == 5
        assert only["figures"]["closure_rate"]["value"] == 0.5


async def test_department_indicators_by_hand(anon, as_user, conn) -> None:
    ids = await scenario(anon, as_user, conn)
    cgj, zjj = await _dept_id(conn, "CGJ"), await _dept_id(conn, "ZJJ")
    r = await anon.get(
        "/api/v1/stats/indicators", params={"unit": "department", **SEPT}, headers=as_user("admin")
    )
    rows = {x["unit"]["id"]: x for x in r.json()["items"]}
    assert set(rows) == {cgj, zjj}
    for dept, counts in ((cgj, CGJ_COUNTS), (zjj, ZJJ_COUNTS)):
        f = rows[dept]["figures"]
        for m, letters in counts.items():
            assert f[m]["value"] == len(letters), (dept, m)
            assert f[m]["cases_url"].count("department_id=") == 1
            assert await _ids(anon, as_user, f[m]["cases_url"]) == _expect(letters, ids), (dept, m)
    c = rows[cgj]["figures"]
    assert c["sign_in_hours"]["mean"] == 0.5 and c["handle_hours"]["mean"] == 12.5
    assert c["close_hours"]["mean"] == 13.5
    assert c["sign_in_on_time_rate"]["value"] == 0.5  # A on time, F overdue and not signed in
    z = rows[zjj]["figures"]
    assert z["sign_in_hours"]["mean"] == 3.5 and z["handle_hours"]["mean"] == 14.0
    assert z["close_hours"]["mean"] == 20.5 and z["rework_rate"]["value"] == 1.0
    assert z["satisfaction_rate"]["value"] is None and z["unreachable_share"]["value"] == 1.0
    # The department sees its own figures only, and the same ones.
    r = await anon.get(
        "/api/v1/stats/indicators", params={"unit": "department", **SEPT}, headers=as_user("dept")
    )
    [own] = r.json()["items"]
    assert own["unit"]["id"] == cgj and own["figures"] == rows[cgj]["figures"]
    for m, letters in CGJ_COUNTS.items():
        got = await _ids(anon, as_user, own["figures"][m]["cases_url"], who="dept")
        assert got == _expect(letters, ids), m
    r = await anon.get(
        "/api/v1/stats/indicators", params={"unit": "street", **SEPT}, headers=as_user("dept")
    )
    assert r.json()["items"] == []


async def test_rankings_ratings_and_thresholds(anon, as_user, conn) -> None:
    await scenario(anon, as_user, conn)
    cgj, zjj = await _dept_id(conn, "CGJ"), await _dept_id(conn, "ZJJ")
    problem(
        await anon.put(
            "/api/v1/stats/thresholds", json={"min_cases": 1}, headers=as_user("street")
        ),
        403,
        "forbidden",
    )
    problem(
        await anon.put(
            "/api/v1/stats/thresholds",
            json={"excellent": 50, "qualified": 60},
            headers=as_user("centre"),
        ),
        422,
        "validation_error",
    )
    r = await anon.put("/api/v1/stats/thresholds", json={"min_cases": 1}, headers=as_user("centre"))
    assert r.status_code == 200 and r.json()["min_cases"] == 1 and r.json()["excellent"] == 90
    r = await anon.get(
        "/api/v1/stats/rankings", params={"unit": "department", **SEPT}, headers=as_user("centre")
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["previous_period"]["label"] == "2025-08"
    first, second = body["items"]
    # CGJ: sign-in 1/2 (A on time; F overdue), handling 1/1, rework 0, closure 1/2, satisfied 1/1.
    cgj_score = round((20 * 0.5 + 30 * 1 + 10 * 1 + 20 * 0.5 + 20 * 1) / 100 * 100, 2)
    assert first["unit"]["id"] == cgj and first["rank"] == 1 and first["score"] == cgj_score
    assert first["rating"] == "qualified" and first["previous"] is None
    # ZJJ: sign-in 0, handling 0, rework 1 (→ 0), closure 1, satisfaction none (weight left out).
    assert second["unit"]["id"] == zjj and second["rank"] == 2
    assert second["score"] == round(20 / 80 * 100, 2) and second["rating"] == "unqualified"
    # Next month: nothing new; October's previous is September.
    r = await anon.get(
        "/api/v1/stats/rankings",
        params={"unit": "department", "period": "month", "at": "2025-10-02"},
        headers=as_user("centre"),
    )
    assert r.json()["items"] == []
    # A case in October for CGJ: ranked with the change against September.
    g = Loop(anon, as_user, await _report(anon, as_user, conn))
    await g.do("street", "dispatch", {"lead_department_id": cgj, "co_department_ids": []})
    await g.do("dept", "sign_in")
    await _set_case(conn, g.id, reported_at=t("2025-10-13 09:00"))
    await _set_assignment(
        conn,
        g.id,
        cgj,
        dispatched_at=t("2025-10-13 09:10"),
        sign_in_due=t("2025-10-13 11:10"),
        signed_in_at=t("2025-10-13 09:20"),
        handle_due=t("2025-10-20 17:30"),
    )
    r = await anon.get(
        "/api/v1/stats/rankings",
        params={"unit": "department", "period": "month", "at": "2025-10-20"},
        headers=as_user("centre"),
    )
    # G signed in on time (1/1) but its handling deadline has passed (0/1), not closed (0/1);
    # no hand-in, no evaluation: those weights are left out.
    [only] = r.json()["items"]
    assert only["unit"]["id"] == cgj and only["rank"] == 1 and only["previous"]["rank"] == 1
    score = round(20 / 70 * 100, 2)
    assert only["score"] == score and only["score_change"] == round(score - cgj_score, 2)
    assert only["rank_change"] == 0 and only["rating"] == "unqualified"


async def test_scope(anon, as_user, conn, demo) -> None:
    await scenario(anon, as_user, conn)
    params = {"unit": "community", **SEPT}
    for who, n in (("centre", 1), ("street", 1), ("community", 1), ("worker2", 0), ("dept", 0)):
        r = await anon.get("/api/v1/stats/indicators", params=params, headers=as_user(who))
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == n, who
    # A community does not see its street's row, a worker sees its grid and itself.
    r = await anon.get(
        "/api/v1/stats/indicators", params={"unit": "street", **SEPT}, headers=as_user("community")
    )
    assert r.json()["items"] == []
    r = await anon.get(
        "/api/v1/stats/indicators", params={"unit": "grid", **SEPT}, headers=as_user("worker")
    )
    assert [x["unit"]["code"] for x in r.json()["items"]] == ["360602001001001"]
    r = await anon.get(
        "/api/v1/stats/indicators", params={"unit": "worker", **SEPT}, headers=as_user("worker")
    )
    [me] = r.json()["items"]
    assert me["unit"]["code"] == "worker" and me["figures"]["received"]["value"] == 5
    r = await anon.get(
        "/api/v1/stats/indicators", params={"unit": "worker", **SEPT}, headers=as_user("worker2")
    )
    assert r.json()["items"] == []
    # Someone else's department report: 404; one's own: 200.
    zjj = await _dept_id(conn, "ZJJ")
    problem(
        await anon.get(f"/api/v1/stats/departments/{zjj}/monthly-report", headers=as_user("dept")),
        404,
        "not_found",
    )


async def test_bad_periods(anon, as_user) -> None:
    h = as_user("centre")
    problem(
        await anon.get("/api/v1/stats/indicators", params={"period": "custom"}, headers=h),
        422,
        "validation_error",
    )
    problem(
        await anon.get(
            "/api/v1/stats/indicators",
            params={"period": "custom", "since": "2025-10-01", "until": "2025-09-01"},
            headers=h,
        ),
        422,
        "validation_error",
    )
    problem(
        await anon.get("/api/v1/stats/indicators", params={"period": "decade"}, headers=h),
        422,
        "validation_error",
    )
    problem(
        await anon.get("/api/v1/cases", params={"indicator": "nonsense"}, headers=h),
        422,
        "validation_error",
    )
    for kind, at, label, since, until in (
        (
            "day",
            "2025-10-01",
            "2025-10-01",
            "2025-10-01T00:00:00+08:00",
            "2025-10-02T00:00:00+08:00",
        ),
        (
            "week",
            "2025-10-01",
            "2025-W40",
            "2025-09-29T00:00:00+08:00",
            "2025-10-06T00:00:00+08:00",
        ),
        (
            "quarter",
            "2025-11-30",
            "2025-Q4",
            "2025-10-01T00:00:00+08:00",
            "2026-01-01T00:00:00+08:00",
        ),
        ("year", "2025-06-01", "2025", "2025-01-01T00:00:00+08:00", "2026-01-01T00:00:00+08:00"),
    ):
        r = await anon.get("/api/v1/stats/indicators", params={"period": kind, "at": at}, headers=h)
        assert r.json()["period"] == {"kind": kind, "label": label, "since": since, "until": until}


async def test_hotspots_channels_exports_report(anon, as_user, conn, demo) -> None:
    ids = await scenario(anon, as_user, conn)
    await _set_case(conn, ids["C"], channel="hotline")
    h = as_user("centre")
    r = await anon.get("/api/v1/stats/hotspots", params=SEPT, headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    [g] = body["items"]
    assert g["grid"]["code"] == "360602001001001" and g["total"] == 5 == body["total"]
    [(code, n)] = g["counts"].items()
    [cat] = body["categories"]
    assert n == 5 and cat["code"] == code and cat["count"] == 5
    assert await _ids(anon, as_user, cat["cases_url"]) == _expect("ABCEF", ids)
    assert await _ids(anon, as_user, g["cases_url"]) == _expect("ABCEF", ids)
    cell = g["cases_url"] + f"&category={code}"
    assert await _ids(anon, as_user, cell) == _expect("ABCEF", ids)
    r = await anon.get("/api/v1/stats/hotspots", params={**SEPT, "category": "XX-99"}, headers=h)
    assert r.json()["items"] == []
    r = await anon.get("/api/v1/stats/channels", params=SEPT, headers=h)
    items = {i["channel"]: i for i in r.json()["items"]}
    assert items["app"]["count"] == 4 and items["hotline"]["count"] == 1
    assert items["hotline"]["label"] == "热线电话"
    assert await _ids(anon, as_user, items["hotline"]["cases_url"]) == {ids["C"]}

    r = await anon.get(
        "/api/v1/stats/export", params={"table": "indicators", "unit": "street", **SEPT}, headers=h
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = r.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("期间,街道,编码,受理数,立案数") and "按期处置率" in lines[0]
    assert lines[1].startswith("2025-09,江边街道,360602001000,5,4,1,")
    r = await anon.get(
        "/api/v1/stats/export",
        params={"table": "rankings", "format": "xlsx", "unit": "department", **SEPT},
        headers=h,
    )
    assert r.status_code == 200, r.text
    import io

    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(r.content)).active
    rows = list(ws.values)
    assert rows[0][:5] == ("排名", "单位", "编码", "综合得分", "评级")
    assert [x[1] for x in rows[1:]] == ["区城市管理局", "区住房和城乡建设局"]
    for table in ("hotspots", "channels"):
        r = await anon.get(
            "/api/v1/stats/export", params={"table": table, "format": "xlsx", **SEPT}, headers=h
        )
        assert r.status_code == 200

    cgj = await _dept_id(conn, "CGJ")
    r = await anon.get(
        f"/api/v1/stats/departments/{cgj}/monthly-report",
        params={"month": "2025-09"},
        headers=as_user("dept"),
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "区城市管理局 2025年9月考评报告" in r.text and "<svg" in r.text
    assert "按期处置率" in r.text and "100.0%" in r.text
    # Found by schemathesis: a month no calendar holds is the client's 422, not a 500.
    r = await anon.get(
        f"/api/v1/stats/departments/{cgj}/monthly-report",
        params={"month": "0000-01"},
        headers=as_user("dept"),
    )
    assert r.status_code == 422 and r.json()["field"] == "month"


_facts_match_recomputation = assert_stats_facts_exact


async def test_facts_stay_exact_as_cases_change(anon, as_user, conn) -> None:
    from app.auth.policy import load_principal
    from app.stats import maps, periods, service

    ids = await scenario(anon, as_user, conn)
    await _facts_match_recomputation(conn)
    # Changes of every kind: an action, a re-dispatch, times, a merge, a move, a deletion.
    f = Loop(anon, as_user, {"id": ids["F"]})
    f.etag = (await anon.get(f"/api/v1/cases/{ids['F']}", headers=as_user("admin"))).headers["etag"]
    await f.do("dept", "sign_in")
    await _set_case(conn, ids["E"], reported_at=t("2025-08-30 11:30"))
    # Each row's new time as a bind: Citus refuses `timestamptz + interval` (STABLE) on a column
    # in a multi-shard UPDATE.
    moved = (
        await conn.execute(
            text("SELECT id, district_id, case_id, sign_in_due FROM case_assignments")
        )
    ).all()
    for a in moved:
        await conn.execute(
            text(
                "UPDATE case_assignments SET sign_in_due = :due WHERE id = :id AND district_id = :d"
            ),
            {
                "due": None if a.sign_in_due is None else a.sign_in_due + timedelta(days=3),
                "id": a.id,
                "d": a.district_id,
            },
        )
    await _changed(conn, *{r.case_id for r in moved})
    r = await anon.post(
        f"/api/v1/cases/{ids['C']}/duplicate", headers=as_user("community"), json={"of": ids["A"]}
    )
    assert r.status_code == 200, r.text
    await _changed(conn, ids["D"])
    await conn.execute(text("DELETE FROM cases WHERE id = :id"), {"id": ids["D"]})
    await _facts_match_recomputation(conn)
    # And the figures over the facts equal the figures recomputed from the raw tables.
    uid = (await conn.execute(text("SELECT id FROM users WHERE username = 'centre'"))).scalar_one()
    import uuid

    from sqlalchemy.ext.asyncio import AsyncSession

    sid = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO auth_sessions (id, user_id, expires_at) "
            "VALUES (:s, :u, now() + interval '1 hour')"
        ),
        {"s": sid, "u": uid},
    )
    who = await load_principal(
        AsyncSession(bind=conn, join_transaction_mode="create_savepoint"), uid, sid
    )
    year = periods.period_of("year", date(2025, 1, 1))
    week = periods.period_of("week", date(2025, 10, 1))
    cut = periods.resolve(
        "custom", None, t("2025-08-15 00:00"), t("2025-11-10 12:00"), date(2025, 12, 1)
    )
    for p in (year, week, cut):
        for unit in ("street", "grid", "worker", "department"):
            fast = await service.indicator_rows(conn, who, unit, p, "zh")
            slow = await service.indicator_rows(conn, who, unit, p, "zh", raw=True)
            assert fast == slow and fast, (p.label, unit)
    # The monthly rollups equal the facts summed from scratch.
    from app.stats.definitions import MEASURES, static_part

    for roll, facts, dept, keys in (
        ("stats_case_monthly", "stats_case_facts", False, "district_id, street_id, "
         "community_id, grid_id, reporter_id"),
        ("stats_dept_monthly", "stats_dept_facts", True, "department_id, district_id, "
         "street_id, community_id, grid_id, reporter_id"),
    ):  # fmt: skip
        counts = ", ".join(f"count(*) FILTER (WHERE {static_part(m, 'c', dept)})" for m in MEASURES)
        sums = ", ".join(f"sum({m})::bigint" for m in MEASURES)
        scratch = (
            f"SELECT (date_trunc('month', c.reported_at AT TIME ZONE 'Asia/Shanghai'))::date, "
            f"{keys}, {counts} FROM {facts} c GROUP BY 1, {keys}"
        )
        kept = f"SELECT month, {keys}, {sums} FROM {roll} GROUP BY month, {keys} HAVING sum(received) > 0"
        diff = (
            await conn.execute(
                text(
                    f"SELECT count(*) FROM (({scratch} EXCEPT {kept}) UNION ALL ({kept} EXCEPT {scratch})) x"
                )
            )
        ).scalar_one()
        assert diff == 0, roll
        # Compaction merges the deltas into one row per key and changes no sum.
        rows = (await conn.execute(text(f"SELECT count(*) FROM {roll}"))).scalar_one()
        await conn.execute(text(f"SELECT {roll}_compact()"))
        assert (await conn.execute(text(f"SELECT count(*) FROM {roll}"))).scalar_one() < rows
        diff = (
            await conn.execute(
                text(
                    f"SELECT count(*) FROM (({scratch} EXCEPT {kept}) UNION ALL ({kept} EXCEPT {scratch})) x"
                )
            )
        ).scalar_one()
        assert diff == 0, roll
    hot = (
        "SELECT (date_trunc('month', reported_at AT TIME ZONE 'Asia/Shanghai'))::date, grid_id, "
        "category_code, count(*) FROM stats_case_facts GROUP BY 1, 2, 3"
    )
    kept_hot = (
        "SELECT month, grid_id, category_code, sum(received) FROM stats_hotspot_monthly "
        "GROUP BY 1, 2, 3 HAVING sum(received) <> 0"
    )
    for _ in range(2):
        diff = (
            await conn.execute(
                text(
                    f"SELECT count(*) FROM (({hot} EXCEPT {kept_hot}) UNION ALL ({kept_hot} EXCEPT {hot})) x"
                )
            )
        ).scalar_one()
        assert diff == 0
        await conn.execute(text("SELECT stats_hotspot_monthly_compact()"))
    for p in (year, week, cut):
        fast = await maps.hotspots(conn, who, p, "zh")
        assert (
            fast["total"]
            == (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM stats_case_facts WHERE reported_at >= :a AND reported_at < :b AND grid_id IS NOT NULL"
                    ),
                    {"a": p.start, "b": p.end},
                )
            ).scalar_one()
        )
    for unit in ("street", "department"):
        fast = await service.indicator_rows(conn, who, unit, year, "zh")
        slow = await service.indicator_rows(conn, who, unit, year, "zh", raw=True)
        assert fast == slow and fast, unit
    # Rebuilding from scratch changes nothing.
    before = (await conn.execute(text("SELECT count(*) FROM stats_case_facts"))).scalar_one()
    await conn.execute(text("SELECT stats_rebuild()"))
    assert (
        await conn.execute(text("SELECT count(*) FROM stats_case_facts"))
    ).scalar_one() == before
    await _facts_match_recomputation(conn)


async def test_loading_a_year_rewrites_the_sql_calendar(client, conn) -> None:
    r = await client.put(
        "/api/v1/calendar/2031",
        json={
            "year": 2031,
            "holidays": [{"date": "2031-01-01", "name": "元旦"}, "2031-01-02"],
            "workdays": ["2031-01-04"],
        },
    )
    assert r.status_code == 200, r.text
    days = dict(
        (
            await conn.execute(
                text(
                    "SELECT day::text, workday FROM work_calendar "
                    "WHERE day BETWEEN '2031-01-01' AND '2031-01-06' ORDER BY day"
                )
            )
        ).all()
    )
    assert days == {
        "2031-01-01": False,
        "2031-01-02": False,
        "2031-01-03": True,
        "2031-01-04": True,
        "2031-01-05": False,
        "2031-01-06": True,
    }
    got = (
        await conn.execute(
            text("SELECT stats_wh(:a, :b)"),
            {"a": t("2030-12-31 17:00"), "b": t("2031-01-06 09:30")},
        )
    ).scalar_one()
    assert got == 0.5 + 6.5 + 6.5 + 1.0
    # Deleting the loaded year restores plain weekends.
    await conn.execute(text("DELETE FROM work_schedules WHERE year = 2031"))
    got = (
        await conn.execute(
            text("SELECT stats_wh(:a, :b)"),
            {"a": t("2030-12-31 17:00"), "b": t("2031-01-06 09:30")},
        )
    ).scalar_one()
    assert got == 0.5 + 6.5 * 3 + 1.0


async def test_sync_calendar_rebuilds_working_time(conn) -> None:
    from app.stats.worktime import sync_calendar

    before = (
        await conn.execute(
            text(
                "SELECT md5(string_agg(day::text || workday::text || wh_before::text, ',' ORDER BY day)) FROM work_calendar"
            )
        )
    ).scalar_one()
    await conn.execute(text("DELETE FROM work_calendar"))
    await conn.execute(text("DELETE FROM work_hours"))
    assert await sync_calendar(conn) > 11000
    after = (
        await conn.execute(
            text(
                "SELECT md5(string_agg(day::text || workday::text || wh_before::text, ',' ORDER BY day)) FROM work_calendar"
            )
        )
    ).scalar_one()
    assert after == before
    got = (
        await conn.execute(
            text("SELECT stats_wh(:a, :b)"),
            {"a": t("2025-09-29 09:00"), "b": t("2025-10-09 10:00")},
        )
    ).scalar_one()
    assert got == 14.0
