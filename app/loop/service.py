"""The closed loop as a state machine. Every action: policy (role and scope) → the case's state
→ optimistic concurrency (If-Match) → the change → a timeline step with the deadline it started.

reported ─register→ registered ─whistle→ whistled ─dispatch→ dispatched ─sign_in→ handling
   │  └reject→ rejected        (reported and registered can also be dispatched directly)
   └─on_spot→ feedback        dispatched ─return→ returned ─dispatch→ …
handling ─feedback→ feedback ─verify(pass)→ verified ─evaluate→ closed ─reopen→ registered
                       └verify(fail)→ rework ─feedback→ feedback (rework counted)
handling ⇄ suspended (suspend / resume); extensions: request_extension, decide_extension.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import RULES, Principal
from app.config import get_settings
from app.errors import ApiError, not_found
from app.events.outbox import emit
from app.i18n import ACTION_LABELS, STATUS_LABELS, label
from app.loop import deadlines
from app.loop.registry import Registry
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

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "action_not_allowed": (409, "当前状态下不能执行该操作", "This action is not allowed now"),
    "if_match_required": (
        428,
        "需要 If-Match（事件的 ETag）",
        "If-Match (the case's ETag) is required",
    ),
    "version_mismatch": (
        412,
        "事件已被他人修改，请刷新后重试",
        "The case changed meanwhile; reload and retry",
    ),
}
"""This module's error codes (registered in `app.extensions`)."""
ACTION_NAMES: dict[str, tuple[str, str]] = {
    "register": ("立案", "registered"),
    "reject": ("不予立案", "rejected"),
    "whistle": ("吹哨", "whistle blown"),
    "dispatch": ("派遣", "dispatched"),
    "sign_in": ("签收（报到）", "signed in"),
    "return": ("退回", "returned"),
    "request_extension": ("申请延期", "extension requested"),
    "decide_extension": ("审批延期", "extension decided"),
    "suspend": ("挂起", "suspended"),
    "resume": ("恢复处置", "resumed"),
    "feedback": ("处置反馈", "feedback"),
    "on_spot": ("自行处置", "handled on the spot"),
    "verify": ("核查", "verified on site"),
    "evaluate": ("满意度评价", "satisfaction recorded"),
    "reopen": ("重新打开", "reopened"),
}
"""Labels of this module's case-step actions (registered in `app.extensions`)."""


@dataclass
class Ctx:
    session: AsyncSession
    case: Any
    who: Principal
    body: Any
    now: Any
    detail: dict[str, Any]
    to_status: str | None = None
    case_sets: dict[str, Any] | None = None


Handler = Callable[[Ctx], Awaitable[None]]


@dataclass(frozen=True)
class Action:
    name: str
    permission: str
    from_states: frozenset[str]
    body: type[BaseModel]
    handler: Handler
    summary: str
    department: bool = False
    """Done by a department to its own assignment."""


ACTIONS: Registry[Action] = Registry()


def action(
    name: str,
    permission: str,
    from_states: set[str],
    body: type[BaseModel],
    summary: str,
    department: bool = False,
) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        ACTIONS[name] = Action(
            name, permission, frozenset(from_states), body, fn, summary, department
        )
        return fn

    return register


# --- helpers ----------------------------------------------------------------------------------


async def _assignments(ctx: Ctx, states: tuple[str, ...] | None = None) -> list[Any]:
    rows = await ctx.session.execute(
        text("SELECT * FROM case_assignments WHERE case_id = :c ORDER BY role DESC, id"),
        {"c": ctx.case.id},
    )
    out = [r for r in rows if r.state != "withdrawn"]
    return [r for r in out if states is None or r.state in states]


async def _my_assignment(ctx: Ctx, states: tuple[str, ...]) -> Any:
    mine = {p.department_id for p in ctx.who.posts if p.department_id}
    rows = await _assignments(ctx, states)
    for r in rows:
        if r.department_id in mine or (ctx.who.is_admin and r.role == "lead"):
            return r
    raise ApiError(
        "action_not_allowed",
        detail="您的部门没有处于该状态的派遣任务",
        detail_en="Your department has no assignment of this case in that state",
    )


