"""Regressions of issue 16 in the loop: extensions (bug 2), escalation to the centre (bug 3), and
`allowed_actions` agreeing with what the actions then do (bug 4). No test depends on today's date:
deadlines are set explicitly and the scheduler runs on a fake clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text

from app.worktime import SHANGHAI, default_calendar
from tests.api.test_loop import GRID, Loop, _dept_id, _report

# --- bug 2: an extension of N working days moves the deadline by N, not N + 1 -------------------


def _sh(y: int, m: int, d: int, hh: int, mm: int) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def test_extension_counts_from_the_deadlines_own_day() -> None:
    cal = default_calendar()
    # Wednesday 2026-12-09 17:30 + 2 working days: Thursday and Friday, due Friday 17:30
    assert cal.extend(_sh(2026, 12, 9, 17, 30), 2, "days").at == _sh(2026, 12, 11, 17, 30)
    # a deadline at the close of Friday + 1 working day: Monday
    assert cal.extend(_sh(2026, 12, 11, 17, 30), 1, "days").at == _sh(2026, 12, 14, 17, 30)
    # mid-morning Wednesday + 1 working day: the close of Thursday
    assert cal.extend(_sh(2026, 12, 9, 10, 0), 1, "days").at == _sh(2026, 12, 10, 17, 30)
    # Wednesday at opening time ends Tuesday's work: + 1 working day is Wednesday's close
    assert cal.extend(_sh(2026, 12, 9, 8, 30), 1, "days").at == _sh(2026, 12, 9, 17, 30)
    # hours are office time after the old deadline
    assert cal.extend(_sh(2026, 12, 9, 17, 30), 2, "hours").at == _sh(2026, 12, 10, 10, 30)


async def test_approved_extension_from_a_1730_deadline(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    await loop.do("dept", "sign_in")
    await loop.do("dept", "request_extension", {"amount": 2, "unit": "days", "reason": "需采购"})
    await conn.execute(
        text("UPDATE case_assignments SET handle_due = :due WHERE case_id = :c"),
        {"due": _sh(2026, 12, 9, 17, 30), "c": loop.id},
    )
    c = await loop.do("street", "decide_extension", {"approve": True})
    [a] = c["assignments"]
    assert datetime.fromisoformat(a["handle_due"]) == _sh(2026, 12, 11, 17, 30)
    assert c["timeline"][-1]["detail"]["handle_due"] == "2026-12-11T17:30:00+08:00"


async def test_extension_in_part_days_is_refused_not_a_500(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    await loop.do("dept", "sign_in")
    r = await loop.do(
        "dept", "request_extension", {"amount": 1.5, "unit": "days", "reason": "x"}, status=422
    )
    assert r["code"] == "validation_error"


# --- bug 3: the centre is told escalate_to_centre_hours after the street, on both clocks ---------


async def _level(conn, case_id: int) -> tuple[int, datetime | None]:
    row = (
        await conn.execute(
            text("SELECT escalation_level, escalated_at FROM case_assignments WHERE case_id = :c"),
            {"c": case_id},
        )
    ).one()
    return row.escalation_level, row.escalated_at


async def test_centre_is_told_hours_after_the_street_on_both_clocks(
    anon, as_user, conn, session
) -> None:
    from app.config import get_settings
    from app.loop.scheduler import tick

    after = timedelta(hours=get_settings().escalate_to_centre_hours)
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("street", "dispatch")
    for clock in ("sign_in_due", "handle_due"):
        if clock == "handle_due":
            await loop.do("dept", "sign_in")
        due = (
            await conn.execute(
                text(f"SELECT {clock} FROM case_assignments WHERE case_id = :c"), {"c": loop.id}
            )
        ).scalar_one()
        # the clock did not run for 3 hours after the deadline: the street is told late
        told = due + timedelta(hours=3)
        await tick(session, now=told)
        assert await _level(conn, loop.id) == (1, told)
        # past the deadline by more than `after`, but not yet `after` since the street was told
        await tick(session, now=due + after + timedelta(minutes=30))
        assert (await _level(conn, loop.id))[0] == 1, clock
        await tick(session, now=told + after + timedelta(minutes=1))
        assert (await _level(conn, loop.id))[0] == 2, clock
    c = await loop.get("street")
    esc = [e["detail"]["escalated_to"] for e in c["timeline"] if e["action"] == "escalated"]
    assert esc == ["street", "centre", "street", "centre"]


# --- bug 4: allowed_actions lists exactly what then succeeds -----------------------------------

USERS = ("admin", "centre", "street", "community", "leader", "worker", "dept", "dept2")
BODIES: dict[str, dict[str, Any]] = {
    "register": {},
    "reject": {"reason": "无效"},
    "whistle": {"reason": "需要部门协调"},
    "dispatch": {},
    "sign_in": {},
    "return": {"reason": "不属于本部门"},
    "request_extension": {"amount": 1, "unit": "days", "reason": "需采购"},
    "decide_extension": {"approve": True},
    "suspend": {"reason": "等待施工期"},
    "resume": {},
    "feedback": {"note": "已处理"},
    "on_spot": {"note": "当场处理"},
    "verify": {"passed": True},
    "evaluate": {"satisfaction": "satisfied"},
    "reopen": {"reason": "居民反映仍未解决"},
}


async def _scenarios(anon, as_user, conn) -> dict[str, Loop]:
    """Cases in every state of the loop, with joint handling (CGJ leads, ZJJ co-handles) so that
    one department's assignment can be in another state than the case."""
    zjj = await _dept_id(conn, "ZJJ")
    joint = {"co_department_ids": [zjj]}
    plans: dict[str, list[tuple[str, str, dict[str, Any]]]] = {
        "reported": [],
        "registered": [("community", "register", {})],
        "whistled": [("community", "whistle", BODIES["whistle"])],
        "rejected": [("community", "reject", BODIES["reject"])],
        "dispatched": [("street", "dispatch", joint)],
        "co_returned_lead_dispatched": [
            ("street", "dispatch", joint),
            ("dept2", "return", BODIES["return"]),
        ],
        "returned": [("street", "dispatch", {}), ("dept", "return", BODIES["return"])],
        "handling_co_dispatched": [("street", "dispatch", joint), ("dept", "sign_in", {})],
        "handling_co_returned": [
            ("street", "dispatch", joint),
            ("dept2", "return", BODIES["return"]),
            ("dept", "sign_in", {}),
        ],
        "handling_extension_pending": [
            ("street", "dispatch", {}),
            ("dept", "sign_in", {}),
            ("dept", "request_extension", BODIES["request_extension"]),
        ],
        "suspended": [
            ("street", "dispatch", {}),
            ("dept", "sign_in", {}),
            ("street", "suspend", BODIES["suspend"]),
        ],
        "feedback": [
            ("street", "dispatch", joint),
            ("dept", "sign_in", {}),
            ("dept2", "sign_in", {}),
            ("dept2", "feedback", {}),
            ("dept", "feedback", {}),
        ],
        "on_spot_feedback": [("worker", "on_spot", BODIES["on_spot"])],
        "rework": [
            ("street", "dispatch", {}),
            ("dept", "sign_in", {}),
            ("dept", "feedback", {}),
            ("worker", "verify", {"passed": False}),
        ],
        "verified": [("worker", "on_spot", {}), ("worker", "verify", {"passed": True})],
        "closed": [
            ("worker", "on_spot", {}),
            ("worker", "verify", {"passed": True}),
            ("worker", "evaluate", {"satisfaction": "dissatisfied"}),
        ],
    }
    out = {}
    for name, steps in plans.items():
        loop = Loop(anon, as_user, await _report(anon, as_user, conn))
        for who, act, body in steps:
            await loop.do(who, act, body)
        out[name] = loop
    return out


