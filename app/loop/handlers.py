"""The loop's actions: what each one does to a case and its assignments, and its guard.

Registered in `app.loop.actions.ACTIONS` by the `@action` decorator; `app.loop.service.perform`
runs them after the one rule (`app.loop.actions.refusal`) let them through.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import text

from app.auth.policy import RULES, Principal
from app.config import get_settings
from app.errors import ApiError
from app.loop import deadlines
from app.loop.actions import CaseView, Ctx, Guard, action, extension_pending, mine
from app.loop.schemas import (
    DecisionIn,
    DispatchIn,
    EvaluateIn,
    ExtensionIn,
    NoteIn,
    ReasonIn,
    VerifyIn,
    WhistleIn,
)

# --- helpers ----------------------------------------------------------------------------------


def _assignments(ctx: Ctx, states: tuple[str, ...] | None = None) -> list[Any]:
    """The case's assignments (withdrawn left out, lead first) in these states, as the rule saw
    them: loaded once per action, under the case's row lock."""
    return [a for a in ctx.view.assignments if states is None or a.state in states]


def _my_assignment(ctx: Ctx, states: tuple[str, ...]) -> Any:
    a = mine(ctx.view.assignments, ctx.who, states)
    if a is None:  # the action's guard refused this already; never reached through `perform`
        raise ApiError("action_not_allowed", detail=_NOT_YOURS[0], detail_en=_NOT_YOURS[1])
    return a


