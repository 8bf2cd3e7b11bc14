"""The three lists end to end: units, resources, a need collected in a grid, suggested matches,
a project with tasks, completion, recurring cases turned into a need, an immutable review."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.factories import insert_case, point_in_grid
from tests.helpers import problem

COMMUNITY = "360602001001"  # 立新社区
GRID = "360602001001001"
OTHER = "360602004001"  # 东湖家园社区 (worker2)


async def make_unit(anon, as_user, area: int, name: str, member: bool = True, **kw) -> dict:
    r = await anon.post(
        f"/api/v1/areas/{area}/units",
        headers=as_user("community"),
        json={"name": name, "kind": kw.pop("kind", "enterprise"), "is_member": member, **kw},
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_need_resource_match_project_review(anon, as_user, demo, conn) -> None:
    area, grid = demo[COMMUNITY], demo[GRID]
    lon, lat = await point_in_grid(conn, GRID)
    hospital = await make_unit(
        anon, as_user, area, "测试医院党支部", kind="public_institution", representative="王医生"
    )
    bank = await make_unit(anon, as_user, area, "测试银行支行")

    # A volunteers resource right where the need will be; a money one elsewhere; an expired one.
    async def resource(body: dict) -> dict:
        r = await anon.post(
            f"/api/v1/areas/{area}/resources", headers=as_user("community"), json=body
        )
        assert r.status_code == 201, r.text
        return r.json()

    near = await resource(
        {
            "unit_id": hospital["id"],
            "kind": "volunteers",
            "title": "医护志愿者上门巡诊",
            "capacity": 6,
            "measure": "人",
            "categories": ["elderly", "health"],
            "valid_from": "2026-01-01",
            "valid_until": (date.today() + timedelta(days=730)).isoformat(),  # valid whenever run
            "location": {"lon": lon, "lat": lat},
        }
    )
    money = await resource(
        {
            "unit_id": bank["id"],
            "kind": "money",
            "title": "共建资金",
            "amount": "20000",
            "categories": ["facilities"],
            "valid_from": "2026-01-01",
        }
    )
    expired = await resource(
        {
            "unit_id": hospital["id"],
            "kind": "volunteers",
            "title": "去年的义诊",
            "categories": ["elderly"],
            "valid_from": "2025-01-01",
            "valid_until": "2025-12-31",
        }
    )
    assert expired["valid_now"] is False
    r = await anon.get(
        f"/api/v1/areas/{area}/resources",
        headers={**as_user("community"), "Accept-Language": "en"},
        params={"unit_id": hospital["id"]},
    )
    assert {x["kind_label"] for x in r.json()} == {"volunteers"}
    r = await anon.post(
        f"/api/v1/areas/{area}/resources",
        headers=as_user("community"),
        json={"unit_id": bank["id"], "kind": "money", "title": "x", "valid_from": "2026-01-01"},
    )
    problem(r, 422, "validation_error")  # money needs an amount

    # The grid worker collects a need in their grid; worker2 cannot (not their grid).
    need_body = {
        "title": "独居老人需要定期上门探视",
        "category": "elderly",
        "households": 12,
        "urgency": "high",
        "location": {"lon": lon, "lat": lat},
    }
    r = await anon.post(f"/api/v1/grids/{grid}/needs", headers=as_user("worker2"), json=need_body)
    problem(r, 404, "not_found")
    r = await anon.post(f"/api/v1/grids/{grid}/needs", headers=as_user("worker"), json=need_body)
    assert r.status_code == 201, r.text
    need = r.json()
    assert (need["grid_id"], need["source"], need["status"]) == (grid, "grid_visit", "open")
    assert (need["category_label"], need["status_label"]) == ("养老助老", "待对接")
    assert [s["action"] for s in need["timeline"]] == ["created"]
    # Street staff oversee (read) but do not keep the lists.
    r = await anon.post(f"/api/v1/areas/{area}/needs", headers=as_user("street"), json=need_body)
    problem(r, 403, "forbidden")
    r = await anon.get(
        f"/api/v1/areas/{demo['360602001000']}/needs",
        headers=as_user("street"),
        params={"unmatched": "true"},
    )
    assert need["id"] in [n["id"] for n in r.json()]

    # Suggested matches: the near volunteers fit category (50), kind (20) and distance (30).
    r = await anon.get(
        f"/api/v1/areas/{area}/needs/{need['id']}/matches", headers=as_user("community")
    )
    assert r.status_code == 200, r.text
    got = r.json()
    assert got[0]["resource"]["id"] == near["id"]
    assert (got[0]["score"], got[0]["category_match"], got[0]["kind_fit"]) == (100.0, True, True)
    assert got[0]["distance_m"] == 0.0
    ids = [m["resource"]["id"] for m in got]
    assert expired["id"] not in ids and money["id"] not in ids  # expired; money is no fit

    # The project: the need is matched, the tasks get deadlines in working days.
    r = await anon.post(
        f"/api/v1/areas/{area}/projects",
        headers=as_user("community"),
        json={
            "need_id": need["id"],
            "title": "银龄关爱上门巡诊",
            "lead_unit_id": hospital["id"],
            "unit_ids": [bank["id"]],
            "resource_ids": [near["id"]],
            "due_on": "2026-12-31",
            "tasks": [{"title": "建立独居老人探视台账", "unit_id": hospital["id"], "due_days": 5}],
        },
    )
    assert r.status_code == 201, r.text
    project = r.json()
    assert project["need"]["status"] == "matched"
    assert project["unit_ids"] == sorted([hospital["id"], bank["id"]])
    assert [t["due_days"] for t in project["tasks"]] == [5]
    assert project["tasks"][0]["state"] == "open"
    r = await anon.get(
        f"/api/v1/areas/{area}/needs", headers=as_user("community"), params={"unmatched": "true"}
    )
    assert need["id"] not in [n["id"] for n in r.json()]
    # A matched need cannot become a second project.
    r = await anon.post(
        f"/api/v1/areas/{area}/projects",
        headers=as_user("community"),
        json={
            "need_id": need["id"],
            "title": "重复",
            "lead_unit_id": hospital["id"],
            "resource_ids": [near["id"]],
        },
    )
    problem(r, 409, "state_conflict")

    # The project's state machine.
    base = f"/api/v1/areas/{area}/projects/{project['id']}/actions"
    r = await anon.post(f"{base}/progress", headers=as_user("community"), json={"progress": 50})
    body = problem(r, 409, "state_conflict")
    assert body["allowed_actions"] == ["cancel", "start"]
    r = await anon.post(f"{base}/start", headers=as_user("community"), json={})
    assert r.json()["status"] == "in_progress"
    r = await anon.post(f"{base}/progress", headers=as_user("community"), json={"progress": 60})
    assert r.json()["progress"] == 60
    r = await anon.post(f"{base}/complete", headers=as_user("community"), json={})
    problem(r, 422, "validation_error")
    # Its task is done first: a project with open tasks is not complete.
    r = await anon.post(
        f"/api/v1/areas/{area}/tasks/{project['tasks'][0]['id']}/actions/done",
        headers=as_user("community"),
        json={},
    )
    assert r.status_code == 200, r.text
    r = await anon.post(
        f"{base}/complete",
        headers=as_user("community"),
        json={"evaluation": "excellent", "note": "居民满意"},
    )
    done = r.json()
    assert (done["status"], done["progress"], done["evaluation"]) == ("done", 100, "excellent")
    assert done["need"]["status"] == "done"
    assert [s["action"] for s in done["timeline"]] == ["created", "start", "progress", "complete"]

    # The quarterly review keeps what the lists held, and the snapshot cannot change.
    r = await anon.post(
        f"/api/v1/areas/{area}/list-reviews",
        headers=as_user("community"),
        json={"period": "2026Q3", "note": "三季度评审"},
    )
    assert r.status_code == 201, r.text
    review = r.json()
    snap_needs = {n["id"]: n["status"] for n in review["snapshot"]["needs"]}
    assert snap_needs[need["id"]] == "done"
    assert review["counts"]["needs"] == len(review["snapshot"]["needs"])
    assert expired["id"] not in [x["id"] for x in review["snapshot"]["resources"]]
    r = await anon.post(
        f"/api/v1/areas/{area}/list-reviews",
        headers=as_user("community"),
        json={"period": "2026Q3"},
    )
    problem(r, 409, "period_reviewed")
    await anon.post(
        f"/api/v1/areas/{area}/needs",
        headers=as_user("community"),
        json={"title": "后来的需求", "category": "culture", "households": 3},
    )
    r = await anon.get(
        f"/api/v1/areas/{area}/list-reviews/{review['id']}", headers=as_user("centre")
    )
    assert r.json()["snapshot"] == review["snapshot"]
    with pytest.raises(DBAPIError, match="cannot be changed"):
        async with conn.begin_nested():
            await conn.execute(
                text("UPDATE community_list_reviews SET note = 'x' WHERE id = :id"),
                {"id": review["id"]},
            )
    # Another community's staff cannot see it.
    r = await anon.get(
        f"/api/v1/areas/{demo[OTHER]}/list-reviews/{review['id']}", headers=as_user("admin")
    )
    problem(r, 404, "not_found")


async def test_recurring_cases_become_a_need(anon, as_user, demo, conn) -> None:
    area = demo[COMMUNITY]
    for i in range(1, 5):
        await insert_case(
            conn,
            GRID,
            number=f"T-REC-{i}",
            category="XF-05",
            title="电动车楼道充电",
            location=(117, 28),
            reporter="worker",
        )
    r = await anon.get(
        f"/api/v1/areas/{area}/needs/case-candidates",
        headers=as_user("community"),
        params={"min_cases": 4},
    )
    assert r.status_code == 200, r.text
    cand = {c["case_category"]: c for c in r.json()}
    assert (cand["XF-05"]["cases"], cand["XF-05"]["already_a_need"]) == (4, False)
    r = await anon.post(
        f"/api/v1/areas/{area}/needs/from-cases",
        headers=as_user("community"),
        json={"case_category": "XF-05", "category": "safety", "urgency": "high"},
    )
    assert r.status_code == 201, r.text
    need = r.json()
    assert (need["source"], need["case_category"], need["case_count"]) == ("case", "XF-05", 4)
    assert need["households"] == 4 and "4件" in need["title"]
    r = await anon.get(
        f"/api/v1/areas/{area}/needs/case-candidates",
        headers=as_user("community"),
        params={"min_cases": 4},
    )
    assert {c["case_category"]: c for c in r.json()}["XF-05"]["already_a_need"] is True
    r = await anon.post(
        f"/api/v1/areas/{area}/needs/from-cases",
        headers=as_user("community"),
        json={"case_category": "ZZ-99", "category": "safety"},
    )
    problem(r, 422, "validation_error")
    # Closing a need; closing it again is a state conflict.
    url = f"/api/v1/areas/{area}/needs/{need['id']}/actions/close"
    r = await anon.post(url, headers=as_user("community"), json={"reason": "已由物业解决"})
    assert r.json()["status"] == "closed"
    body = problem(
        await anon.post(url, headers=as_user("community"), json={"reason": "x"}),
        409,
        "state_conflict",
    )
    assert body["allowed_actions"] == []


async def test_lists_need_a_community(anon, as_user, demo) -> None:
    r = await anon.post(
        f"/api/v1/areas/{demo['360602001000']}/needs",
        headers=as_user("admin"),
        json={"title": "x", "category": "other", "households": 1},
    )
    problem(r, 422, "not_a_community")


async def test_units_and_references_are_checked(anon, as_user, demo) -> None:
    area, other = demo[COMMUNITY], demo[OTHER]
    await make_unit(anon, as_user, area, "测试重名单位")
    r = await anon.post(
        f"/api/v1/areas/{area}/units",
        headers=as_user("community"),
        json={"name": "测试重名单位", "kind": "other"},
    )
    problem(r, 409, "conflict")
    r = await anon.post(
        f"/api/v1/areas/{area}/units",
        headers=as_user("community"),
        json={"name": "测试部门", "kind": "government", "department_id": 0},
    )
    assert problem(r, 422, "validation_error")["field"] == "department_id"
    elsewhere = (
        await anon.post(
            f"/api/v1/areas/{other}/units",
            headers=as_user("admin"),
            json={"name": "外社区单位", "kind": "enterprise"},
        )
    ).json()
    r = await anon.post(
        f"/api/v1/areas/{area}/resources",
        headers=as_user("community"),
        json={
            "unit_id": elsewhere["id"],
            "kind": "venue",
            "title": "x",
            "valid_from": "2026-01-01",
        },
    )
    assert problem(r, 422, "validation_error")["field"] == "unit_id"
    # The community's staff cannot touch another community's units.
    r = await anon.patch(
        f"/api/v1/areas/{other}/units/{elsewhere['id']}",
        headers=as_user("community"),
        json={"is_member": True},
    )
    problem(r, 404, "not_found")
    r = await anon.patch(
        f"/api/v1/areas/{other}/units/{elsewhere['id']}",
        headers=as_user("admin"),
        json={"is_member": True, "representative": "张经理"},
    )
    assert (r.json()["is_member"], r.json()["representative"]) == (True, "张经理")
    r = await anon.patch(
        f"/api/v1/areas/{other}/units/{elsewhere['id']}",
        headers=as_user("admin"),
        json={"is_member": None},
    )
    assert problem(r, 422, "validation_error")["field"] == "is_member"
    r = await anon.get(f"/api/v1/areas/{other}/units/{elsewhere['id']}", headers=as_user("admin"))
    assert [s["action"] for s in r.json()["timeline"]] == ["created", "updated"]
    r = await anon.get(
        f"/api/v1/areas/{area}/units/{elsewhere['id']}", headers=as_user("community")
    )
    problem(r, 404, "not_found")
