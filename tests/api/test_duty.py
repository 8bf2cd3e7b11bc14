"""Duty rosters (排班): slots of full-time and part-time workers and party members, who is on
duty in a grid (`on_duty`), bad input as problem+json with the slot's field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.duty.service import deliver_from, duty_worker, on_duty
from tests.api.worktasks_support import COMMUNITY, GRID, make_worker, slot, user_id
from tests.helpers import problem

T0 = datetime(2031, 3, 4, 0, 30, tzinfo=UTC)  # 08:30 in Shanghai, a Tuesday


async def test_roster_and_who_is_on_duty(anon, as_user, conn, session, demo) -> None:
    area, grid = demo[COMMUNITY], demo[GRID]
    worker = await user_id(conn, "worker")
    part, _ = await make_worker(conn, grid, "duty_part_time")
    r = await anon.post(
        f"/api/v1/areas/{area}/party-members",
        headers=as_user("community"),
        json={"name": "周党员", "work_unit": "区税务局", "registered_on": "2026-03-01"},
    )
    assert r.status_code == 201, r.text
    member = r.json()["id"]
    body = {
        "slots": [
            slot(worker, T0, T0 + timedelta(hours=9), grid=grid, note="白班"),
            slot(part, T0 + timedelta(hours=4), T0 + timedelta(hours=12)),  # the whole community
            {
                "party_member_id": member,
                "grid_id": grid,
                "starts_at": "2031-03-04T18:00:00",  # Shanghai time (no offset)
                "ends_at": "2031-03-04T21:00:00",
            },
        ]
    }
    r = await anon.post(f"/api/v1/areas/{area}/duty", headers=as_user("community"), json=body)
    assert r.status_code == 201, r.text
    made = r.json()
    assert [s["worker_type"] for s in made] == ["full_time", "part_time", "party_member"]
    assert datetime.fromisoformat(made[2]["starts_at"]) == T0 + timedelta(hours=9, minutes=30)
    assert made[1]["grid_id"] is None and made[2]["name"] == "周党员"

    # 08:30: only the full-time worker; 13:00: both workers, full-time first; 19:00: the member.
    district = made[0]["district_id"]
    assert [p.user_id for p in await on_duty(session, district, grid, T0)] == [worker]
    noon = T0 + timedelta(hours=4, minutes=30)
    assert [p.worker_type for p in await on_duty(session, district, grid, noon)] == [
        "full_time",
        "part_time",
    ]
    evening = T0 + timedelta(hours=10, minutes=30)
    people = await on_duty(session, district, grid, evening)
    assert [p.worker_type for p in people] == ["part_time", "party_member"]
    assert await duty_worker(session, district, grid, evening) == part
    assert await duty_worker(session, district, grid, T0 + timedelta(hours=14)) is None
    assert await duty_worker(session, district, grid, T0 - timedelta(minutes=1)) is None

    # Quiet hours: before the duty a message waits for it; during it, it goes at once.
    early = T0 - timedelta(hours=3)
    assert await deliver_from(session, district, worker, early) == T0
    assert await deliver_from(session, district, worker, noon) == noon
    # No duty of theirs within a week: no quiet hours.
    assert await deliver_from(session, district, worker, T0 + timedelta(days=30)) == T0 + timedelta(
        days=30
    )

    r = await anon.get(
        f"/api/v1/grids/{grid}/on-duty",
        params={"at": noon.isoformat()},
        headers=as_user("community"),
    )
    assert r.status_code == 200, r.text
    assert [s["user_id"] for s in r.json()] == [worker, part]

    r = await anon.get(
        f"/api/v1/areas/{area}/duty",
        params={"since": "2031-03-04T00:00:00", "until": "2031-03-05T00:00:00"},
        headers=as_user("street"),
    )
    assert [s["id"] for s in r.json()] == [s["id"] for s in made]

    # The worker sees their own duty.
    r = await anon.get(
        "/api/v1/me/duty",
        params={"since": "2031-03-04T00:00:00", "until": "2031-03-05T00:00:00"},
        headers=as_user("worker"),
    )
    assert [s["id"] for s in r.json()] == [made[0]["id"]]

    # Removing a slot.
    r = await anon.delete(
        f"/api/v1/areas/{area}/duty/{made[1]['id']}", headers=as_user("community")
    )
    assert r.status_code == 204
    assert await duty_worker(session, district, grid, evening) is None


async def test_bad_slots(anon, as_user, conn, demo) -> None:
    area, grid = demo[COMMUNITY], demo[GRID]
    worker = await user_id(conn, "worker")
    url = f"/api/v1/areas/{area}/duty"

    async def post(*slots):
        return await anon.post(url, headers=as_user("community"), json={"slots": list(slots)})

    b = problem(await post(slot(worker, T0, T0 - timedelta(hours=1))), 422, "invalid_duty")
    assert b["field"] == "slots[0].ends_at" and "晚于" in b["detail"]
    b = problem(await post(slot(worker, T0, T0 + timedelta(hours=25))), 422, "invalid_duty")
    assert b["field"] == "slots[0].ends_at"
    other = await user_id(conn, "worker2")  # a worker of another community
    b = problem(await post(slot(other, T0, T0 + timedelta(hours=8))), 422, "invalid_duty")
    assert b["field"] == "slots[0].user_id"
    b = problem(
        await post({"starts_at": T0.isoformat(), "ends_at": (T0 + timedelta(hours=1)).isoformat()}),
        422,
        "invalid_duty",
    )
    assert b["field"] == "slots[0].user_id"
    b = problem(
        await post(
            slot(worker, T0, T0 + timedelta(hours=8), grid=grid),
            slot(worker, T0 + timedelta(hours=7), T0 + timedelta(hours=10)),
        ),
        409,
        "duty_overlap",
    )
    assert b["field"] == "slots[1].starts_at"
    # All or none: the first slot of the refused request is not there.
    r = await anon.get(
        url,
        params={"since": "2031-03-04T00:00:00", "until": "2031-03-05T00:00:00"},
        headers=as_user("community"),
    )
    assert r.json() == []
    # Out of the caller's scope, and workers may not keep the roster.
    r = await anon.post(
        url, headers=as_user("worker"), json={"slots": [slot(worker, T0, T0 + timedelta(hours=1))]}
    )
    problem(r, 403, "forbidden")
    problem(
        await anon.get(
            f"/api/v1/areas/{area}/duty", params={"since": "x"}, headers=as_user("community")
        ),
        422,
        "validation_error",
    )


async def test_demo_roster_and_tasks(conn) -> None:
    from sqlalchemy import text

    from app.demo.duty_tasks import TASKS, load_duty

    now = datetime(2031, 3, 3, 1, 0, tzinfo=UTC)  # a Monday
    slots = await load_duty(conn, now)
    assert slots >= 10  # the 10 working days of two weeks (+ Saturdays when a member is there)
    assert await load_duty(conn, now) == 0  # idempotent
    titles = (
        await conn.execute(
            text(
                "SELECT t.title FROM worker_tasks t JOIN users u ON u.id = t.worker_id "
                "WHERE u.username = 'worker' ORDER BY t.id"
            )
        )
    ).scalars()
    assert list(titles) == [t[1] for t in TASKS]
