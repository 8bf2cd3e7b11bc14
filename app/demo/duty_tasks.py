"""The demo community's duty roster (the next 14 days: the demo worker on the day shift of every
working day, a party member on Saturday mornings) and a few tasks in the worker's queue.
Idempotent (nothing when the community has a roster). Not loaded for the test suite (ENV=test),
whose duty tests set the roster they need; `tests/api/test_duty.py` loads it on its own."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.demo.accounts import COMMUNITY
from app.schemas import SHANGHAI
from app.worktime.calendar import default_calendar

_PLACE = text(
    """
    SELECT c.id AS community, s.parent_id AS district, u.id AS worker,
           (SELECT pg.grid_id FROM posts p JOIN post_grids pg ON pg.post_id = p.id
            WHERE p.user_id = u.id ORDER BY pg.grid_id LIMIT 1) AS grid,
           (SELECT id FROM party_members m WHERE m.community_id = c.id AND m.active
            ORDER BY m.id LIMIT 1) AS member,
           (SELECT id FROM users WHERE username = 'community') AS issuer,
           EXISTS (SELECT 1 FROM duty_slots d WHERE d.community_id = c.id) AS done
    FROM areas c JOIN areas s ON s.id = c.parent_id, users u
    WHERE c.code = :code AND u.username = 'worker'
    """
)
_SLOT = text(
    """
    INSERT INTO duty_slots (district_id, community_id, grid_id, user_id, party_member_id,
                            worker_type, starts_at, ends_at, note)
    VALUES (:district, :community, :grid, :user, :member, :type, :starts, :ends, :note)
    """
)
_TASK = text(
    """
    INSERT INTO worker_tasks (district_id, community_id, grid_id, worker_id, kind, title,
                              description, issuer_role, state, due_value, due_unit, starts_at,
                              due_at, accepted_at, created_by)
    VALUES (:district, :community, :grid, :worker, :kind, :title, :description, 'community',
            :state, :days, 'days', :starts, :due, :accepted, :issuer)
    """
)
TASKS = (
    ("inspection", "检查3号楼消防通道", "楼道堆放杂物，周五前复查", "open", 2),
    ("callback", "回访独居老人张桂兰", "上周反映的水管漏水已修复，回访满意度", "accepted", 1),
    ("meeting_resolution", "落实联席会议决议：车棚加装排水沟", "会同物业确认施工时间", "open", 5),
)


async def load_duty(conn: AsyncConnection, now: datetime | None = None) -> int:
    """Slots added (0 when the roster was there)."""
    p = (await conn.execute(_PLACE, {"code": COMMUNITY})).first()
    if p is None or p.done or p.grid is None:
        return 0
    now = now or datetime.now(UTC)
    cal = default_calendar()
    today = now.astimezone(SHANGHAI).date()
    base = {"district": p.district, "community": p.community}
    slots = 0
    for n in range(14):
        day = today + timedelta(days=n)
        if cal.is_workday(day):
            starts = datetime.combine(day, time(8, 30), SHANGHAI)
            await conn.execute(
                _SLOT,
                {
                    **base,
                    "grid": p.grid,
                    "user": p.worker,
                    "member": None,
                    "type": "full_time",
                    "starts": starts,
                    "ends": starts + timedelta(hours=9),
                    "note": "白班",
                },
            )
            slots += 1
        elif day.weekday() == 5 and p.member is not None:
            starts = datetime.combine(day, time(9, 0), SHANGHAI)
            await conn.execute(
                _SLOT,
                {
                    **base,
                    "grid": None,
                    "user": None,
                    "member": p.member,
                    "type": "party_member",
                    "starts": starts,
                    "ends": starts + timedelta(hours=3),
                    "note": "在职党员周末值守",
                },
            )
            slots += 1
    for kind, title, description, state, days in TASKS:
        due = cal.deadline(now, days, "days")
        await conn.execute(
            _TASK,
            {
                **base,
                "grid": p.grid,
                "worker": p.worker,
                "kind": kind,
                "title": title,
                "description": description,
                "state": state,
                "days": days,
                "starts": now,
                "due": due.at,
                "accepted": now if state == "accepted" else None,
                "issuer": p.issuer,
            },
        )
    return slots
