"""Five-step deliberation end to end: propose (QR form, grid worker) → review (merge, reject,
accept) → consult with a quorum → resolve (tasks) → complete → public evaluation → the board."""

from __future__ import annotations

from sqlalchemy import text

from tests.api.test_community_lists import COMMUNITY, GRID, make_unit
from tests.helpers import problem


async def test_five_steps(anon, as_user, demo) -> None:
    area, grid = demo[COMMUNITY], demo[GRID]
    base = f"/api/v1/areas/{area}/matters"

    # 居民提议: the QR form (anonymous) and a grid worker.
    r = await anon.post(
        f"/api/v1/public/areas/{area}/proposals",
        json={"title": "小区加装停车道闸", "description": "外来车辆占用车位", "proposer": "罗桂兰"},
    )
    assert r.status_code == 202, r.text
    qr = r.json()
    r = await anon.post(
        f"/api/v1/grids/{grid}/proposals",
        headers=as_user("worker2"),
        json={"title": "安装道闸"},
    )
    problem(r, 404, "not_found")
    r = await anon.post(
        f"/api/v1/grids/{grid}/proposals",
        headers=as_user("worker"),
        json={"title": "林东花苑安装车辆道闸", "proposer": "陈高"},
    )
    assert r.status_code == 201, r.text
    dup = r.json()
    assert (dup["channel"], dup["grid_id"], dup["step"]) == ("grid_worker", grid, 1)
    r = await anon.post(
        f"/api/v1/grids/{grid}/proposals", headers=as_user("worker"), json={"title": "建篮球场"}
    )
    other = r.json()

    # 两委审议: merge the duplicate, reject with a reason, accept.
    act = lambda m, a: f"{base}/{m['id']}/actions/{a}"  # noqa: E731
    r = await anon.post(act(other, "reject"), headers=as_user("community"), json={})
    assert problem(r, 422, "validation_error")["field"] == "reason"
    r = await anon.post(
        act(other, "reject"), headers=as_user("community"), json={"reason": "小区无场地"}
    )
    assert (r.json()["status"], r.json()["step"]) == ("rejected", 2)
    r = await anon.post(
        act(dup, "merge"), headers=as_user("community"), json={"merge_into_id": qr["id"]}
    )
    assert (r.json()["status"], r.json()["merged_into_id"]) == ("merged", qr["id"])
    r = await anon.post(act(qr, "accept"), headers=as_user("street"), json={})
    problem(r, 403, "forbidden")
    r = await anon.post(act(qr, "accept"), headers=as_user("community"), json={})
    assert r.json()["allowed_actions"] == ["consult"]

    # 民主商议: a quorum of 3; one vote each.
    r = await anon.post(
        f"{base}/{qr['id']}/opinions",
        headers=as_user("community"),
        json={"participant": "1栋101", "vote": "yes"},
    )
    assert problem(r, 409, "state_conflict")["allowed_actions"] == ["consult"]
    r = await anon.post(
        act(qr, "consult"), headers=as_user("community"), json={"mode": "meeting", "quorum": 3}
    )
    assert (r.json()["status"], r.json()["quorum"]) == ("consulting", 3)
    for who, participant, vote in (("community", "1栋101", "yes"), ("community", "1栋102", "yes")):
        r = await anon.post(
            f"{base}/{qr['id']}/opinions",
            headers=as_user(who),
            json={"participant": participant, "vote": vote, "opinion": "同意"},
        )
        assert r.status_code == 201, r.text
    r = await anon.post(
        f"{base}/{qr['id']}/opinions",
        headers=as_user("community"),
        json={"participant": "1栋101", "vote": "no"},
    )
    problem(r, 409, "conflict")
    r = await anon.post(act(qr, "resolve"), headers=as_user("community"), json={})
    body = problem(r, 409, "quorum_not_met")
    assert (body["tally"]["participants"], body["tally"]["quorum"]) == (2, 3)
    r = await anon.post(
        f"/api/v1/grids/{grid}/matters/{qr['id']}/opinions",
        headers=as_user("worker"),
        json={"participant": "2栋301", "vote": "no", "channel": "online", "opinion": "费用太高"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["tally"] == {
        "participants": 3,
        "yes": 2,
        "no": 1,
        "abstain": 0,
        "quorum": 3,
        "quorum_met": True,
        "passed": True,
    }

    # 协同决议: decision, executors (tasks), money.
    r = await anon.post(act(qr, "resolve"), headers=as_user("community"), json={})
    assert problem(r, 422, "validation_error")["field"] == "decision"
    prop = await make_unit(anon, as_user, area, "测试物业", kind="property")
    r = await anon.post(
        act(qr, "resolve"),
        headers=as_user("community"),
        json={
            "decision": "安装车辆道闸，业主登记车辆通行",
            "executors": [{"title": "采购安装道闸", "unit_id": prop["id"], "due_days": 10}],
            "money": "18000",
            "funding": "公共收益",
        },
    )
    assert r.status_code == 200, r.text
    resolved = r.json()
    assert (resolved["status"], resolved["step"], resolved["money"]) == ("resolved", 4, "18000.00")
    [task] = resolved["tasks"]
    assert (task["source"], task["matter_id"], task["due_days"]) == ("matter", qr["id"], 10)

    # 大众评议: only once the work is done.
    r = await anon.post(
        f"{base}/{qr['id']}/ratings",
        headers=as_user("community"),
        json={"participant": "1栋101", "rating": "satisfied"},
    )
    problem(r, 409, "state_conflict")
    r = await anon.post(act(qr, "complete"), headers=as_user("community"), json={})
    assert problem(r, 409, "state_conflict")["open_tasks"] == 1
    r = await anon.post(
        f"/api/v1/areas/{area}/tasks/{task['id']}/actions/done",
        headers=as_user("community"),
        json={},
    )
    assert r.status_code == 200, r.text
    r = await anon.post(act(qr, "complete"), headers=as_user("community"), json={})
    assert r.json()["status"] == "done"
    r = await anon.post(act(qr, "close"), headers=as_user("community"), json={})
    problem(r, 409, "state_conflict")  # nobody rated yet
    for participant, rating in (("1栋101", "satisfied"), ("1栋102", "basic")):
        r = await anon.post(
            f"{base}/{qr['id']}/ratings",
            headers=as_user("community"),
            json={"participant": participant, "rating": rating},
        )
        assert r.status_code == 201, r.text
    r = await anon.post(
        f"/api/v1/grids/{grid}/matters/{qr['id']}/ratings",
        headers=as_user("worker"),
        json={"participant": "2栋301", "rating": "unsatisfied", "comment": "道闸太吵"},
    )
    assert r.status_code == 201, r.text
    r = await anon.post(act(qr, "close"), headers=as_user("community"), json={})
    final = r.json()
    assert final["status"] == "evaluated"
    assert final["satisfaction"] == {
        "ratings": 3,
        "satisfied": 1,
        "basic": 1,
        "unsatisfied": 1,
        "rate": 0.6667,
    }
    steps = [s["action"] for s in final["timeline"]]
    assert steps[:3] == ["proposed", "absorbed", "accept"]
    assert steps[-1] == "close" and "resolve" in steps and "complete" in steps

    # The public board: where each matter stands, no personal data.
    r = await anon.get(f"/api/v1/public/areas/{area}/board")
    assert r.status_code == 200, r.text
    board = r.json()
    items = {m["id"]: m for m in board["matters"]}
    assert dup["id"] not in items  # merged into the other
    assert (items[qr["id"]]["step"], items[qr["id"]]["step_label"]) == (5, "大众评议")
    assert items[qr["id"]]["satisfaction"]["rate"] == 0.6667
    assert (items[qr["id"]]["tasks"], items[qr["id"]]["tasks_done"]) == (1, 1)
    assert items[other["id"]]["status"] == "rejected"
    assert "罗桂兰" not in r.text and "1栋101" not in r.text and "陈高" not in r.text
    r = await anon.get(f"/api/v1/public/areas/{area}/board", headers={"Accept-Language": "en"})
    en = {m["id"]: m for m in r.json()["matters"]}
    assert (en[qr["id"]]["step_label"], en[qr["id"]]["status_label"]) == (
        "public evaluation",
        "evaluated",
    )
    assert items[qr["id"]]["status_label"] == "已评议"
    r = await anon.get(f"/api/v1/public/areas/{area}/board", params={"step": 5, "limit": 1})
    page = r.json()
    assert {m["step"] for m in page["matters"]} == {5} and len(page["matters"]) == 1
    assert page["total"] == page["counts"].get("done", 0) + page["counts"]["evaluated"]


async def test_voted_down(anon, as_user, demo, conn) -> None:
    area = demo[COMMUNITY]
    base = f"/api/v1/areas/{area}/matters"
    r = await anon.post(base, headers=as_user("community"), json={"title": "楼道加装广告屏"})
    m = r.json()
    assert m["channel"] == "community"
    await anon.post(f"{base}/{m['id']}/actions/accept", headers=as_user("community"), json={})
    await anon.post(
        f"{base}/{m['id']}/actions/consult",
        headers=as_user("community"),
        json={"mode": "online", "quorum": 2, "consult_days": 3},
    )
    for p, v in (("a", "no"), ("b", "abstain")):
        await anon.post(
            f"{base}/{m['id']}/opinions",
            headers=as_user("community"),
            json={"participant": p, "vote": v, "channel": "online"},
        )
    # The window closes: no more opinions, but the consultation can still be resolved.
    await conn.execute(
        text(
            "UPDATE community_matters SET consult_until = now() - interval '1 minute' WHERE id = :m"
        ),
        {"m": m["id"]},
    )
    r = await anon.post(
        f"{base}/{m['id']}/opinions",
        headers=as_user("community"),
        json={"participant": "c", "vote": "yes", "channel": "online"},
    )
    assert problem(r, 409, "state_conflict")["allowed_actions"] == ["resolve"]
    r = await anon.post(f"{base}/{m['id']}/actions/resolve", headers=as_user("community"), json={})
    assert (r.json()["status"], r.json()["reason"], r.json()["tasks"]) == (
        "failed",
        "表决未获通过",
        [],
    )
    assert r.json()["allowed_actions"] == []