async def _set_assignment(ctx: Ctx, assignment_id: int, **values: Any) -> None:
    sets = ", ".join(f"{k} = :{k}" for k in values)
    await ctx.session.execute(
        text(f"UPDATE case_assignments SET {sets} WHERE id = :id"), {**values, "id": assignment_id}
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
            "SELECT detail FROM case_events WHERE case_id = :c AND action = 'whistle' "
            "ORDER BY id DESC LIMIT 1"
        ),
        {"c": ctx.case.id},
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
            "AND state IN ('dispatched', 'handling', 'suspended', 'rework')"
        ),
        {"c": ctx.case.id},
    )
    for dept, role in [(lead, "lead"), *[(d, "co") for d in co]]:
        await ctx.session.execute(
            text(
                """
            INSERT INTO case_assignments (case_id, department_id, role, dispatched_by, limits,
                                          sign_in_due, provisional)
            VALUES (:c, :d, :role, :by, CAST(:limits AS jsonb), :due, :prov)
            """
            ),
            {
                "c": ctx.case.id,
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
)
async def _sign_in(ctx: Ctx) -> None:
    a = await _my_assignment(ctx, ("dispatched",))
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
)
async def _return(ctx: Ctx) -> None:
    a = await _my_assignment(ctx, ("dispatched",))
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
)
async def _request_extension(ctx: Ctx) -> None:
    a = await _my_assignment(ctx, ("handling", "rework"))
    if a.extension and a.extension.get("state") == "pending":
        raise ApiError(
            "action_not_allowed",
            detail="已有待审批的延期申请",
            detail_en="An extension request is already pending",
        )
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
)
async def _decide_extension(ctx: Ctx) -> None:
    pending = [
        a
        for a in await _assignments(ctx, ("handling", "rework"))
        if a.extension and a.extension.get("state") == "pending"
    ]
    if not pending:
        raise ApiError(
            "action_not_allowed",
            detail="没有待审批的延期申请",
            detail_en="No extension request is pending",
        )
    a = pending[0]
    ext = dict(a.extension)
    ext.update(
        {"state": "approved" if ctx.body.approve else "refused", "decided_by": ctx.who.user_id}
    )
    values: dict[str, Any] = {"extension": orjson.dumps(ext).decode()}
    if ctx.body.approve:
        values["handle_due"], prov = await _due(ctx, a.handle_due, ext["amount"], ext["unit"])
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
    for a in await _assignments(ctx, ("handling",)):
        left[str(a.id)] = cal.working_hours_between(ctx.now, a.handle_due) if a.handle_due else 0
        await _set_assignment(ctx, a.id, state="suspended")
    ctx.to_status = "suspended"
    ctx.detail.update({"reason": ctx.body.reason, "hours_left": left})


@action("resume", "loop:dispatch", {"suspended"}, NoteIn, "Resume suspended work")
async def _resume(ctx: Ctx) -> None:
    last = (
        await ctx.session.execute(
            text(
                "SELECT detail FROM case_events WHERE case_id = :c AND action = 'suspend' "
                "ORDER BY id DESC LIMIT 1"
            ),
            {"c": ctx.case.id},
        )
    ).scalar() or {}
    left = last.get("hours_left", {})
    for a in await _assignments(ctx, ("suspended",)):
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
)
async def _feedback(ctx: Ctx) -> None:
    a = await _my_assignment(ctx, ("handling", "rework"))
    await _set_assignment(ctx, a.id, state="feedback", feedback_at=ctx.now)
    others = [
        x
        for x in await _assignments(ctx, ("dispatched", "handling", "rework", "suspended"))
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


@action(
    "verify",
    "loop:grid",
    {"feedback"},
    VerifyIn,
    "Check on site (核查): pass, or send back for rework (返工)",
)
async def _verify(ctx: Ctx) -> None:
    ctx.detail["passed"] = ctx.body.passed
    if ctx.body.passed:
        for a in await _assignments(ctx, ("feedback",)):
            await _set_assignment(ctx, a.id, state="done")
        ctx.to_status = "verified"
        return
    done = await _assignments(ctx, ("feedback",))
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
)
async def _reopen(ctx: Ctx) -> None:
    days = get_settings().reopen_days
    if (
        ctx.case.duplicate_of is not None
        or ctx.case.closed_at is None
        or (ctx.now - ctx.case.closed_at > timedelta(days=days))
    ):
        raise ApiError(
            "action_not_allowed",
            detail=f"只能在结案后 {days} 天内重新打开（重复件不能重新打开）",
            detail_en=f"A case can be reopened within {days} days of closing (duplicates cannot)",
        )
    ctx.to_status = "registered"
    ctx.detail["reason"] = ctx.body.reason
    ctx.case_sets = {
        "closed_at": None,
        "satisfaction": None,
        "reopen_count": ctx.case.reopen_count + 1,
    }


