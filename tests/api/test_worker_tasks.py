"""Tasks for a named person: given to a named worker or the grid's worker on duty, the worker's
queue with its counts, accept / done / decline, escalation by the clock, the verify rule (the
grid's worker on duty checks the case), scope (a worker sees only their own)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.loop.scheduler import tick
from tests.api.worktasks_support import COMMUNITY, GRID, make_worker, slot, user_id
from tests.factories import Loop, report_case
from tests.helpers import problem


def task(**kw):
    return {"kind": "inspection", "title": "检查消防通道", "due_value": 1, "due_unit": "days", **kw}


async def test_give_answer_and_count(anon, as_user, conn, demo) -> None:
    grid = demo[GRID]
    worker = await user_id(conn, "worker")
    r = await anon.post(
        "/api/v1/worker-tasks",
        headers=as_user("street"),
        json=task(worker_id=worker, grid_id=grid, due_value=2, due_unit="hours"),
    )
    assert r.status_code == 201, r.text
    t = r.json()
    assert (t["state"], t["worker_id"], t["issuer_role"], t["grid_id"]) == (
        "open",
        worker,
        "street",
        grid,
    )
    assert t["due_at"] > t["starts_at"]

    mine = (await anon.get("/api/v1/me/tasks", headers=as_user("worker"))).json()
    assert t["id"] in [x["id"] for x in mine["items"]]
    assert mine["counts"]["open"] >= 1

    url = f"/api/v1/me/tasks/{t['id']}"
    r = await anon.post(url + "/accept", headers=as_user("worker"), json={})
    assert r.json()["state"] == "accepted", r.text
    problem(await anon.post(url + "/accept", headers=as_user("worker"), json={}), 409, "task_state")
    r = await anon.post(url + "/done", headers=as_user("worker"), json={"note": "通道已清理"})
    assert (r.json()["state"], r.json()["result"]) == ("done", "通道已清理")
    assert t["id"] not in [
        x["id"]
        for x in (await anon.get("/api/v1/me/tasks", headers=as_user("worker"))).json()["items"]
    ]

    # Declining needs a reason.
    t2 = (
        await anon.post(
            "/api/v1/worker-tasks",
            headers=as_user("community"),
            json=task(worker_id=worker, kind="callback"),
        )
    ).json()
    b = problem(
        await anon.post(f"/api/v1/me/tasks/{t2['id']}/decline", headers=as_user("worker"), json={}),
        422,
        "validation_error",
    )
    assert b["errors"][0]["field"] == "reason"
    r = await anon.post(
        f"/api/v1/me/tasks/{t2['id']}/decline",
        headers=as_user("worker"),
        json={"reason": "当日请假"},
    )
    assert (r.json()["state"], r.json()["reason"]) == ("declined", "当日请假")


async def test_scope_workers_see_only_their_own(anon, as_user, conn, demo) -> None:
    grid = demo[GRID]
    worker = await user_id(conn, "worker")
    other, other_headers = await make_worker(conn, grid, "tasks_colleague")
    t = (
        await anon.post(
            "/api/v1/worker-tasks", headers=as_user("centre"), json=task(worker_id=worker)
        )
    ).json()
    assert t["state"] == "open", t
    # The colleague of the same grid: not in their queue, cannot act on it, cannot list tasks.
    mine = (await anon.get("/api/v1/me/tasks", headers=other_headers)).json()
    assert mine["items"] == [] and mine["counts"] == {"open": 0, "due_today": 0, "overdue": 0}
    problem(
        await anon.post(f"/api/v1/me/tasks/{t['id']}/accept", headers=other_headers, json={}),
        404,
        "not_found",
    )
    problem(await anon.get("/api/v1/worker-tasks", headers=other_headers), 403, "forbidden")
    # The community, the street, the centre read it; another community's worker cannot.
    for who in ("community", "street", "centre", "leader"):
        r = await anon.get(f"/api/v1/worker-tasks/{t['id']}", headers=as_user(who))
        assert r.status_code == 200, (who, r.text)
    problem(
        await anon.post(f"/api/v1/me/tasks/{t['id']}/done", headers=as_user("worker2"), json={}),
        404,
        "not_found",
    )
    # A worker of another community cannot be named; another district's street cannot give.
    b = problem(
        await anon.post(
            "/api/v1/worker-tasks",
            headers=as_user("street"),
            json=task(worker_id=await user_id(conn, "worker2"), grid_id=grid),
        ),
        422,
        "invalid_task",
    )
    assert b["field"] == "worker_id"
    b = problem(
        await anon.post(
            "/api/v1/worker-tasks",
            headers=as_user("street"),
            json=task(kind="verification", worker_id=worker),
        ),
        422,
        "invalid_task",
    )
    assert b["field"] == "case_id"
    problem(
        await anon.post(
            "/api/v1/worker-tasks", headers=as_user("worker"), json=task(worker_id=worker)
        ),
        403,
        "forbidden",
    )
    _ = other


async def test_default_is_the_worker_on_duty(anon, as_user, conn, demo) -> None:
    grid, area = demo[GRID], demo[COMMUNITY]
    now = datetime.now(UTC)
    part, _ = await make_worker(conn, grid, "tasks_on_duty")
    b = problem(
        await anon.post(
            "/api/v1/worker-tasks", headers=as_user("community"), json=task(grid_id=grid)
        ),
        422,
        "no_worker_on_duty",
    )
    assert b["field"] == "worker_id"
    r = await anon.post(
        f"/api/v1/areas/{area}/duty",
        headers=as_user("community"),
        json={"slots": [slot(part, now - timedelta(hours=1), now + timedelta(hours=1), grid=grid)]},
    )
    assert r.status_code == 201, r.text
    r = await anon.post(
        "/api/v1/worker-tasks", headers=as_user("community"), json=task(grid_id=grid)
    )
    assert r.json()["worker_id"] == part, r.text


async def test_overdue_escalates_through_the_clock(anon, as_user, conn, session, demo) -> None:
    from app.config import get_settings

    worker = await user_id(conn, "worker")
    t = (
        await anon.post(
            "/api/v1/worker-tasks",
            headers=as_user("street"),
            json=task(worker_id=worker, due_value=1, due_unit="hours"),
        )
    ).json()
    due = datetime.fromisoformat(t["due_at"])
    hours = get_settings().escalate_to_centre_hours
    await tick(session, now=due - timedelta(minutes=10))
    row = (
        await conn.execute(text("SELECT * FROM worker_tasks WHERE id = :id"), {"id": t["id"]})
    ).one()
    assert row.reminded_at is not None and row.escalation_level == 0
    await tick(session, now=due + timedelta(minutes=1))
    url = f"/api/v1/worker-tasks/{t['id']}"
    body = (await anon.get(url, headers=as_user("street"))).json()
    assert body["escalation_level"] == 1
    await tick(session, now=due + timedelta(minutes=2))
    assert (await anon.get(url, headers=as_user("street"))).json()["escalation_level"] == 1
    await tick(session, now=due + timedelta(hours=hours, minutes=2))
    assert (await anon.get(url, headers=as_user("street"))).json()["escalation_level"] == 2
    types = list(
        (
            await conn.execute(
                text(
                    "SELECT type FROM events WHERE type LIKE 'task.%' "
                    "AND (payload->>'task_id')::bigint = :id ORDER BY id"
                ),
                {"id": t["id"]},
            )
        ).scalars()
    )
    assert types == ["task.created", "task.deadline_soon", "task.overdue", "task.overdue"]
    # The events carry the task's grid: the worker's stream (scope by grid) gets them.
    grids = set(
        (
            await conn.execute(
                text(
                    "SELECT grid_id FROM events WHERE type LIKE 'task.%' "
                    "AND (payload->>'task_id')::bigint = :id"
                ),
                {"id": t["id"]},
            )
        ).scalars()
    )
    assert grids == {t["grid_id"]}
    counts = (await anon.get("/api/v1/me/tasks", headers=as_user("worker"))).json()["counts"]
    assert counts["open"] >= 1


async def test_verification_goes_to_the_worker_on_duty(anon, as_user, conn, session, demo) -> None:
    grid, area = demo[GRID], demo[COMMUNITY]
    on_duty, duty_headers = await make_worker(conn, grid, "tasks_verifier")
    case = await report_case(anon, as_user, conn)
    loop = Loop(anon, as_user, case)
    await loop.do("worker", "on_spot", {"note": "已清理"})
    now = datetime.now(UTC)
    r = await anon.post(
        f"/api/v1/areas/{area}/duty",
        headers=as_user("community"),
        json={
            "slots": [slot(on_duty, now - timedelta(hours=1), now + timedelta(hours=2), grid=grid)]
        },
    )
    assert r.status_code == 201, r.text
    did = await tick(session, now=now)
    assert did["worker_tasks"]["verifications"] >= 1
    mine = (await anon.get("/api/v1/me/tasks", headers=duty_headers)).json()["items"]
    v = [x for x in mine if x["case_id"] == case["id"]]
    assert len(v) == 1 and v[0]["kind"] == "verification" and v[0]["issuer_role"] == "system"

    # The reporter (another worker of the grid) may no longer verify; the one on duty may.
    detail = await loop.get("worker")
    assert "verify" not in detail["allowed_actions"]
    b = await loop.do("worker", "verify", {"passed": True}, status=409)
    assert b["code"] == "action_not_allowed" and "当班" in b["detail"]
    r = await anon.post(
        f"/api/v1/cases/{case['id']}/actions/verify",
        json={"passed": True},
        headers={**duty_headers, "If-Match": loop.etag},
    )
    assert r.status_code == 200, r.text
    # The case moved on: the next tick closes the task as done by its worker.
    await tick(session, now=now + timedelta(minutes=1))
    r = await anon.get(f"/api/v1/worker-tasks/{v[0]['id']}", headers=as_user("community"))
    assert r.json()["state"] == "done", r.text


async def test_task_events_reach_the_workers_stream(anon, as_user, conn, demo) -> None:
    """The stream's replay (the same predicate as its live fan-out) gives the worker the events
    of their task, not a task still waiting for the street; a worker of another grid none."""
    from app.auth.policy import PostScope, Principal
    from app.auth.scope import resolve
    from app.events.hub import replay

    worker = await user_id(conn, "worker")
    grids = list(
        (
            await conn.execute(
                text(
                    "SELECT pg.grid_id FROM post_grids pg JOIN posts p ON p.id = pg.post_id "
                    "WHERE p.user_id = :u"
                ),
                {"u": worker},
            )
        ).scalars()
    )
    after = (await conn.execute(text("SELECT coalesce(max(id), 0) FROM events"))).scalar_one()
    t = (
        await anon.post(
            "/api/v1/worker-tasks",
            headers=as_user("street"),
            json=task(worker_id=worker, grid_id=demo[GRID]),
        )
    ).json()
    waiting = (
        await anon.post(
            "/api/v1/worker-tasks", headers=as_user("dept"), json=task(worker_id=worker)
        )
    ).json()
    assert waiting["state"] == "pending_approval"
    await anon.post(f"/api/v1/me/tasks/{t['id']}/accept", headers=as_user("worker"), json={})

    def principal(uid: int, grid_ids: list[int]) -> Principal:
        post = PostScope(1, "grid_worker", None, None, frozenset(grid_ids))
        return Principal(uid, "w", "w", uuid.uuid4(), [post])

    scope = await resolve(conn, principal(worker, grids))
    events, _ = await replay(conn, scope, after)
    seen = [(e.type, json.loads(e.data)["payload"]["task_id"]) for e in events]
    assert ("task.created", t["id"]) in seen and ("task.accepted", t["id"]) in seen
    assert all(task_id != waiting["id"] for _, task_id in seen)
    # A worker of another grid.
    other = (
        await conn.execute(
            text("SELECT id FROM grids WHERE id <> ALL(:g) ORDER BY id LIMIT 1"), {"g": grids}
        )
    ).scalar_one()
    events, _ = await replay(conn, await resolve(conn, principal(worker + 10_000, [other])), after)
    assert [e for e in events if e.type.startswith("task.")] == []


async def test_bad_tasks(anon, as_user, conn, demo) -> None:
    worker = await user_id(conn, "worker")
    url = "/api/v1/worker-tasks"
    for bad, field in (
        (task(worker_id=worker, due_value=0), "due_value"),
        (task(worker_id=worker, kind="paperwork"), "kind"),
        (task(worker_id=worker, due_unit="weeks"), "due_unit"),
        (task(worker_id=worker, title=""), "title"),
    ):
        b = problem(
            await anon.post(url, headers=as_user("street"), json=bad), 422, "validation_error"
        )
        assert b["errors"][0]["field"] == field, b
    b = problem(
        await anon.post(
            url, headers=as_user("street"), json=task(worker_id=worker, case_id=99_999_999)
        ),
        422,
        "invalid_task",
    )
    assert b["field"] == "case_id" and "99999999" in b["detail"]
    b = problem(
        await anon.post(
            url, headers=as_user("street"), json=task(grid_id=99_999_999, worker_id=worker)
        ),
        422,
        "invalid_task",
    )
    assert b["field"] == "grid_id"
    # A second running verification of the same case.
    case = (
        await conn.execute(
            text("SELECT id FROM cases WHERE grid_id = :g ORDER BY id LIMIT 1"), {"g": demo[GRID]}
        )
    ).scalar()
    if case is not None:
        body = task(worker_id=worker, kind="verification", case_id=case)
        assert (await anon.post(url, headers=as_user("street"), json=body)).status_code == 201
        b = problem(await anon.post(url, headers=as_user("street"), json=body), 409, "conflict")
        assert b["field"] == "case_id"
