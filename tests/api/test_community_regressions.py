"""Regressions of issue 16 in the community family: the public board's total (9), a project
completed while its task was open (10), empty labels in nested objects (11), phones and future
service days accepted at the boundary (12)."""

from __future__ import annotations

import importlib
import inspect
from datetime import datetime, timedelta
from typing import Annotated, Any

import pytest

from app.schemas import SHANGHAI, ResponseModel
from tests.api.test_community_lists import COMMUNITY, GRID, make_unit
from tests.factories import point_in_grid
from tests.helpers import problem


def labels_in(body: Any, path: str = "$") -> list[tuple[str, Any]]:
    """Every `*_label` value in an answer, nested objects and lists included, with its path."""
    found: list[tuple[str, Any]] = []
    if isinstance(body, dict):
        for k, v in body.items():
            if k.endswith("_label"):
                found.append((f"{path}.{k}", v))
            found += labels_in(v, f"{path}.{k}")
    elif isinstance(body, list):
        for i, v in enumerate(body):
            found += labels_in(v, f"{path}[{i}]")
    return found


def assert_labelled(body: Any, *must: str) -> list[tuple[str, Any]]:
    """Every label in the answer is a non-empty string, and the labels named in `must` are there
    (as path suffixes such as `.need.category_label`)."""
    found = labels_in(body)
    empty = [(p, v) for p, v in found if not isinstance(v, str) or not v]
    assert not empty, empty
    for suffix in must:
        assert any(p.endswith(suffix) for p, _ in found), (suffix, [p for p, _ in found])
    return found


def _today() -> str:
    return datetime.now(SHANGHAI).date().isoformat()


def _tomorrow() -> str:
    return (datetime.now(SHANGHAI).date() + timedelta(days=1)).isoformat()


# --- 9: the public board's total --------------------------------------------------------------


async def test_board_total_counts_every_matter_at_the_step_asked_for(anon, as_user, demo) -> None:
    area = demo[COMMUNITY]
    made = []
    for title in ("回归测试：楼道照明", "回归测试：垃圾分类点"):
        r = await anon.post(f"/api/v1/public/areas/{area}/proposals", json={"title": title})
        assert r.status_code == 202, r.text
        made.append(r.json()["id"])
    r = await anon.post(
        f"/api/v1/areas/{area}/matters/{made[0]}/actions/accept",
        headers=as_user("community"),
        json={},
    )
    assert r.status_code == 200, r.text

    board = f"/api/v1/public/areas/{area}/board"
    r = await anon.get(board, params={"limit": 1})
    assert r.status_code == 200, r.text
    body = r.json()
    steps = {m["step"] for m in (await anon.get(board, params={"limit": 500})).json()["matters"]}
    assert len(steps) >= 2  # matters at several steps: a page's last item must not decide
    assert len(body["matters"]) == 1
    assert body["total"] == sum(body["counts"].values())
    for step in (1, 2):
        r = await anon.get(board, params={"step": step, "limit": 1})
        page = r.json()
        assert page["total"] == len(
            (await anon.get(board, params={"step": step})).json()["matters"]
        )
        assert all(m["step"] == step for m in page["matters"])
    assert (await anon.get(board, params={"step": 1})).json()["total"] >= 1
    assert (await anon.get(board, params={"step": 2})).json()["total"] >= 1


# --- 10: a project is complete only when its tasks are ----------------------------------------


async def _project(anon, as_user, area: int, unit: dict, title: str) -> dict:
    async def post(path: str, body: dict) -> dict:
        r = await anon.post(f"/api/v1/areas/{area}/{path}", headers=as_user("community"), json=body)
        assert r.status_code == 201, r.text
        return r.json()

    need = await post("needs", {"title": title, "category": "elderly", "households": 3})
    res = await post(
        "resources",
        {"unit_id": unit["id"], "kind": "volunteers", "title": title, "valid_from": "2026-01-01"},
    )
    return await post(
        "projects",
        {
            "need_id": need["id"],
            "title": title,
            "lead_unit_id": unit["id"],
            "resource_ids": [res["id"]],
            "tasks": [{"title": f"{title}：上门", "unit_id": unit["id"], "due_days": 2}],
        },
    )


