"""The loop's clock: marks overdue sign-ins and handlings, escalates them (督办) first to the
street and then, `escalate_to_centre_hours` after the street was told (`escalated_at`) and
still overdue, to the centre; and reminds departments before a deadline.

Safe with several workers and replicas: each tick runs only where it wins a transaction-level
advisory lock, and every change is a conditional UPDATE (an assignment escalates once per level
whatever runs when). Tests call `tick(session, now=...)` with a fake clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.background import every
from app.config import get_settings
from app.db import unit_of_work
from app.events.outbox import emit, queued
from app.observability import metrics

log = logging.getLogger("wangge.scheduler")
LOCK = 7_246_001
ACTION_NAMES: dict[str, tuple[str, str]] = {
    "escalated": ("督办", "escalated"),
    "reminded": ("临期提醒", "reminded"),
}
"""Labels of this module's actions (registered in `app.extensions`)."""

_RUNNING = """
CASE WHEN a.state = 'dispatched' THEN a.sign_in_due
     WHEN a.state IN ('handling', 'rework') THEN a.handle_due END
"""
_ESCALATE = text(
    f"""
    UPDATE case_assignments a SET escalation_level = a.escalation_level + 1, escalated_at = :now
    WHERE a.state IN ('dispatched', 'handling', 'rework')
      AND ({_RUNNING}) IS NOT NULL AND ({_RUNNING}) < :now
      AND (
        a.escalation_level = 0
        OR (a.escalation_level = 1 AND a.escalated_at
            < CAST(:now AS timestamptz) - make_interval(hours => :centre_after))
      )
    RETURNING a.id, a.case_id, a.district_id, a.department_id, a.state, a.escalation_level,
              ({_RUNNING}) AS due
    """
)
_REMIND = text(
    f"""
    UPDATE case_assignments a SET reminded_at = :now
    WHERE a.state IN ('dispatched', 'handling', 'rework') AND a.reminded_at IS NULL
      AND ({_RUNNING}) BETWEEN CAST(:now AS timestamptz) AND CAST(:now AS timestamptz) + make_interval(mins => :before)
    RETURNING a.id, a.case_id, a.district_id, a.department_id, a.state, ({_RUNNING}) AS due
    """
)
_YEARS = text(
    """
    SELECT DISTINCT district_id, extract(year FROM coalesce(handle_due, sign_in_due)
                                 AT TIME ZONE 'Asia/Shanghai')::int AS year
    FROM case_assignments WHERE provisional AND state NOT IN ('done', 'withdrawn', 'returned')
    ORDER BY 1, 2
    """
)
_LOADED_YEARS = text("SELECT year FROM work_schedules WHERE year = ANY(:years)")
_WARNED = text(
    """
    SELECT 1 FROM events e WHERE e.district_id = :d AND e.type = 'calendar.year_missing'
      AND (e.payload->>'year')::int = CAST(:y AS integer) AND e.at > CAST(:now AS timestamptz) - interval '1 day'
    LIMIT 1
    """
)
_WARN_QUEUED = text(
    """
    SELECT 1 FROM event_intents i WHERE i.district_id = :d AND i.type = 'calendar.year_missing'
      AND (i.payload->>'year')::int = CAST(:y AS integer)
    LIMIT 1
    """
)
"""The same warning committed and not yet published (the relay's backlog)."""
_WARN = text(
    """
    INSERT INTO event_intents (type, district_id, payload)
    VALUES ('calendar.year_missing', :d,
            jsonb_build_object('year', CAST(:y AS integer), 'message',
                CAST(:y AS text) || ' 年的法定节假日安排尚未导入，相关时限按普通周末计算（临时）'))
    """
)


