"""The admission list (事务准入): versions with legal basis; a department's task outside the list
waits for the street (approve / refuse with a reason); the figures per department."""

from __future__ import annotations

from tests.api.worktasks_support import COMMUNITY, user_id
from tests.helpers import problem

LIST = {
    "title": "月湖区社区工作事项准入清单",
    "effective_from": "2026-01-01",
    "items": [
        {
            "code": "CG-01",
            "name": "占道经营巡查",
            "legal_basis": "《城市市容和环境卫生管理条例》第十四条",
            "department_codes": ["CGJ"],
            "task_kinds": ["inspection"],
        },
        {"code": "GG-01", "name": "政策宣传", "legal_basis": "区委办〔2025〕12号"},
    ],
}


def task(worker: int, **kw):
    return {
        "kind": "inspection",
        "title": "统计辖区商户台账",
        "worker_id": worker,
        "due_value": 3,
        "due_unit": "days",
        **kw,
    }


async def test_versions_outside_list_and_figures(anon, as_user, conn, demo) -> None:
    area = demo[COMMUNITY]
    url = f"/api/v1/areas/{area}/admission-list"
    r = await anon.post(url, headers=as_user("centre"), json=LIST)
    assert r.status_code == 201, r.text
    v1 = r.json()
    assert [i["code"] for i in v1["items"]] == ["CG-01", "GG-01"]
    assert v1["items"][0]["legal_basis"].startswith("《城市市容")
    r = await anon.post(url, headers=as_user("centre"), json={**LIST, "title": "第二版"})
    assert r.json()["version"] == v1["version"] + 1
    assert (await anon.get(url, headers=as_user("worker"))).json()["title"] == "第二版"
    old = (await anon.get(url, params={"version": v1["version"]}, headers=as_user("dept"))).json()
    assert old["title"] == LIST["title"]
    versions = (await anon.get(url + "/versions", headers=as_user("street"))).json()
    assert [v["version"] for v in versions][:2] == [v1["version"] + 1, v1["version"]]

    worker = await user_id(conn, "worker")
    # Inside the list: delivered at once.
    r = await anon.post(
        "/api/v1/worker-tasks", headers=as_user("dept"), json=task(worker, matter_code="CG-01")
    )
    assert (r.json()["state"], r.json()["outside_list"]) == ("open", False), r.text
    # Outside (a kind the item does not cover, another department's item, no code): waits.
    waiting = []
    for who, body in (
        ("dept", task(worker, matter_code="CG-01", kind="callback")),
        ("dept2", task(worker, matter_code="CG-01")),
        ("dept", task(worker)),
    ):
        r = await anon.post("/api/v1/worker-tasks", headers=as_user(who), json=body)
        assert r.status_code == 201, r.text
        assert (r.json()["state"], r.json()["outside_list"]) == ("pending_approval", True)
        waiting.append(r.json())
    # Not delivered: not in the worker's queue.
    mine = (await anon.get("/api/v1/me/tasks", headers=as_user("worker"))).json()["items"]
    assert not {t["id"] for t in waiting} & {t["id"] for t in mine}

    # The street decides: refuse needs a reason.
    first, second, third = (t["id"] for t in waiting)
    b = problem(
        await anon.post(f"/api/v1/worker-tasks/{first}/refuse", headers=as_user("street"), json={}),
        422,
        "validation_error",
    )
    assert b["errors"][0]["field"] == "reason"
    r = await anon.post(
        f"/api/v1/worker-tasks/{first}/refuse",
        headers=as_user("street"),
        json={"reason": "不在准入清单内，请部门自行办理"},
    )
    assert (r.json()["state"], r.json()["decision_reason"]) == (
        "refused",
        "不在准入清单内，请部门自行办理",
    )
    r = await anon.post(
        f"/api/v1/worker-tasks/{second}/approve", headers=as_user("street"), json={}
    )
    assert r.json()["state"] == "open" and r.json()["due_at"], r.text
    problem(
        await anon.post(
            f"/api/v1/worker-tasks/{second}/approve", headers=as_user("street"), json={}
        ),
        409,
        "task_state",
    )
    problem(
        await anon.post(f"/api/v1/worker-tasks/{third}/approve", headers=as_user("dept"), json={}),
        403,
        "forbidden",
    )
    mine = (await anon.get("/api/v1/me/tasks", headers=as_user("worker"))).json()["items"]
    assert second in {t["id"] for t in mine}

    figures = (await anon.get(url + "/figures", headers=as_user("centre"))).json()
    by = {d["department"]: d for d in figures["departments"]}
    cgj = by["区城市管理局"]
    assert (cgj["pushed"], cgj["inside_list"], cgj["outside_list"]) == (3, 1, 2)
    assert (cgj["refused"], cgj["pending"], cgj["approved"]) == (1, 1, 0)
    assert by["区住房和城乡建设局"]["approved"] == 1
    # A department sees its own row only.
    own = (await anon.get(url + "/figures", headers=as_user("dept"))).json()["departments"]
    assert [d["department"] for d in own] == ["区城市管理局"]


async def test_bad_lists(anon, as_user, demo) -> None:
    url = f"/api/v1/areas/{demo[COMMUNITY]}/admission-list"
    dup = {**LIST, "items": [LIST["items"][1], LIST["items"][1]]}
    b = problem(
        await anon.post(url, headers=as_user("centre"), json=dup), 422, "invalid_admission_list"
    )
    assert b["field"] == "items[1].code"
    bad = {**LIST, "items": [{**LIST["items"][0], "department_codes": ["NOPE"]}]}
    b = problem(
        await anon.post(url, headers=as_user("centre"), json=bad), 422, "invalid_admission_list"
    )
    assert b["field"] == "items[0].department_codes[0]" and "NOPE" in b["detail"]
    b = problem(
        await anon.post(url, headers=as_user("centre"), json={**LIST, "items": []}),
        422,
        "validation_error",
    )
    problem(await anon.post(url, headers=as_user("street"), json=LIST), 403, "forbidden")
    problem(
        await anon.get(url, params={"version": 999}, headers=as_user("street")), 404, "not_found"
    )