async def test_a_project_with_an_open_task_is_not_complete(anon, as_user, demo, session) -> None:
    from app.loop.scheduler import tick

    area = demo[COMMUNITY]
    unit = await make_unit(anon, as_user, area, "回归测试志愿服务队", kind="social_org")
    project = await _project(anon, as_user, area, unit, "回归测试：助老")
    base = f"/api/v1/areas/{area}/projects/{project['id']}/actions"
    task = project["tasks"][0]
    r = await anon.post(f"{base}/start", headers=as_user("community"), json={})
    assert r.status_code == 200, r.text

    r = await anon.post(
        f"{base}/complete", headers=as_user("community"), json={"evaluation": "qualified"}
    )
    body = problem(r, 409, "state_conflict")
    assert body["open_tasks"] == [task["id"]]
    assert body["state"] == "in_progress" and "complete" in body["allowed_actions"]
    r = await anon.get(f"/api/v1/areas/{area}/projects/{project['id']}", headers=as_user("street"))
    assert (r.json()["status"], r.json()["need"]["status"]) == ("in_progress", "matched")

    r = await anon.post(
        f"/api/v1/areas/{area}/tasks/{task['id']}/actions/done",
        headers=as_user("community"),
        json={},
    )
    assert r.json()["state"] == "done"
    r = await anon.post(
        f"{base}/complete", headers=as_user("community"), json={"evaluation": "qualified"}
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["need"]["status"]) == ("done", "done")

    # A cancelled project's open tasks are cancelled with it: nobody is escalated about them.
    other = await _project(anon, as_user, area, unit, "回归测试：陪诊")
    t2 = other["tasks"][0]
    r = await anon.post(
        f"/api/v1/areas/{area}/projects/{other['id']}/actions/cancel",
        headers=as_user("community"),
        json={"note": "居民已另行解决"},
    )
    assert r.status_code == 200, r.text
    assert [t["state"] for t in r.json()["tasks"]] == ["cancelled"]
    late = datetime.fromisoformat(t2["due_at"]) + timedelta(days=30)
    await tick(session, now=late)
    r = await anon.get(f"/api/v1/areas/{area}/tasks/{t2['id']}", headers=as_user("community"))
    assert (r.json()["state"], r.json()["escalation_level"]) == ("cancelled", 0)


# --- 11: labels everywhere, nested objects included -------------------------------------------