async def test_allowed_actions_are_exactly_the_ones_that_run(anon, as_user, conn, session) -> None:
    from app.loop.service import ACTIONS

    assert set(BODIES) == set(ACTIONS)
    cases = await _scenarios(anon, as_user, conn)
    offered_somewhere: set[str] = set()
    for state, loop in cases.items():
        version = (await loop.get())["version"]
        for who in USERS:
            r = await anon.get(f"/api/v1/cases/{loop.id}", headers=as_user(who))
            allowed = set(r.json()["allowed_actions"]) if r.status_code == 200 else set()
            offered_somewhere |= allowed
            for name in ACTIONS:
                # each attempt in its own savepoint: the case stays in `state`
                await session.commit()
                attempt = await conn.begin_nested()
                try:
                    resp = await anon.post(
                        f"/api/v1/cases/{loop.id}/actions/{name}",
                        json=BODIES[name],
                        headers={**as_user(who), "If-Match": f'"{version}"'},
                    )
                finally:
                    await session.rollback()
                    await attempt.rollback()
                where = f"{state}: {who} {name} → {resp.status_code} {resp.text[:200]}"
                if name in allowed:
                    assert resp.status_code == 200, where
                else:
                    assert resp.status_code in (403, 404, 409), where
                    if resp.status_code == 409:
                        assert resp.json()["code"] == "action_not_allowed", where
                        assert name not in resp.json()["allowed_actions"], where
    # the scenarios reach every action at least once (else the test proves little)
    assert offered_somewhere == set(ACTIONS), set(ACTIONS) - offered_somewhere


async def test_the_reported_mismatches_are_gone(anon, as_user, conn) -> None:
    cases = await _scenarios(anon, as_user, conn)

    async def offered(state: str, who: str) -> list[str]:
        return (await cases[state].get(who))["allowed_actions"]

    # a case in feedback offers its departments nothing (it offered sign_in)
    assert await offered("feedback", "dept") == []
    # a returned assignment offers nothing while the lead handles (it offered sign_in,
    # request_extension and feedback)
    assert await offered("handling_co_returned", "dept2") == []
    assert set(await offered("handling_co_returned", "dept")) == {"request_extension", "feedback"}
    # a pending extension: the department cannot ask again, the dispatcher can decide
    assert "request_extension" not in await offered("handling_extension_pending", "dept")
    assert "decide_extension" in await offered("handling_extension_pending", "street")
    assert "decide_extension" not in await offered("handling_co_dispatched", "street")
    assert GRID  # the cases are in the worker's grid
