"""Web Push of a meeting's resolutions and of an overdue task, against the local push service
that verifies the VAPID signature and decrypts the payload (`tests/push_endpoint.py`)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.loop.scheduler import tick
from app.push.service import deliver_due
from tests.api.test_community_lists import COMMUNITY, make_unit
from tests.api.worktasks_support import user_id
from tests.push_endpoint import PushService


@pytest.fixture
def push(monkeypatch):
    monkeypatch.setattr(get_settings(), "webhook_allow_private", True)  # the local service
    with PushService() as service:
        yield service


async def _subscribe(anon, as_user, push, name: str, who: str) -> int:  # type: ignore[no-untyped-def]
    r = await anon.post(
        "/api/v1/me/push/subscriptions", headers=as_user(who), json=push.device(name)
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _to(push, device: str) -> list:  # type: ignore[no-untyped-def]
    return [r for r in push.received if r.status == 201 and r.path.endswith(f"/{device}")]


async def _held_meeting(anon, as_user, area: int) -> dict:  # type: ignore[no-untyped-def]
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings",
        headers=as_user("community"),
        json={"title": "联席会议", "held_at": datetime.now(UTC).isoformat(), "status": "held"},
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_a_meeting_resolution_reaches_the_named_people(
    anon, as_user, conn, session, demo, push
) -> None:
    area = demo[COMMUNITY]
    cgj = (await conn.execute(text("SELECT id FROM departments WHERE code = 'CGJ'"))).scalar_one()
    unit = await make_unit(
        anon, as_user, area, "推送城管中队", kind="government", department_id=cgj
    )
    await _subscribe(anon, as_user, push, "staff", "community")
    await _subscribe(anon, as_user, push, "dept", "dept")
    await _subscribe(anon, as_user, push, "other", "dept2")
    meeting = await _held_meeting(anon, as_user, area)
    r = await anon.post(
        f"/api/v1/areas/{area}/meetings/{meeting['id']}/resolutions",
        headers=as_user("community"),
        json={"resolutions": [{"title": "清理占道堆物", "unit_id": unit["id"], "due_days": 2}]},
    )
    assert r.status_code in (200, 201), r.text
    [task] = r.json()["resolutions"]
    # The worker named by a resolution's personal task (kind meeting_resolution) hears of it too.
    worker = await user_id(conn, "worker")
    await _subscribe(anon, as_user, push, "phone", "worker")
    r = await anon.post(
        "/api/v1/worker-tasks",
        headers=as_user("community"),
        json={
            "kind": "meeting_resolution",
            "title": "落实会议决议：清理车棚",
            "worker_id": worker,
            "meeting_id": meeting["id"],
            "due_value": 2,
            "due_unit": "days",
        },
    )
    assert r.status_code == 201, r.text
    wt = r.json()
    did = await deliver_due(session, datetime.now(UTC))
    assert did["sent"] >= 3, did

    for sub in ("staff", "dept"):  # the community's staff and the responsible department's
        [got] = _to(push, sub)
        assert got.message["title"] == "联席会议决议任务"
        assert got.message["body"].startswith("清理占道堆物")
        assert got.message["type"] == "community.task_created"
        assert got.message["tag"] == f"community-task-{task['id']}"
    assert _to(push, "other") == []  # another department is not named
    [got] = _to(push, "phone")
    assert got.message["title"] == "新任务（会议决议）" and got.message["task_id"] == wt["id"]
    assert got.claims["aud"] == push.origin  # the VAPID signature was checked


async def test_an_overdue_task_reaches_the_workers_phone(
    anon, as_user, conn, session, push
) -> None:
    worker = await user_id(conn, "worker")
    await _subscribe(anon, as_user, push, "phone", "worker")
    r = await anon.post(
        "/api/v1/worker-tasks",
        headers=as_user("street"),
        json={
            "kind": "callback",
            "title": "回访独居老人",
            "worker_id": worker,
            "due_value": 1,
            "due_unit": "hours",
        },
    )
    assert r.status_code == 201, r.text
    t = r.json()
    await deliver_due(session, datetime.now(UTC))  # the new task
    due = datetime.fromisoformat(t["due_at"])
    await tick(session, now=due + timedelta(minutes=1))  # the clock escalates it
    did = await deliver_due(session, due + timedelta(minutes=2))
    assert did["sent"] >= 1, did
    titles = [g.message["title"] for g in _to(push, "phone") if g.message["task_id"] == t["id"]]
    assert titles[0] == "新任务（回访）" and "任务已逾期（回访）" in titles
    [over] = [g for g in _to(push, "phone") if g.message["type"] == "task.overdue"]
    assert over.message["urgent"] is True and over.message["url"] == f"/app#task/{t['id']}"
