"""The closed loop as a state machine. Every action: optimistic concurrency (If-Match) → the one
rule (role, scope, the case's state, the action's guard: `app.loop.actions.refusal`, the same rule
`allowed_actions` lists) → the change (`app.loop.handlers`) → a timeline step with the deadline
it started.

reported ─register→ registered ─whistle→ whistled ─dispatch→ dispatched ─sign_in→ handling
   │  └reject→ rejected        (reported and registered can also be dispatched directly)
   └─on_spot→ feedback        dispatched ─return→ returned ─dispatch→ …
handling ─feedback→ feedback ─verify(pass)→ verified ─evaluate→ closed ─reopen→ registered
                       └verify(fail)→ rework ─feedback→ feedback (rework counted)
handling ⇄ suspended (suspend / resume); extensions: request_extension, decide_extension.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import scope
from app.auth.policy import RULES, Principal
from app.errors import ApiError, not_found
from app.events import outbox
from app.http import if_match_version
from app.loop import handlers  # noqa: F401  (registers the actions)
from app.loop.actions import (
    ACTIONS,
    Action,
    CaseView,
    Ctx,
    allowed_actions,
    allowed_for,
    case_views,
    refusal,
)

__all__ = [
    "ACTIONS",
    "Action",
    "CaseView",
    "allowed_actions",
    "allowed_for",
    "perform",
    "write_step",
]

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


# --- running an action ------------------------------------------------------------------------


def parse_if_match(value: str | None) -> int:
    if not value:
        raise ApiError("if_match_required", field="If-Match")
    version = if_match_version(value)  # strong comparison only: W/"1" and "01" never match
    if version is None:
        raise ApiError(
            "version_mismatch",
            field="If-Match",
            detail='If-Match 无效（应为事件的 ETag，如 "3"，强比较）',
            detail_en='Malformed If-Match (the case\'s ETag, e.g. "3"; strong comparison)',
        )
    return version


_STEP = text(
    """
    WITH ev AS (
        INSERT INTO case_events (case_id, district_id, actor_id, post_id, action, from_status,
                                 to_status, note, detail)
        VALUES (:c, :d, :a, :p, :action, :f, :t, :note, CAST(:detail AS jsonb))
        RETURNING id
    ),
    queued AS (
        INSERT INTO event_intents (type, case_id, district_id, payload)
        SELECT :type, :c, :d, CAST(:payload AS jsonb) || jsonb_build_object('event_id', ev.id)
        FROM ev
    ),
    changed AS (
        INSERT INTO case_changes (district_id, case_id) VALUES (:d, :c)
    )
    SELECT id FROM ev
    """
)
"""An action's timeline step, its event (published at commit) and the case marked for its facts
to be recomputed (migration 0025), in one statement."""


async def perform(
    session: AsyncSession,
    case_id: int,
    name: str,
    body: BaseModel,
    who: Principal,
    if_match: str | None,
    request: Request | None = None,
) -> int:
    """Run one action; returns the new timeline step's id (the unit of work commits)."""
    spec = ACTIONS[name]
    expected = parse_if_match(if_match)
    district = await scope.district_of(session, case_id)
    case = (
        (
            await session.execute(
                text("SELECT * FROM cases WHERE id = :id AND district_id = :d FOR UPDATE"),
                {"id": case_id, "d": district},
            )
        ).first()
        if district is not None
        else None
    )
    if case is None:
        raise not_found("事件", "Case", case_id)
    if case.version != expected:
        raise ApiError(
            "version_mismatch",
            headers={"ETag": f'"{case.version}"'},
            extra={"current_version": case.version},
        )
    now = (await session.execute(text("SELECT now()"))).scalar_one()
    view = (await case_views(session, [case_id]))[case_id]
    refused = refusal(spec, view, who, now)
    if refused is not None:
        refused.extra.update(
            {"case_status": case.status, "allowed_actions": allowed_actions(view, who, now)}
        )
        raise refused
    note = getattr(body, "note", "") or ""
    ctx = Ctx(session=session, case=case, view=view, who=who, body=body, now=now, detail={})
    await spec.handler(ctx)
    return await write_step(
        session,
        case,
        name,
        who,
        to_status=ctx.to_status or case.status,
        note=note,
        detail=ctx.detail,
        sets=ctx.case_sets,
        permission=spec.permission,
    )


_KEEP = ("sign_in_due", "handle_due", "passed", "satisfaction", "reason")
"""The detail keys an event's payload carries (never personal data)."""


async def write_step(
    session: AsyncSession,
    case: Any,
    name: str,
    who: Principal | None,
    *,
    to_status: str,
    note: str = "",
    detail: dict[str, Any] | None = None,
    sets: dict[str, Any] | None = None,
    permission: str | None = None,
    keep: tuple[str, ...] = (),
) -> int:
    """One change of a case on the engine: its status (and `sets`), its version, a timeline step
    (the hash chain), its `case.<name>` event (published at commit) and the facts' mark. The
    loop's actions and the case kinds built on it (disputes) write their steps here. `case` is
    the row read `FOR UPDATE`; returns the step's id."""
    detail = detail or {}
    sets = {"status": to_status, **(sets or {})}
    assignments = ", ".join(f"{k} = :s_{k}" for k in sets)
    await session.execute(
        text(
            f"UPDATE cases SET {assignments}, version = version + 1, updated_at = now(), "
            "change_seq = sync_number() "
            "WHERE id = :id AND district_id = :d"
        ),
        {**{f"s_{k}": v for k, v in sets.items()}, "id": case.id, "d": case.district_id},
    )
    post = (
        next((p.id for p in who.posts_for(RULES[permission])), None)
        if who is not None and permission is not None
        else None
    )
    payload = {
        "case_id": case.id,
        "number": case.number,
        "action": name,
        "from_status": case.status,
        "to_status": to_status,
        "version": case.version + 1,
        "actor": who.display_name if who is not None else None,
        **{k: v for k, v in detail.items() if k in _KEEP + keep},
    }
    outbox.queued(session)
    event_id = (
        await session.execute(
            _STEP,
            {
                "c": case.id,
                "d": case.district_id,
                "a": who.user_id if who is not None else None,
                "p": post,
                "action": name,
                "f": case.status,
                "t": to_status,
                "note": note,
                "detail": orjson.dumps(detail, default=str).decode(),
                "type": f"case.{name}",
                "payload": orjson.dumps(payload, default=str).decode(),
            },
        )
    ).scalar_one()
    return int(event_id)
