"""The catalogue of event types: every `type` the outbox publishes (the live stream's and the
webhooks' `Wangge-Event-Type`). A subscription names types from here (or none: all of them).

The case events are `case.reported`, `case.<action>` for every action of the loop (its registry)
and every step of a dispute's case (`app.disputes.service.ACTION_NAMES`),
and the clock's `case.overdue` / `case.deadline_soon`; the others are listed by hand, with the
module that emits them. tests/api/test_webhook_regressions.py checks that what the code emits is
listed."""

from __future__ import annotations

from app.disputes.service import ACTION_NAMES as DISPUTE_STEPS
from app.loop.service import ACTIONS

_OTHERS: dict[str, str] = {
    "case.reported": "app/cases/intake.py",
    "case.overdue": "app/loop/scheduler.py",
    "case.deadline_soon": "app/loop/scheduler.py",
    "calendar.year_missing": "app/loop/scheduler.py",
    "community.task_created": "app/community/service.py",
    "community.task_progress": "app/community/service.py",
    "community.task_done": "app/community/service.py",
    "community.task_cancelled": "app/community/service.py",
    "community.task_overdue": "app/community/clock.py",
    "community.task_deadline_soon": "app/community/clock.py",
    "community.meeting_missing": "app/community/clock.py",
    "community.meeting_planned": "app/meetings/service.py",
    "community.meeting_held": "app/meetings/service.py",
    "community.matter_proposed": "app/deliberation/service.py",
    "community.volunteer_task": "app/volunteers/service.py",
}
_MATTER_STEPS = (
    "accept",
    "merge",
    "reject",
    "consult",
    "resolve",
    "voted_down",
    "complete",
    "close",
)


def event_types() -> frozenset[str]:
    """Every event type one can subscribe to."""
    return frozenset(
        [f"case.{name}" for name in ACTIONS]
        + [f"case.{name}" for name in DISPUTE_STEPS]
        + list(_OTHERS)
        + [f"community.matter_{step}" for step in _MATTER_STEPS]
    )