async def test_every_label_of_the_community_answers_is_filled(anon, as_user, demo, conn) -> None:
    area, grid = demo[COMMUNITY], demo[GRID]
    lon, lat = await point_in_grid(conn, GRID)
    unit = await make_unit(anon, as_user, area, "回归测试社区医院", kind="public_institution")
    h = as_user("community")

    r = await anon.post(
        f"/api/v1/areas/{area}/resources",
        headers=h,
        json={
            "unit_id": unit["id"],
            "kind": "skills",
            "title": "回归测试：义诊",
            "categories": ["health"],
            "valid_from": "2026-01-01",
            "location": {"lon": lon, "lat": lat},
        },
    )
    resource = r.json()
    assert_labelled(resource, "$.kind_label")
    r = await anon.post(
        f"/api/v1/grids/{grid}/needs",
        headers=as_user("worker"),
        json={"title": "回归测试：慢病随访", "category": "health", "households": 9},
    )
    assert r.status_code == 201, r.text
    need = r.json()
    assert_labelled(need, "$.category_label", "$.status_label")
    r = await anon.get(f"/api/v1/areas/{area}/needs/{need['id']}/matches", headers=h)
    assert_labelled(r.json(), ".resource.kind_label")
    r = await anon.post(
        f"/api/v1/areas/{area}/projects",
        headers=h,
        json={
            "need_id": need["id"],
            "title": "回归测试：随访项目",
            "lead_unit_id": unit["id"],
            "resource_ids": [resource["id"]],
            "tasks": [{"title": "建档", "unit_id": unit["id"], "due_days": 3}],
        },
    )
    project = r.json()
    assert_labelled(
        project,
        "$.status_label",
        "$.need.category_label",
        "$.need.status_label",
        "].kind_label",
        "].state_label",
    )
    assert project["status_label"] == "待启动"

    r = await anon.post(
        f"/api/v1/areas/{area}/meetings",
        headers=h,
        json={"title": "回归测试联席会议", "held_at": "2026-11-02T09:00:00", "status": "held"},
    )
    meeting = r.json()
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings/{meeting['id']}/resolutions",
        headers=h,
        json={"resolutions": [{"title": "回归测试：整改", "unit_id": unit["id"], "due_days": 5}]},
    )
    assert r.status_code == 201, r.text
    assert_labelled(r.json(), ".resolutions[0].state_label")
    assert r.json()["resolutions"][0]["state_label"] == "办理中"

    r = await anon.post(
        f"/api/v1/areas/{area}/matters", headers=h, json={"title": "回归测试：加装电梯"}
    )
    matter = r.json()
    act = f"/api/v1/areas/{area}/matters/{matter['id']}/actions"
    await anon.post(f"{act}/accept", headers=h, json={})
    await anon.post(f"{act}/consult", headers=h, json={"mode": "meeting", "quorum": 1})
    await anon.post(
        f"/api/v1/areas/{area}/matters/{matter['id']}/opinions",
        headers=h,
        json={"participant": "3栋201", "vote": "yes"},
    )
    r = await anon.post(
        f"{act}/resolve",
        headers=h,
        json={
            "decision": "申请加装",
            "executors": [{"title": "报批", "unit_id": unit["id"], "due_days": 10}],
        },
    )
    assert r.status_code == 200, r.text
    assert_labelled(r.json(), "$.status_label", "$.step_label", ".tasks[0].state_label")

    # Every list and detail of the family, in Chinese and in English.
    reads = [
        f"/api/v1/areas/{area}/needs",
        f"/api/v1/areas/{area}/needs/{need['id']}",
        f"/api/v1/grids/{grid}/needs",
        f"/api/v1/areas/{area}/resources",
        f"/api/v1/areas/{area}/projects",
        f"/api/v1/areas/{area}/projects/{project['id']}",
        f"/api/v1/areas/{area}/tasks",
        f"/api/v1/areas/{area}/tasks/{project['tasks'][0]['id']}",
        f"/api/v1/areas/{area}/meetings/{meeting['id']}",
        f"/api/v1/areas/{area}/matters",
        f"/api/v1/areas/{area}/matters/{matter['id']}",
        f"/api/v1/public/areas/{area}/board",
    ]
    for url in reads:
        who = as_user("worker") if "/grids/" in url else h
        r = await anon.get(url, headers=who)
        assert r.status_code == 200, (url, r.text)
        zh = assert_labelled(r.json())
        assert zh, url
        r = await anon.get(url, headers={**who, "Accept-Language": "en"})
        en = assert_labelled(r.json())
        assert len(en) == len(zh), url
        assert all(v.isascii() for _, v in en), (url, [v for _, v in en if not v.isascii()][:3])
    r = await anon.get(f"/api/v1/areas/{area}/projects/{project['id']}", headers=h)
    assert r.json()["need"]["category_label"] == "医疗健康"
    r = await anon.get(
        f"/api/v1/areas/{area}/projects/{project['id']}", headers={**h, "Accept-Language": "en"}
    )
    assert r.json()["need"]["category_label"] == "health"


FAMILY = ("community", "lists", "meetings", "deliberation", "volunteers")


