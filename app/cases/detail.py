"""One case as its detail shows it: the case, its timeline and photos, the departments it was
dispatched to (with the working hours left) and the loop's actions the caller may take. The
loop is above the cases: it registers what the detail shows of it (`register_loop`, called from
`app.extensions`); this module imports nothing of the loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth import scope
from app.auth.policy import Principal
from app.cases.service import attachments, case_out, fetch_case, sees_pii, timeline
from app.geometry import CRS
from app.i18n import Lang
from app.schemas import to_local
from app.worktime import WorkCalendar

_ASSIGNMENTS = text(
    """
    SELECT a.*, d.code AS d_code, d.name AS d_name FROM case_assignments a
    JOIN departments d ON d.id = a.department_id
    WHERE a.case_id = :id AND a.district_id = :district AND a.state <> 'withdrawn'
    ORDER BY a.role DESC, a.id
    """
)


# --- extension points, registered from above (`app.extensions`): the loop ---------------------

ActionsOf = Callable[[AsyncSession, Sequence[int], Principal], Awaitable[dict[int, list[str]]]]
"""The loop's actions the caller may take now on each of these cases (by case id): what the loop's
one rule lets through (`app.loop.actions.allowed_for`)."""
CalendarOf = Callable[[AsyncSession], Awaitable[WorkCalendar]]
"""The working calendar the loop's deadlines run on."""


@dataclass
class _Loop:
    actions_of: ActionsOf | None = None
    calendar_of: CalendarOf | None = None


_loop = _Loop()


def register_loop(actions_of: ActionsOf, calendar_of: CalendarOf) -> None:
    """The loop (the layer above) tells the case detail what it shows of it: the allowed
    actions and the working calendar of the deadlines. Cases import nothing of the loop."""
    _loop.actions_of, _loop.calendar_of = actions_of, calendar_of


async def detail(
    session: AsyncSession,
    case_id: int,
    who: Principal,
    lang: Lang,
    crs: CRS,
    request: Request | None,
) -> tuple[dict[str, Any], int]:
    """A case with its timeline, photos, assignments and allowed actions; (body, version).
    Opening it reveals the resident's phone to roles that need it (audited)."""
    row = await fetch_case(session, case_id)
    reveal = sees_pii(who) and bool(row.resident_phone)
    masked = not sees_pii(who)  # free text through the PII detector for them (departments)
    out = case_out(row, lang, crs, reveal_pii=reveal, masked_text=masked)
    out["timeline"] = await timeline(session, case_id, lang, masked_text=masked)
    out["attachments"] = await attachments(session, case_id)
    out["assignments"] = await assignments(session, case_id)
    out["allowed_actions"] = (
        (await _loop.actions_of(session, [case_id], who)).get(case_id, [])
        if _loop.actions_of
        else []
    )
    if reveal:
        await record(
            session,
            "pii_viewed",
            actor=who,
            request=request,
            object_type="case",
            object_id=case_id,
            detail={"fields": ["resident_phone"]},
        )
    return out, row.version


async def assignments(session: AsyncSession, case_id: int) -> list[dict[str, Any]]:
    """The departments a case was dispatched to, with their deadlines and working hours left."""
    district = await scope.district_of(session, case_id)
    rows = list(await session.execute(_ASSIGNMENTS, {"id": case_id, "district": district}))
    if not rows:
        return []
    assert _loop.calendar_of is not None, "the loop registers its calendar (app.extensions)"
    cal = await _loop.calendar_of(session)
    now = (await session.execute(text("SELECT now()"))).scalar_one()
    out = []
    for a in rows:
        running = (
            a.sign_in_due
            if a.state == "dispatched"
            else a.handle_due
            if a.state in ("handling", "rework")
            else None
        )
        left = round(cal.working_hours_between(now, running), 2) if running else None
        out.append(
            {
                "id": a.id,
                "department": {"id": a.department_id, "code": a.d_code, "name": a.d_name},
                "role": a.role,
                "state": a.state,
                "dispatched_at": to_local(a.dispatched_at),
                "sign_in_due": to_local(a.sign_in_due),
                "signed_in_at": to_local(a.signed_in_at) if a.signed_in_at else None,
                "handle_due": to_local(a.handle_due) if a.handle_due else None,
                "feedback_at": to_local(a.feedback_at) if a.feedback_at else None,
                "provisional": a.provisional,
                "hours_left": left,
                "overdue": bool(running and now > running),
                "rework_count": a.rework_count,
                "extension": a.extension,
            }
        )
    return out