async def _set_assignment(ctx: Ctx, assignment_id: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    await ctx.session.execute(
        text(f"UPDATE case_assignments SET {sets} WHERE id = :id AND district_id = :district"),
        {**values, "id": assignment_id, "district": ctx.case.district_id},
    )


async def _due(ctx: Ctx, start: Any, value: float, unit: str) -> tuple[Any, bool]:
    d = await deadlines.due(ctx.session, start, value, unit)
    return d.at, d.provisional


def _limit(limits: dict[str, Any], urgency: str) -> dict[str, Any]:
    return deadlines.limit_for(limits, urgency)


def _unit_name(who: Principal) -> str:
    for p in who.posts:
        if p.role in ("centre", "street", "community"):
            return {"centre": "区综治中心", "street": "街道", "community": "社区"}[p.role]
    return who.display_name


# --- guards: an action's own condition beyond its states (see app/loop/actions.py) -----------

_NOT_YOURS = (
    "您的部门没有处于该状态的派遣任务",
    "Your department has no assignment of this case in that state",
)


def _yours(*states: str) -> Guard:
    def guard(view: CaseView, who: Principal, now: datetime) -> tuple[str, str] | None:
        return None if mine(view.assignments, who, states) is not None else _NOT_YOURS

    return guard


def _may_request_extension(view: CaseView, who: Principal, now: datetime) -> tuple[str, str] | None:
    a = mine(view.assignments, who, ("handling", "rework"))
    if a is None:
        return _NOT_YOURS
    if extension_pending(a):
        return ("已有待审批的延期申请", "An extension request is already pending")
    return None


def _extension_to_decide(view: CaseView, who: Principal, now: datetime) -> tuple[str, str] | None:
    if any(a.state in ("handling", "rework") and extension_pending(a) for a in view.assignments):
        return None
    return ("没有待审批的延期申请", "No extension request is pending")


def _within_reopen_window(view: CaseView, who: Principal, now: datetime) -> tuple[str, str] | None:
    days = get_settings().reopen_days
    if (
        view.duplicate_of is not None
        or view.closed_at is None
        or (now - view.closed_at > timedelta(days=days))
    ):
        return (
            f"只能在结案后 {days} 天内重新打开（重复件不能重新打开）",
            f"A case can be reopened within {days} days of closing (duplicates cannot)",
        )
    return None


# --- actions ----------------------------------------------------------------------------------


@action("register", "loop:triage", {"reported"}, NoteIn, "Accept the case (立案)")
async def _register(ctx: Ctx) -> None:
    ctx.to_status = "registered"
    ctx.case_sets = {"first_unit": ctx.case.first_unit or _unit_name(ctx.who)}


@action(
    "reject", "loop:triage", {"reported", "registered"}, ReasonIn, "Reject as invalid (不予立案)"
)
async def _reject(ctx: Ctx) -> None:
    ctx.to_status = "rejected"
    ctx.detail["reason"] = ctx.body.reason
    ctx.case_sets = {"closed_at": ctx.now}


@action(
    "whistle",
    "loop:whistle",
    {"reported", "registered"},
    WhistleIn,
    "The community blows the whistle: call departments in (吹哨)",
)
async def _whistle(ctx: Ctx) -> None:
    ctx.to_status = "whistled"
    ctx.detail.update({"reason": ctx.body.reason, "department_ids": ctx.body.department_ids})
    ctx.case_sets = {"first_unit": ctx.case.first_unit or "社区"}


async def _route(ctx: Ctx) -> tuple[int, list[int]]:
    """Lead and co-departments: the caller's choice, else routing rules (by category and street),
    else the catalogue, else the district's catch-all owner (属地兜底): never nowhere."""
    body: DispatchIn = ctx.body
    wanted_co = body.co_department_ids
    whistled = await ctx.session.execute(
        text(
            "SELECT detail FROM case_events WHERE case_id = :c AND district_id = :d "
            "AND action = 'whistle' ORDER BY id DESC LIMIT 1"
        ),
        {"c": ctx.case.id, "d": ctx.case.district_id},
    )
    w = whistled.scalar()
    row = (
        await ctx.session.execute(
            text(
                """
        SELECT (SELECT r.department_id FROM routing_rules r
                WHERE r.category_code = c.code AND (r.street_id = :street OR r.street_id IS NULL)
                ORDER BY r.street_id NULLS LAST LIMIT 1) AS routed,
               (SELECT d.id FROM departments d WHERE d.code = c.lead_department) AS lead,
               array(SELECT d.id FROM departments d WHERE d.code = ANY(c.co_departments)
                     ORDER BY d.id) AS co,
               (SELECT d.id FROM departments d WHERE d.code = :catch_all) AS catch_all
        FROM categories c WHERE c.code = :cat
        """
            ),
            {
                "street": ctx.case.street_id,
                "cat": ctx.case.category_code,
                "catch_all": get_settings().catch_all_department,
            },
        )
    ).one()
    lead = body.lead_department_id or row.routed or row.lead or row.catch_all
    if lead is None:
        raise ApiError(
            "validation_error",
            field="lead_department_id",
            detail="没有可派遣的部门",
            detail_en="No department to dispatch to",
        )
    if wanted_co is None:
        wanted_co = list(row.co) + (list(w.get("department_ids", [])) if w else [])
    co = sorted({d for d in wanted_co if d != lead})
    known = set(
        (
            await ctx.session.execute(
                text("SELECT id FROM departments WHERE id = ANY(:ids)"), {"ids": [lead, *co]}
            )
        ).scalars()
    )
    missing = [d for d in [lead, *co] if d not in known]
    if missing:
        raise ApiError(
            "validation_error",
            field="lead_department_id",
            detail=f"部门不存在：{missing}",
            detail_en=f"Unknown departments: {missing}",
        )
    return lead, co


@action(
    "dispatch",
    "loop:dispatch",
    {"reported", "registered", "whistled", "returned"},
    DispatchIn,
    "Dispatch to a lead department and co-departments (派遣)",
)
async def _dispatch(ctx: Ctx) -> None:
    lead, co = await _route(ctx)
    limits = (
        await ctx.session.execute(
            text("SELECT limits FROM categories WHERE code = :c"), {"c": ctx.case.category_code}
        )
    ).scalar_one()
    lim = _limit(limits, ctx.case.urgency)
    sign_in_due, provisional = await _due(ctx, ctx.now, float(lim["sign_in_hours"]), "hours")
    await ctx.session.execute(
        text(
            "UPDATE case_assignments SET state = 'withdrawn' WHERE case_id = :c "
            "AND district_id = :district "
            "AND state IN ('dispatched', 'handling', 'suspended', 'rework')"
        ),
        {"c": ctx.case.id, "district": ctx.case.district_id},
    )
    for dept, role in [(lead, "lead"), *[(d, "co") for d in co]]:
        await ctx.session.execute(
            text(
                """
            INSERT INTO case_assignments (case_id, district_id, department_id, role,
                                          dispatched_by, limits, sign_in_due, provisional)
            VALUES (:c, :district, :d, :role, :by, CAST(:limits AS jsonb), :due, :prov)
            """
            ),
            {
                "c": ctx.case.id,
                "district": ctx.case.district_id,
                "d": dept,
                "role": role,
                "by": ctx.who.user_id,
                "limits": orjson.dumps(limits).decode(),
                "due": sign_in_due,
                "prov": provisional,
            },
        )
    ctx.to_status = "dispatched"
    ctx.case_sets = {
        "lead_department_id": lead,
        "first_unit": ctx.case.first_unit or _unit_name(ctx.who),
    }
    ctx.detail.update(
        {
            "lead_department_id": lead,
            "co_department_ids": co,
            "sign_in_due": sign_in_due.isoformat(),
            "provisional": provisional,
        }
    )


@action(
    "sign_in",
    "loop:department",
    {"dispatched", "handling", "rework", "feedback"},
    NoteIn,
    "The department signs in: reports for duty (报到)",
    department=True,
    guard=_yours("dispatched"),
)
async def _sign_in(ctx: Ctx) -> None:
    a = _my_assignment(ctx, ("dispatched",))
    lim = _limit(a.limits, ctx.case.urgency)
    handle_due, provisional = await _due(ctx, ctx.now, float(lim["handle"]), lim["handle_unit"])
    await _set_assignment(
        ctx,
        a.id,
        state="handling",
        signed_in_at=ctx.now,
        handle_due=handle_due,
        provisional=a.provisional or provisional,
        escalation_level=0,
        escalated_at=None,
        reminded_at=None,
    )
    if a.role == "lead":
        ctx.to_status = "handling"
    ctx.detail.update(
        {
            "assignment_id": a.id,
            "role": a.role,
            "late": ctx.now > a.sign_in_due,
            "handle_due": handle_due.isoformat(),
            "provisional": provisional,
        }
    )


@action(
    "return",
    "loop:department",
    {"dispatched"},
    ReasonIn,
    "The department returns the case with a reason (退回): the dispatcher re-routes it",
    department=True,
    guard=_yours("dispatched"),
)
async def _return(ctx: Ctx) -> None:
    a = _my_assignment(ctx, ("dispatched",))
    await _set_assignment(ctx, a.id, state="returned", note=ctx.body.reason)
    if a.role == "lead":
        ctx.to_status = "returned"
    ctx.detail.update({"assignment_id": a.id, "reason": ctx.body.reason, "role": a.role})


@action(
    "request_extension",
    "loop:department",
    {"handling", "rework"},
    ExtensionIn,
    "Ask the dispatcher for more time (延期)",
    department=True,
    guard=_may_request_extension,
)
async def _request_extension(ctx: Ctx) -> None:
    a = _my_assignment(ctx, ("handling", "rework"))
    ext = {
        "amount": ctx.body.amount,
        "unit": ctx.body.unit,
        "reason": ctx.body.reason,
        "state": "pending",
        "requested_by": ctx.who.user_id,
    }
    await _set_assignment(ctx, a.id, extension=orjson.dumps(ext).decode())
    ctx.detail.update({"assignment_id": a.id, **ext})


@action(
    "decide_extension",
    "loop:dispatch",
    {"handling", "rework"},
    DecisionIn,
    "Approve or refuse a pending extension",
    guard=_extension_to_decide,
)
async def _decide_extension(ctx: Ctx) -> None:
    a = next(a for a in _assignments(ctx, ("handling", "rework")) if extension_pending(a))
    ext = dict(a.extension)
    ext.update(
        {"state": "approved" if ctx.body.approve else "refused", "decided_by": ctx.who.user_id}
    )
    values: dict[str, Any] = {"extension": orjson.dumps(ext).decode()}
    if ctx.body.approve:
        moved = await deadlines.extended(ctx.session, a.handle_due, ext["amount"], ext["unit"])
        values["handle_due"], prov = moved.at, moved.provisional
        values["provisional"] = a.provisional or prov
        ctx.detail["handle_due"] = values["handle_due"].isoformat()
    await _set_assignment(ctx, a.id, **values)
    ctx.detail.update({"assignment_id": a.id, "approved": ctx.body.approve})


@action(
    "suspend",
    "loop:dispatch",
    {"handling"},
    ReasonIn,
    "Suspend long-term work: the clock stops (挂起)",
)
async def _suspend(ctx: Ctx) -> None:
    cal = await deadlines.calendar(ctx.session)
    left = {}
    for a in _assignments(ctx, ("handling",)):
        left[str(a.id)] = cal.working_hours_between(ctx.now, a.handle_due) if a.handle_due else 0
        await _set_assignment(ctx, a.id, state="suspended")
    ctx.to_status = "suspended"
    ctx.detail.update({"reason": ctx.body.reason, "hours_left": left})


@action("resume", "loop:dispatch", {"suspended"}, NoteIn, "Resume suspended work")
async def _resume(ctx: Ctx) -> None:
    last = (
        await ctx.session.execute(
            text(
                "SELECT detail FROM case_events WHERE case_id = :c AND district_id = :d "
                "AND action = 'suspend' ORDER BY id DESC LIMIT 1"
            ),
            {"c": ctx.case.id, "d": ctx.case.district_id},
        )
    ).scalar() or {}
    left = last.get("hours_left", {})
    for a in _assignments(ctx, ("suspended",)):
        due, prov = await _due(ctx, ctx.now, max(float(left.get(str(a.id), 0)), 0.0), "hours")
        await _set_assignment(
            ctx, a.id, state="handling", handle_due=due, provisional=a.provisional or prov
        )
    ctx.to_status = "handling"


@action(
    "feedback",
    "loop:department",
    {"handling", "rework"},
    NoteIn,
    "Hand in the result (then upload after-photos to this step) (反馈)",
    department=True,
    guard=_yours("handling", "rework"),
)
async def _feedback(ctx: Ctx) -> None:
    a = _my_assignment(ctx, ("handling", "rework"))
    await _set_assignment(ctx, a.id, state="feedback", feedback_at=ctx.now)
    others = [
        x
        for x in _assignments(ctx, ("dispatched", "handling", "rework", "suspended"))
        if x.id != a.id
    ]
    if not others:
        ctx.to_status = "feedback"
    ctx.detail.update(
        {
            "assignment_id": a.id,
            "role": a.role,
            "late": bool(a.handle_due and ctx.now > a.handle_due),
            "waiting_for": [x.department_id for x in others],
        }
    )


@action(
    "on_spot",
    "loop:grid",
    {"reported", "registered"},
    NoteIn,
    "The grid worker handled it on the spot (自行处置): upload after-photos to this step",
)
async def _on_spot(ctx: Ctx) -> None:
    ctx.to_status = "feedback"
    ctx.case_sets = {"on_spot": True, "first_unit": ctx.case.first_unit or "网格"}


def _verifier(view: CaseView, who: Principal, now: datetime) -> tuple[str, str] | None:
    """The one verify rule: a case whose verification task names the grid's worker on duty is
    checked by that worker (or a leader, the community, an administrator); without such a task,
    by any worker of the grid."""
    if view.verifier_id is None or view.verifier_id == who.user_id:
        return None
    if any(p.role != "grid_worker" for p in who.posts_for(RULES["loop:grid"])):
        return None
    return (
        "核查已派给当班网格员，由其到现场核查",
        "The on-site check is assigned to the grid's worker on duty",
    )


@action(
    "verify",
    "loop:grid",
    {"feedback"},
    VerifyIn,
    "Check on site (核查): pass, or send back for rework (返工); the grid's worker on duty when "
    "a verification task names them",
    guard=_verifier,
)
async def _verify(ctx: Ctx) -> None:
    ctx.detail["passed"] = ctx.body.passed
    if ctx.body.passed:
        for a in _assignments(ctx, ("feedback",)):
            await _set_assignment(ctx, a.id, state="done")
        ctx.to_status = "verified"
        return
    done = _assignments(ctx, ("feedback",))
    if not done:  # handled on the spot: back to the grid worker
        ctx.to_status = "registered"
        ctx.case_sets = {"on_spot": False, "rework_count": ctx.case.rework_count + 1}
        return
    for a in done:
        lim = _limit(a.limits, ctx.case.urgency)
        due, prov = await _due(ctx, ctx.now, float(lim["handle"]), lim["handle_unit"])
        await _set_assignment(
            ctx,
            a.id,
            state="rework",
            handle_due=due,
            rework_count=a.rework_count + 1,
            provisional=a.provisional or prov,
            escalation_level=0,
            escalated_at=None,
            reminded_at=None,
        )
        ctx.detail.setdefault("handle_due", due.isoformat())
    ctx.to_status = "rework"
    ctx.case_sets = {"rework_count": ctx.case.rework_count + 1}


@action(
    "evaluate",
    "loop:grid",
    {"verified"},
    EvaluateIn,
    "Record the resident's satisfaction and close (评价、结案)",
)
async def _evaluate(ctx: Ctx) -> None:
    ctx.to_status = "closed"
    ctx.detail["satisfaction"] = ctx.body.satisfaction
    ctx.case_sets = {"satisfaction": ctx.body.satisfaction, "closed_at": ctx.now}


@action(
    "reopen",
    "loop:triage",
    {"closed"},
    ReasonIn,
    "Reopen a closed case within the window after closing",
    guard=_within_reopen_window,
)
async def _reopen(ctx: Ctx) -> None:
    ctx.to_status = "registered"
    ctx.detail["reason"] = ctx.body.reason
    ctx.case_sets = {
        "closed_at": None,
        "satisfaction": None,
        "reopen_count": ctx.case.reopen_count + 1,
    }
