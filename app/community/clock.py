"""The community part of the loop's clock (called by `app.loop.scheduler.tick`, under its lock and
in its transaction): tracked tasks are reminded and escalated exactly like cases' assignments
(overdue → the street is told, still open `escalate_to_centre_hours` after the street was told
→ the centre), and a
community whose big party committee has no joint meeting in the quarter is reminded (once per
quarter) when the quarter has `meeting_remind_days` days left."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.community.records import emit_community, quarter, quarter_bounds
from app.config import get_settings
from app.schemas import SHANGHAI

ACTION_NAMES: dict[str, tuple[str, str]] = {
    "meeting_missing": ("本季度未召开联席会议", "no joint meeting this quarter")
}
"""Labels of this module's actions (registered in `app.extensions`)."""

_ESCALATE = text(
    """
    UPDATE community_tasks t SET escalation_level = t.escalation_level + 1,
           escalated_at = CASE WHEN t.escalation_level = 0 THEN CAST(:now AS timestamptz)
                               ELSE t.escalated_at END
    WHERE t.state = 'open'
      AND ((t.escalation_level = 0 AND t.due_at < :now)
        OR (t.escalation_level = 1
            AND coalesce(t.escalated_at, t.due_at)
                < CAST(:now AS timestamptz) - make_interval(hours => :centre_after)))
    RETURNING t.id, t.community_id, t.district_id, t.unit_id, t.escalation_level, t.due_at
    """
)
_REMIND = text(
    """
    UPDATE community_tasks t SET reminded_at = :now
    WHERE t.state = 'open' AND t.reminded_at IS NULL
      AND t.due_at BETWEEN CAST(:now AS timestamptz)
                       AND CAST(:now AS timestamptz) + make_interval(mins => :before)
    RETURNING t.id, t.community_id, t.district_id, t.unit_id, t.due_at
    """
)
_STEP = text(
    """
    INSERT INTO community_steps (district_id, community_id, object_type, object_id, action, note,
                                 detail, at)
    VALUES (:district, :community, 'task', :id, :action, :note, CAST(:detail AS jsonb), :now)
    """
)
_NO_MEETING = text(
    """
    SELECT c.id AS community_id, c.name
    FROM areas c
    WHERE c.level = 'community'
      AND EXISTS (SELECT 1 FROM community_units u
                  WHERE u.community_id = c.id AND u.is_member AND u.active)
      AND NOT EXISTS (SELECT 1 FROM community_meetings m
                      WHERE m.community_id = c.id AND m.period = :period)
      -- Not correlated with the areas (a reference table on Citus): the communities already
      -- reminded this period, read once across the districts.
      AND c.id <> ALL(ARRAY(SELECT (e.payload->>'community_id')::bigint FROM events e
                            WHERE e.type = 'community.meeting_missing'
                              AND e.payload->>'period' = :period))
      AND c.id <> ALL(CAST(:queued AS bigint[]))
    ORDER BY c.id
    """
)
_QUEUED_REMINDERS = text(
    """
    SELECT (i.payload->>'community_id')::bigint FROM event_intents i
    WHERE i.type = 'community.meeting_missing' AND i.payload->>'period' = :period
    """
)
"""The reminders committed and not yet published (the relay's backlog, `app.events.outbox`): a
statement of their own, as the intents are a table of the Citus coordinator."""


async def tick(session: AsyncSession, now: datetime) -> dict[str, Any]:
    s = get_settings()
    escalated = list(
        await session.execute(_ESCALATE, {"now": now, "centre_after": s.escalate_to_centre_hours})
    )
    for t in escalated:
        to = "street" if t.escalation_level == 1 else "centre"
        detail = {"level": t.escalation_level, "escalated_to": to, "due": t.due_at.isoformat()}
        await session.execute(
            _STEP,
            {
                "district": t.district_id,
                "community": t.community_id,
                "id": t.id,
                "action": "escalated",
                "note": "任务逾期，已督办至" + ("街道" if to == "street" else "区综治中心"),
                "detail": orjson.dumps(detail).decode(),
                "now": now,
            },
        )
        await emit_community(
            session,
            "community.task_overdue",
            t.community_id,
            {"task_id": t.id, "unit_id": t.unit_id, **detail},
        )
    reminded = list(await session.execute(_REMIND, {"now": now, "before": s.remind_before_minutes}))
    for t in reminded:
        await session.execute(
            _STEP,
            {
                "district": t.district_id,
                "community": t.community_id,
                "id": t.id,
                "action": "reminded",
                "note": "任务临近期限",
                "detail": orjson.dumps({"due": t.due_at.isoformat()}).decode(),
                "now": now,
            },
        )
        await emit_community(
            session,
            "community.task_deadline_soon",
            t.community_id,
            {"task_id": t.id, "unit_id": t.unit_id, "due": t.due_at.isoformat()},
        )
    period = quarter(now)
    _, next_start = quarter_bounds(period)
    left = (next_start - now.astimezone(SHANGHAI).date()).days
    missing: list[int] = []
    if left <= s.meeting_remind_days:
        queued = list((await session.execute(_QUEUED_REMINDERS, {"period": period})).scalars())
        for c in list(await session.execute(_NO_MEETING, {"period": period, "queued": queued})):
            await emit_community(
                session,
                "community.meeting_missing",
                c.community_id,
                {
                    "period": period,
                    "days_left": left,
                    "message": f"{c.name}大党委本季度（{period}）尚未召开联席会议",
                },
            )
            missing.append(c.community_id)
    return {
        "tasks_escalated": len(escalated),
        "tasks_reminded": len(reminded),
        "meetings_missing": missing,
    }
