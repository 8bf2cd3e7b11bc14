"""Dual registration end to end: a unit reports, its member registers, claims a task, the hours
are recorded and confirmed, the unit's report counts them; and the grid support list."""

from __future__ import annotations

from tests.api.test_community_lists import COMMUNITY, GRID, make_unit
from tests.helpers import problem


async def test_register_claim_record_confirm_report(anon, as_user, demo) -> None:
    area = demo[COMMUNITY]
    unit = await make_unit(
        anon, as_user, area, "测试税务局党支部", kind="government", dual_registered_on="2026-03-01"
    )
    assert unit["dual_registered_on"] == "2026-03-01"

    async def member(name: str, **kw) -> dict:
        r = await anon.post(
            f"/api/v1/areas/{area}/party-members",
            headers=as_user("community"),
            json={"name": name, "work_unit": "区税务局", **kw},
        )
        assert r.status_code == 201, r.text
        return r.json()

    li = await member(
        "李测试",
        unit_id=unit["id"],
        grid_id=demo[GRID],
        skills=["政策宣传", "法律咨询"],
        availability="周末",
        phone="13812345678",
        registered_on="2026-03-01",
    )
    assert li["phone"] == "138****5678"
    wang = await member("王测试", unit_id=unit["id"], registered_on="2026-03-01")
    zhou = await member("周测试", registered_on="2026-03-01")  # their unit did not report here
    r = await anon.post(
        f"/api/v1/areas/{area}/party-members",
        headers=as_user("worker"),
        json={"name": "x", "work_unit": "y"},
    )
    problem(r, 403, "forbidden")

    r = await anon.post(
        f"/api/v1/areas/{area}/volunteer-tasks",
        headers=as_user("community"),
        json={
            "title": "防诈骗宣传进小区",
            "place": "林东花苑广场",
            "skills": ["政策宣传"],
            "starts_at": "2026-11-14T09:00:00+08:00",
            "hours": "2.5",
            "slots": 2,
        },
    )
    assert r.status_code == 201, r.text
    task = r.json()
    claims = f"/api/v1/areas/{area}/volunteer-tasks/{task['id']}/claims"
    c1 = (
        await anon.post(claims, headers=as_user("community"), json={"member_id": li["id"]})
    ).json()
    assert (c1["status"], c1["served_on"], c1["what"]) == (
        "claimed",
        "2026-11-14",
        "防诈骗宣传进小区",
    )
    problem(
        await anon.post(claims, headers=as_user("community"), json={"member_id": li["id"]}),
        409,
        "conflict",
    )
    c2 = (
        await anon.post(claims, headers=as_user("community"), json={"member_id": wang["id"]})
    ).json()
    r = await anon.post(claims, headers=as_user("community"), json={"member_id": zhou["id"]})
    problem(r, 409, "state_conflict")  # two slots, both taken
    # Wang withdraws: a slot frees up.
    act = lambda s, a: f"/api/v1/areas/{area}/services/{s['id']}/actions/{a}"  # noqa: E731
    r = await anon.post(act(c2, "withdraw"), headers=as_user("community"), json={})
    assert r.json()["status"] == "withdrawn"
    c3 = (
        await anon.post(claims, headers=as_user("community"), json={"member_id": zhou["id"]})
    ).json()

    # Confirm before the hours are recorded: not allowed; record, then confirm.
    body = problem(
        await anon.post(act(c1, "confirm"), headers=as_user("community"), json={}),
        409,
        "state_conflict",
    )
    assert body["allowed_actions"] == ["record", "withdraw"]
    r = await anon.post(act(c1, "record"), headers=as_user("community"), json={})
    problem(r, 422, "validation_error")
    r = await anon.post(act(c1, "record"), headers=as_user("community"), json={"hours": "2.5"})
    assert (r.json()["status"], r.json()["hours"]) == ("recorded", "2.5")
    r = await anon.post(act(c1, "confirm"), headers=as_user("community"), json={})
    assert r.json()["status"] == "confirmed" and r.json()["confirmed_at"]
    await anon.post(act(c3, "record"), headers=as_user("community"), json={"hours": "2"})
    r = await anon.post(act(c3, "reject"), headers=as_user("community"), json={"note": "未到岗"})
    assert r.json()["status"] == "rejected"
    # A service outside a task, recorded then confirmed.
    r = await anon.post(
        f"/api/v1/areas/{area}/services",
        headers=as_user("community"),
        json={
            "member_id": li["id"],
            "what": "帮独居老人代购药品",
            "served_on": "2026-11-20",
            "hours": "1.5",
        },
    )
    assert r.status_code == 201, r.text
    await anon.post(act(r.json(), "confirm"), headers=as_user("community"), json={})

    # The unit's report: confirmed service only, in the period.
    r = await anon.get(
        f"/api/v1/areas/{area}/volunteer-report",
        headers=as_user("street"),
        params={"since": "2026-11-01", "until": "2026-11-30", "unit_id": unit["id"]},
    )
    assert r.status_code == 200, r.text
    [rep] = r.json()["units"]
    assert (rep["unit"], rep["members"], rep["members_served"], rep["services"], rep["hours"]) == (
        "测试税务局党支部",
        2,
        1,
        2,
        4.0,
    )
    by = {m["name"]: m for m in rep["by_member"]}
    assert (by["李测试"]["hours"], by["王测试"]["hours"]) == (4.0, 0.0)
    r = await anon.get(
        f"/api/v1/areas/{area}/volunteer-report",
        headers=as_user("community"),
        params={"since": "2026-11-15", "until": "2026-11-30"},
    )
    units = {u["unit"]: u for u in r.json()["units"]}
    assert units["测试税务局党支部"]["hours"] == 1.5  # the 11-14 service is before the period
    assert units["区税务局"]["members"] >= 1  # Zhou, grouped by the work unit they gave