async def _warn_missing_years(session: AsyncSession, now: datetime) -> list[int]:
    """Warn the administrators (once a day per district) of provisional deadlines in a year with
    no schedule; returns the years warned of. Each statement reads one kind of table (the
    assignments across districts, the calendar, one district's events) so that on Citus each
    is one it plans (the intent is a coordinator table)."""
    years = [(r.district_id, r.year) for r in await session.execute(_YEARS)]
    if not years:
        return []
    loaded = set(
        (await session.execute(_LOADED_YEARS, {"years": sorted({y for _, y in years})})).scalars()
    )
    warned: set[int] = set()
    for d, y in years:
        if y in loaded:
            continue
        if (await session.execute(_WARNED, {"d": d, "y": y, "now": now})).first() is not None:
            continue
        if (await session.execute(_WARN_QUEUED, {"d": d, "y": y})).first() is None:
            await session.execute(_WARN, {"d": d, "y": y})
            queued(session)
            warned.add(y)
    return sorted(warned)


_STEP = text(
    """
    INSERT INTO case_events (case_id, district_id, action, note, detail)
    VALUES (:c, :d, :action, :note, CAST(:detail AS jsonb))
    """
)


Job = Callable[[AsyncSession, datetime], Awaitable[Any]]
"""A scheduled job: one pass on the tick's session at `now`; what it returns is reported under
its name."""

_jobs: dict[str, Job] = {}


def register_job(name: str, job: Job) -> None:
    """An extension point, registered from above (`app.extensions`): the loop's clock runs the
    jobs of the packages above it (the community's reminders) without importing them."""
    _jobs[name] = job


async def tick(session: AsyncSession, now: datetime | None = None) -> dict[str, Any]:
    """One pass of the clock, in the caller's unit of work (which commits, and so releases the
    runners' lock). Returns what it did (or that another runner had it)."""
    s = get_settings()
    got = (
        await session.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": LOCK})
    ).scalar()
    if not got:
        return {"skipped": True}
    now = now or (await session.execute(text("SELECT now()"))).scalar_one()
    escalated = list(
        await session.execute(_ESCALATE, {"now": now, "centre_after": s.escalate_to_centre_hours})
    )
    for a in escalated:
        to = "street" if a.escalation_level == 1 else "centre"
        stage = "sign_in" if a.state == "dispatched" else "handling"
        detail = {
            "assignment_id": a.id,
            "department_id": a.department_id,
            "stage": stage,
            "level": a.escalation_level,
            "escalated_to": to,
            "due": a.due.isoformat(),
        }
        note = ("签收超时，已督办至" if stage == "sign_in" else "处置超时，已督办至") + (
            "街道" if to == "street" else "区综治中心"
        )
        await session.execute(
            _STEP,
            {
                "c": a.case_id,
                "d": a.district_id,
                "action": "escalated",
                "note": note,
                "detail": orjson.dumps(detail).decode(),
            },
        )
        await emit(
            session,
            "case.overdue",
            a.case_id,
            {"case_id": a.case_id, **detail},
            district_id=a.district_id,
        )
    reminded = list(await session.execute(_REMIND, {"now": now, "before": s.remind_before_minutes}))
    for a in reminded:
        await emit(
            session,
            "case.deadline_soon",
            a.case_id,
            {
                "case_id": a.case_id,
                "assignment_id": a.id,
                "department_id": a.department_id,
                "stage": "sign_in" if a.state == "dispatched" else "handling",
                "due": a.due.isoformat(),
            },
            district_id=a.district_id,
        )
    missing = await _warn_missing_years(session, now)
    jobs = {name: await job(session, now) for name, job in _jobs.items()}
    return {
        "skipped": False,
        "escalated": len(escalated),
        "reminded": len(reminded),
        "missing_years": missing,
        **jobs,
    }


async def run_forever(stop: asyncio.Event) -> None:
    """The background loop each server process runs (only one wins each tick)."""

    async def job() -> bool:
        try:
            async with unit_of_work() as session:
                await tick(session)
        except Exception:
            metrics.clock_run(ok=False)
            raise
        metrics.clock_run(ok=True)
        return False

    await every(stop, get_settings().scheduler_seconds, job, "scheduler tick")
