"""What every community mechanism keeps of a change: a timeline step, an audit entry, an event
for the live stream; and the 409 answer of its small state machines."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas.service import up_chain
from app.audit.service import record
from app.auth.policy import Principal
from app.community.areas import Community
from app.community.models import Step
from app.errors import ApiError
from app.events import outbox
from app.schemas import SHANGHAI


async def step(
    session: AsyncSession,
    community: Community,
    object_type: str,
    object_id: int,
    action: str,
    who: Principal | None,
    note: str = "",
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Add a timeline step (commits with the change it describes)."""
    s = Step(
        district_id=community.district_id,
        community_id=community.id,
        object_type=object_type,
        object_id=object_id,
        action=action,
        actor_id=who.user_id if who else None,
        actor=who.display_name if who else None,
        note=note,
        detail=orjson.loads(orjson.dumps(detail or {}, default=str)),
    )
    if at is not None:
        s.at = at
    session.add(s)


async def timeline(session: AsyncSession, object_type: str, object_id: int) -> list[Step]:
    rows = await session.execute(
        select(Step)
        .where(Step.object_type == object_type, Step.object_id == object_id)
        .order_by(Step.id)
    )
    return list(rows.scalars())


_EMIT = text(
    """
    INSERT INTO event_intents (type, district_id, area_ids, department_ids, payload)
    VALUES (:type, :district, CAST(:areas AS bigint[]), CAST(:depts AS bigint[]),
            CAST(:payload AS jsonb))
    """
)
_UNIT_DEPARTMENT = text(
    "SELECT department_id FROM community_units WHERE id = :unit AND department_id IS NOT NULL"
)


async def emit_community(
    session: AsyncSession, type_: str, community_id: int, payload: dict[str, Any]
) -> None:
    """An event about a community object for the live stream (seen by those whose scope covers
    the community) and, when it names a unit (`unit_id`) that is a district department, for that
    department's console and webhooks too; published when the change commits."""
    # The chain, the unit's department and the intent in three statements: the intent is a
    # table of the Citus coordinator, never joined with the reference tables.
    chain, district = await up_chain(session, community_id)
    unit = payload.get("unit_id")
    depts = (
        list((await session.execute(_UNIT_DEPARTMENT, {"unit": unit})).scalars())
        if unit is not None
        else []
    )
    outbox.queued(session)
    await session.execute(
        _EMIT,
        {
            "type": type_,
            "district": district,
            "areas": chain,
            "depts": depts,
            "payload": orjson.dumps(
                {"community_id": community_id, **payload}, default=str
            ).decode(),
        },
    )


async def audit(
    session: AsyncSession,
    action: str,
    who: Principal | None,
    request: Request | None,
    object_type: str,
    object_id: int,
    detail: dict[str, Any] | None = None,
) -> None:
    await record(
        session,
        action,
        actor=who,
        request=request,
        object_type=object_type,
        object_id=object_id,
        detail=orjson.loads(orjson.dumps(detail or {}, default=str)),
    )


def check_state(
    kind_zh: str, kind_en: str, state: str, action: str, machine: dict[str, set[str]]
) -> None:
    """A small state machine: `machine` maps each action to the states it may start from."""
    if state in machine.get(action, set()):
        return
    allowed = sorted(a for a, states in machine.items() if state in states)
    raise state_conflict(
        f"{kind_zh}当前状态为 {state}，不能执行 {action}",
        f"The {kind_en} is {state}; {action} is not allowed",
        state,
        allowed,
    )


def state_conflict(zh: str, en: str, state: str, allowed: list[str], **extra: Any) -> ApiError:
    """409 `state_conflict`: what was refused, the state, the actions allowed in it."""
    return ApiError(
        "state_conflict",
        detail=zh,
        detail_en=en,
        extra={"state": state, "allowed_actions": allowed, **extra},
    )


# --- quarters ---------------------------------------------------------------------------------


def quarter(at: datetime | date) -> str:
    """'2026Q4': the quarter (Asia/Shanghai) a moment or day falls in."""
    d = at.astimezone(SHANGHAI).date() if isinstance(at, datetime) else at
    return f"{d.year}Q{(d.month - 1) // 3 + 1}"


def quarter_bounds(period: str) -> tuple[date, date]:
    """First day of the quarter and first day of the next."""
    year, q = int(period[:4]), int(period[5])
    start = date(year, 3 * (q - 1) + 1, 1)
    end = date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1)
    return start, end