# --- running an action ------------------------------------------------------------------------


def allowed_actions(status: str, who: Principal) -> list[str]:
    """What the caller could do to a case in this status (for 409 answers and consoles)."""
    return [
        a.name
        for a in ACTIONS.values()
        if status in a.from_states and who.posts_for(RULES[a.permission])
    ]


def parse_if_match(value: str | None) -> int:
    if not value:
        raise ApiError("if_match_required", field="If-Match")
    v = value.strip()
    if v.startswith("W/"):
        v = v[2:]
    try:
        return int(v.strip('"'))
    except ValueError:
        raise ApiError(
            "version_mismatch",
            field="If-Match",
            detail="If-Match 无效",
            detail_en="Malformed If-Match",
        ) from None


async def perform(
    session: AsyncSession,
    case_id: int,
    name: str,
    body: BaseModel,
    who: Principal,
    if_match: str | None,
    request: Request | None = None,
) -> int:
    """Run one action; returns the new timeline step's id. Commits."""
    spec = ACTIONS[name]
    expected = parse_if_match(if_match)
    case = (
        await session.execute(
            text("SELECT * FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id}
        )
    ).first()
    if case is None:
        raise not_found("事件", "Case", case_id)
    if case.version != expected:
        raise ApiError(
            "version_mismatch",
            headers={"ETag": f'"{case.version}"'},
            extra={"current_version": case.version},
        )
    if case.status not in spec.from_states:
        allowed = allowed_actions(case.status, who)
        raise ApiError(
            "action_not_allowed",
            detail=f"事件处于「{label(STATUS_LABELS, case.status, 'zh')}」，不能{label(ACTION_LABELS, name, 'zh')}",
            detail_en=f"The case is {case.status}; {name} is not allowed",
            extra={"case_status": case.status, "allowed_actions": allowed},
        )
    now = (await session.execute(text("SELECT now()"))).scalar_one()
    note = getattr(body, "note", "") or ""
    ctx = Ctx(session=session, case=case, who=who, body=body, now=now, detail={})
    await spec.handler(ctx)
    to_status = ctx.to_status or case.status
    sets = {"status": to_status, **(ctx.case_sets or {})}
    assignments = ", ".join(f"{k} = :s_{k}" for k in sets)
    await session.execute(
        text(
            f"UPDATE cases SET {assignments}, version = version + 1, updated_at = now() "
            "WHERE id = :id"
        ),
        {**{f"s_{k}": v for k, v in sets.items()}, "id": case_id},
    )
    post = next((p.id for p in who.posts_for(RULES[spec.permission])), None)
    event_id = (
        await session.execute(
            text(
                """
        INSERT INTO case_events (case_id, actor_id, post_id, action, from_status, to_status,
                                 note, detail)
        VALUES (:c, :a, :p, :action, :f, :t, :note, CAST(:detail AS jsonb)) RETURNING id
        """
            ),
            {
                "c": case_id,
                "a": who.user_id,
                "p": post,
                "action": name,
                "f": case.status,
                "t": to_status,
                "note": note,
                "detail": orjson.dumps(ctx.detail, default=str).decode(),
            },
        )
    ).scalar_one()
    keep = ("sign_in_due", "handle_due", "passed", "satisfaction", "reason")
    await emit(
        session,
        f"case.{name}",
        case_id,
        {
            "case_id": case_id,
            "number": case.number,
            "action": name,
            "from_status": case.status,
            "to_status": to_status,
            "event_id": event_id,
            "version": case.version + 1,
            "actor": who.display_name,
            **{k: v for k, v in ctx.detail.items() if k in keep},
        },
    )
    await session.commit()
    return int(event_id)