async def test_grid_support_list(anon, as_user, demo) -> None:
    r = await anon.post(
        "/api/v1/support-measures",
        headers=as_user("dept"),
        json={
            "title": "网格上报电动车违规充电 2 小时内响应",
            "content": "城管局安排执法队员到场",
            "category_codes": ["SQ-02"],
            "contact": "执法大队",
        },
    )
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["code"].startswith("CGJ-") and m["department"] == "区城市管理局"
    r = await anon.post(
        "/api/v1/support-measures",
        headers=as_user("dept"),
        json={"title": "x", "content": "y", "category_codes": ["NO-01"]},
    )
    assert problem(r, 422, "validation_error")["field"] == "category_codes"
    # A department cannot publish for another, nor change another's measure.
    dept2 = (await anon.get("/api/v1/departments", headers=as_user("admin"))).json()
    zjj = next(d["id"] for d in dept2 if d["code"] == "ZJJ")
    r = await anon.post(
        "/api/v1/support-measures",
        headers=as_user("dept"),
        json={"title": "x", "content": "y", "department_id": zjj},
    )
    problem(r, 403, "forbidden")
    r = await anon.patch(
        f"/api/v1/support-measures/{m['id']}", headers=as_user("dept2"), json={"active": False}
    )
    problem(r, 404, "not_found")
    r = await anon.post(
        "/api/v1/support-measures", headers=as_user("worker"), json={"title": "x", "content": "y"}
    )
    problem(r, 403, "forbidden")
    # Grid workers browse by category or class.
    for cat in ("SQ-02", "SQ"):
        r = await anon.get(
            "/api/v1/support-measures", headers=as_user("worker"), params={"category": cat}
        )
        assert m["id"] in [x["id"] for x in r.json()], cat
    r = await anon.get(
        "/api/v1/support-measures", headers=as_user("worker"), params={"category": "MD-01"}
    )
    assert m["id"] not in [x["id"] for x in r.json()]
    r = await anon.patch(
        f"/api/v1/support-measures/{m['id']}", headers=as_user("dept"), json={"active": False}
    )
    assert r.json()["active"] is False
    r = await anon.get(
        "/api/v1/support-measures", headers=as_user("worker"), params={"category": "SQ-02"}
    )
    assert m["id"] not in [x["id"] for x in r.json()]