def test_every_labelled_response_of_the_family_uses_the_one_mechanism() -> None:
    """A response model with a `*_label` field is a LabelledModel (its labels are filled from its
    codes wherever it is built); the mechanism itself refuses a label without its code."""
    from app.schemas import LabelledModel, Labels

    seen = 0
    for package in FAMILY:
        module = importlib.import_module(f"app.{package}.schemas")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, ResponseModel):
                continue
            labelled = [n for n in cls.model_fields if n.endswith("_label")]
            if labelled:
                seen += 1
                assert issubclass(cls, LabelledModel), (cls, labelled)
                assert set(cls.label_tables) == {n.removesuffix("_label") for n in labelled}
    assert seen >= 6

    with pytest.raises(TypeError):

        class Forgotten(LabelledModel):  # a label nobody fills
            status: str
            status_label: str = ""

    class Kept(LabelledModel):
        status: Annotated[str, Labels({"open": ("办理中", "open")})]
        status_label: str = ""

    assert Kept(status="open").status_label == "办理中"


# --- 12: phones and service days at the boundary ----------------------------------------------


async def test_dual_registration_refuses_bad_phones_and_future_days(anon, as_user, demo) -> None:
    area = demo[COMMUNITY]
    h = as_user("community")
    members = f"/api/v1/areas/{area}/party-members"
    for phone in ("not-a-phone", "12345", "1381234567x"):
        r = await anon.post(
            members, headers=h, json={"name": "回归测试", "work_unit": "某单位", "phone": phone}
        )
        assert problem(r, 422, "validation_error")["field"] == "phone", phone
    r = await anon.post(
        members,
        headers=h,
        json={"name": "回归测试", "work_unit": "某单位", "registered_on": _tomorrow()},
    )
    assert problem(r, 422, "validation_error")["field"] == "registered_on"
    r = await anon.post(
        members,
        headers=h,
        json={"name": "回归测试", "work_unit": "某单位", "phone": "0701-62000001"},
    )
    assert r.status_code == 201, r.text
    member = r.json()

    r = await anon.post(
        f"/api/v1/areas/{area}/units",
        headers=h,
        json={"name": "回归测试单位", "kind": "enterprise", "phone": "not-a-phone"},
    )
    assert problem(r, 422, "validation_error")["field"] == "phone"
    r = await anon.post(
        f"/api/v1/areas/{area}/units",
        headers=h,
        json={"name": "回归测试单位", "kind": "enterprise", "dual_registered_on": _tomorrow()},
    )
    assert problem(r, 422, "validation_error")["field"] == "dual_registered_on"

    services = f"/api/v1/areas/{area}/services"
    service = {"member_id": member["id"], "what": "回归测试：清扫楼道", "hours": "1.5"}
    r = await anon.post(services, headers=h, json={**service, "served_on": _tomorrow()})
    assert problem(r, 422, "validation_error")["field"] == "served_on"
    r = await anon.post(services, headers=h, json={**service, "served_on": _today()})
    assert r.status_code == 201, r.text

    # A claimed task that has not happened yet cannot have its hours recorded.
    start = (datetime.now(SHANGHAI) + timedelta(days=3)).isoformat()
    r = await anon.post(
        f"/api/v1/areas/{area}/volunteer-tasks",
        headers=h,
        json={"title": "回归测试：下周义剪", "starts_at": start, "hours": "2", "slots": 3},
    )
    vt = r.json()
    r = await anon.post(
        f"/api/v1/areas/{area}/volunteer-tasks/{vt['id']}/claims",
        headers=h,
        json={"member_id": member["id"]},
    )
    claim = r.json()
    act = f"{services}/{claim['id']}/actions/record"
    r = await anon.post(act, headers=h, json={"hours": "2"})
    assert problem(r, 422, "validation_error")["field"] == "served_on"
    r = await anon.post(act, headers=h, json={"hours": "2", "served_on": _tomorrow()})
    assert problem(r, 422, "validation_error")["field"] == "served_on"
    r = await anon.post(act, headers=h, json={"hours": "2", "served_on": _today()})
    assert (r.status_code, r.json()["status"]) == (200, "recorded")

    # The grid support list's phones too.
    r = await anon.post(
        "/api/v1/support-measures",
        headers=as_user("dept"),
        json={"title": "回归测试", "content": "x", "phone": "not-a-phone"},
    )
    assert problem(r, 422, "validation_error")["field"] == "phone"
