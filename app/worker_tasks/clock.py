"""The worker tasks' part of the loop's clock (`app.loop.scheduler.register_job`, under its lock
and in its transaction), the same rule as the loop's assignments and the community's tasks:
overdue → the street is told (level 1), still open `escalate_to_centre_hours` after that → the
centre (level 2); reminded `remind_before_minutes` before the deadline.

And the verification rule's other half: a case waiting for its on-site check (`feedback`) gets
a verification task for the grid's worker on duty (`app.duty.service.duty_worker`), whom the
loop's verify guard then lets check it (`app.loop.handlers`); the task ends when the case leaves
`feedback`."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.duty.service import duty_worker
from app.loop import deadlines
from app.worker_tasks.service import emit_task

VERIFY_DAYS = 1
"""A verification task's deadline, in working days."""
BATCH = 200

_ESCALATE = text(
    """
    UPDATE worker_tasks t SET escalation_level = t.escalation_level + 1,
           escalated_at = CAST(:now AS timestamptz)
    WHERE t.state IN ('open', 'accepted')
      AND ((t.escalation_level = 0 AND t.due_at < :now)
        OR (t.escalation_level = 1
            AND t.escalated_at < CAST(:now AS timestamptz) - make_interval(hours => :centre_after)))
    RETURNING t.*
    """
)
_REMIND = text(
    """
    UPDATE worker_tasks t SET reminded_at = :now
    WHERE t.state IN ('open', 'accepted') AND t.reminded_at IS NULL
      AND t.due_at BETWEEN CAST(:now AS timestamptz)
                       AND CAST(:now AS timestamptz) + make_interval(mins => :before)
    RETURNING t.*
    """
)
_WAITING = text(
    """
    SELECT c.id, c.district_id, c.grid_id, c.community_id, c.number, c.title
    FROM cases c
    WHERE c.status = 'feedback' AND c.grid_id IS NOT NULL AND c.community_id IS NOT NULL
      AND NOT EXISTS (
          SELECT 1 FROM worker_tasks t
          WHERE t.district_id = c.district_id AND t.case_id = c.id AND t.kind = 'verification'
            AND (t.state IN ('open', 'accepted')
                 OR t.created_at >= (SELECT max(e.at) FROM case_events e
                                     WHERE e.district_id = c.district_id AND e.case_id = c.id
                                       AND e.to_status = 'feedback')))
    ORDER BY c.id LIMIT :batch
    """
)
_NEW = text(
    """
    INSERT INTO worker_tasks (district_id, community_id, grid_id, worker_id, kind, title, case_id,
                              issuer_role, state, due_value, due_unit, starts_at, due_at,
                              provisional, created_at)
    VALUES (:district, :community, :grid, :worker, 'verification', :title, :case, 'system',
            'open', :value, 'days', :now, :due, :provisional, :now)
    RETURNING *
    """
)
_ENDED = text(
    """
    UPDATE worker_tasks t
    SET state = CASE WHEN (SELECT e.actor_id FROM case_events e
                           WHERE e.district_id = t.district_id AND e.case_id = t.case_id
                             AND e.action = 'verify' ORDER BY e.id DESC LIMIT 1) = t.worker_id
                     THEN 'done' ELSE 'cancelled' END,
        finished_at = :now
    FROM cases c
    WHERE t.kind = 'verification' AND t.state IN ('open', 'accepted')
      AND c.id = t.case_id AND c.district_id = t.district_id AND c.status <> 'feedback'
    RETURNING t.*
    """
)


async def tick(session: AsyncSession, now: datetime) -> dict[str, Any]:
    s = get_settings()
    escalated = list(
        await session.execute(_ESCALATE, {"now": now, "centre_after": s.escalate_to_centre_hours})
    )
    for t in escalated:
        to = "street" if t.escalation_level == 1 else "centre"
        await emit_task(session, "task.overdue", t, level=t.escalation_level, escalated_to=to)
    reminded = list(await session.execute(_REMIND, {"now": now, "before": s.remind_before_minutes}))
    for t in reminded:
        await emit_task(session, "task.deadline_soon", t)
    ended = list(await session.execute(_ENDED, {"now": now}))
    for t in ended:
        await emit_task(session, "task." + t.state, t, action="case_moved_on")
    created = 0
    for c in list(await session.execute(_WAITING, {"batch": BATCH})):
        worker = await duty_worker(session, c.district_id, c.grid_id, now)
        if worker is None:
            continue  # nobody on duty: any worker of the grid may verify (the loop's rule)
        due = await deadlines.due(session, now, VERIFY_DAYS, "days")
        t = (
            await session.execute(
                _NEW,
                {
                    "district": c.district_id,
                    "community": c.community_id,
                    "grid": c.grid_id,
                    "worker": worker,
                    "title": f"现场核查：{c.number} {c.title}"[:200],
                    "case": c.id,
                    "value": Decimal(VERIFY_DAYS),
                    "now": now,
                    "due": due.at,
                    "provisional": due.provisional,
                },
            )
        ).one()
        await emit_task(session, "task.created", t, issuer="system")
        created += 1
    return {
        "escalated": len(escalated),
        "reminded": len(reminded),
        "verifications": created,
        "ended": len(ended),
    }
