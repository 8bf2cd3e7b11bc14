"""Web Push (RFC 8030 / VAPID) through the outbox, against a local push service that verifies
the VAPID signature and decrypts the aes128gcm payload (`tests/push_endpoint.py`): delivery of a
new task, quiet hours outside duty time, cleanup on 410, retries after a failure, a case sent
back to its reporter; devices are their owner's only; bad subscriptions are problem+json."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.config import get_settings
from app.push.service import deliver_due
from tests.api.worktasks_support import COMMUNITY, slot, user_id
from tests.factories import Loop, report_case
from tests.helpers import problem
from tests.push_endpoint import PushService


@pytest.fixture
def push(monkeypatch):
    monkeypatch.setattr(get_settings(), "webhook_allow_private", True)  # the local service
    with PushService() as service:
        yield service


def task(worker: int, title: str = "回访独居老人") -> dict:
    return {
        "kind": "callback",
        "title": title,
        "worker_id": worker,
        "due_value": 1,
        "due_unit": "days",
    }


async def _subscribe(anon, as_user, push, name: str, who: str = "worker") -> dict:
    r = await anon.post(
        "/api/v1/me/push/subscriptions", headers=as_user(who), json=push.device(name)
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_new_task_reaches_the_phone(anon, as_user, conn, session, push) -> None:
    key = (await anon.get("/api/v1/me/push/key", headers=as_user("worker"))).json()["public_key"]
    sub = await _subscribe(anon, as_user, push, "phone")
    worker = await user_id(conn, "worker")
    t = (
        await anon.post("/api/v1/worker-tasks", headers=as_user("street"), json=task(worker))
    ).json()
    did = await deliver_due(session, datetime.now(UTC))
    assert (did["queued"], did["sent"]) == (1, 1), did
    [got] = push.received
    assert got.status == 201 and got.key == key  # signed by the server's VAPID key
    assert got.claims["aud"] == push.origin
    assert got.message["title"] == "新任务（回访）" and got.message["body"] == "回访独居老人"
    assert got.message["task_id"] == t["id"] and got.message["type"] == "task.created"
    assert int(got.headers["TTL"]) == get_settings().push_ttl_seconds
    # At least once, but once: the next pass sends nothing again.
    assert (await deliver_due(session, datetime.now(UTC)))["sent"] == 0
    row = (
        await conn.execute(
            text("SELECT * FROM push_deliveries WHERE subscription_id = :s"), {"s": sub["id"]}
        )
    ).one()
    assert row.delivered_at is not None and row.attempts == 1 and row.last_status == 201


async def test_quiet_hours_wait_for_the_duty(anon, as_user, conn, session, demo, push) -> None:
    await _subscribe(anon, as_user, push, "quiet")
    worker = await user_id(conn, "worker")
    now = datetime.now(UTC)
    starts = now + timedelta(hours=3)
    r = await anon.post(
        f"/api/v1/areas/{demo[COMMUNITY]}/duty",
        headers=as_user("community"),
        json={"slots": [slot(worker, starts, starts + timedelta(hours=8))]},
    )
    assert r.status_code == 201, r.text
    await anon.post(
        "/api/v1/worker-tasks", headers=as_user("street"), json=task(worker, "夜间派的任务")
    )
    did = await deliver_due(session, now)
    assert (did["queued"], did["sent"]) == (1, 0) and push.received == []
    row = (await conn.execute(text("SELECT deferred_until FROM push_deliveries"))).one()
    assert row.deferred_until == starts
    assert (await deliver_due(session, starts - timedelta(minutes=1)))["sent"] == 0
    assert (await deliver_due(session, starts + timedelta(minutes=1)))["sent"] == 1
    assert push.received[0].message["body"] == "夜间派的任务"


async def test_gone_devices_are_cleaned_and_failures_retried(
    anon, as_user, conn, session, push
) -> None:
    gone = await _subscribe(anon, as_user, push, "gone")
    flaky = await _subscribe(anon, as_user, push, "flaky")
    worker = await user_id(conn, "worker")
    await anon.post("/api/v1/worker-tasks", headers=as_user("street"), json=task(worker))
    now = datetime.now(UTC)
    did = await deliver_due(session, now)
    assert (did["queued"], did["sent"], did["gone"], did["failed"]) == (2, 0, 1, 1), did
    subs = {
        s["id"]: s
        for s in (await anon.get("/api/v1/me/push/subscriptions", headers=as_user("worker"))).json()
    }
    assert subs[gone["id"]]["active"] is False and subs[flaky["id"]]["active"] is True
    # The failed one is retried after its backoff (10 s), the gone one never again.
    assert (await deliver_due(session, now + timedelta(seconds=5)))["sent"] == 0
    did = await deliver_due(session, now + timedelta(seconds=11))
    assert (did["sent"], did["gone"]) == (1, 0)
    assert [r.status for r in push.received] == [410, 500, 201] or sorted(
        r.status for r in push.received
    ) == [201, 410, 500]
    # A new event: nothing for the gone device.
    await anon.post("/api/v1/worker-tasks", headers=as_user("street"), json=task(worker, "第二个"))
    did = await deliver_due(session, now + timedelta(seconds=12))
    assert (did["queued"], did["sent"]) == (1, 1)


async def test_a_case_sent_back_reaches_its_reporter(anon, as_user, conn, session, push) -> None:
    await _subscribe(anon, as_user, push, "reporter")
    case = await report_case(anon, as_user, conn)
    loop = Loop(anon, as_user, case)
    await loop.do("worker", "on_spot", {"note": "已处理"})
    await loop.do("leader", "verify", {"passed": False, "note": "仍有积水"})
    await deliver_due(session, datetime.now(UTC))
    [got] = [r for r in push.received if r.message and r.message.get("case_id") == case["id"]]
    assert got.message["title"] == "事件核查未通过，退回重新处置"


async def test_devices_are_their_owners_and_bad_input(anon, as_user, push) -> None:
    sub = await _subscribe(anon, as_user, push, "mine")
    assert (await anon.get("/api/v1/me/push/subscriptions", headers=as_user("leader"))).json() == []
    problem(
        await anon.delete(f"/api/v1/me/push/subscriptions/{sub['id']}", headers=as_user("leader")),
        404,
        "not_found",
    )
    bad = push.device("bad")
    bad["keys"]["auth"] = "AAAAAAAAAAAAAAAA"  # 12 bytes, not 16
    b = problem(
        await anon.post("/api/v1/me/push/subscriptions", headers=as_user("worker"), json=bad),
        422,
        "invalid_subscription",
    )
    assert b["field"] == "keys.auth"
    b = problem(
        await anon.post(
            "/api/v1/me/push/subscriptions",
            headers=as_user("worker"),
            json={**push.device("x"), "endpoint": "ftp://example.org/push"},
        ),
        422,
        "invalid_subscription",
    )
    assert b["field"] == "endpoint"
    r = await anon.delete(f"/api/v1/me/push/subscriptions/{sub['id']}", headers=as_user("worker"))
    assert r.status_code == 204
