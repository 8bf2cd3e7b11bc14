"""Departments' webhook subscriptions: who may subscribe what, where to (public addresses only),
and the queries behind /api/v1/webhooks (the request's unit of work commits)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.policy import Principal
from app.errors import ApiError, not_found
from app.events.webhooks import targets
from app.events.webhooks.delivery import new_secret
from app.events.webhooks.schemas import SubscriptionIn


def my_departments(who: Principal) -> set[int] | None:
    """The departments whose subscriptions the caller manages; None = all (administrator)."""
    if who.is_admin:
        return None
    return {p.department_id for p in who.posts if p.department_id is not None}


_LIST = """
    SELECT s.id, s.department_id, s.url, s.event_types, s.active, s.created_at,
           coalesce(d.delivered, 0) AS delivered, coalesce(d.pending, 0) AS pending,
           coalesce(d.failing, 0) AS failing, coalesce(d.gave_up, 0) AS gave_up, d.last_error
    FROM webhook_subscriptions s
    LEFT JOIN (
        -- Per subscription over every district's deliveries (on Citus: one aggregate across
        -- the shards, joined with the reference table on the coordinator).
        SELECT d.subscription_id,
               count(*) FILTER (WHERE d.delivered_at IS NOT NULL) AS delivered,
               count(*) FILTER (WHERE d.delivered_at IS NULL AND NOT d.gave_up) AS pending,
               count(*) FILTER (WHERE d.delivered_at IS NULL AND NOT d.gave_up
                                AND d.attempts > 0) AS failing,
               count(*) FILTER (WHERE d.gave_up) AS gave_up,
               (array_agg(d.last_error ORDER BY d.id DESC)
                    FILTER (WHERE d.last_error IS NOT NULL))[1] AS last_error
        FROM webhook_deliveries d GROUP BY d.subscription_id
    ) d ON d.subscription_id = s.id
    WHERE s.active AND (CAST(:depts AS bigint[]) IS NULL OR s.department_id = ANY(:depts))
    {extra}
    ORDER BY s.id
"""
_ALL = text(_LIST.format(extra=""))
_ONE = text(_LIST.format(extra="AND s.id = :id"))


async def list_subscriptions(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    mine = my_departments(who)
    rows = await session.execute(_ALL, {"depts": sorted(mine) if mine is not None else None})
    return [dict(r._mapping) for r in rows]


async def _department(session: AsyncSession, who: Principal, wanted: int | None) -> int:
    """The department to subscribe for: one that exists (else 404) and is the caller's (else
    403; the list of departments is public, so naming another one hides nothing)."""
    mine = my_departments(who)
    if wanted is None:
        if not mine or len(mine) != 1:
            raise ApiError(
                "validation_error",
                field="department_id",
                detail="请指定部门",
                detail_en="Name the department",
            )
        return next(iter(mine))
    exists = (
        await session.execute(text("SELECT 1 FROM departments WHERE id = :d"), {"d": wanted})
    ).scalar()
    if not exists:
        raise ApiError(
            "not_found",
            field="department_id",
            detail=f"部门不存在：{wanted}",
            detail_en=f"No such department: {wanted}",
        )
    if mine is not None and wanted not in mine:
        raise ApiError(
            "forbidden",
            field="department_id",
            detail=f"只能为本部门订阅（部门 {wanted} 不是您的部门）",
            detail_en=f"You can subscribe only for your own department (not {wanted})",
        )
    return wanted


async def subscribe(
    session: AsyncSession, who: Principal, body: SubscriptionIn, request: Request
) -> dict[str, Any]:
    dept = await _department(session, who, body.department_id)
    url = str(body.url)
    why = await targets.refusal(url)
    if why is not None:
        raise ApiError("validation_error", field="url", detail=why[0], detail_en=why[1])
    secret = new_secret()
    sid = (
        await session.execute(
            text(
                "INSERT INTO webhook_subscriptions (department_id, url, secret, event_types) "
                "VALUES (:d, :u, :s, :t) RETURNING id"
            ),
            {"d": dept, "u": url, "s": secret, "t": body.event_types},
        )
    ).scalar_one()
    await record(
        session,
        "webhook_subscribed",
        actor=who,
        request=request,
        object_type="webhook",
        object_id=sid,
        detail={"url": url, "department_id": dept, "event_types": body.event_types},
    )
    row = (await session.execute(_ONE, {"depts": None, "id": sid})).one()
    return {**row._mapping, "secret": secret}


async def unsubscribe(
    session: AsyncSession, who: Principal, subscription_id: int, request: Request
) -> None:
    mine = my_departments(who)
    dept = (
        await session.execute(
            text("SELECT department_id FROM webhook_subscriptions WHERE id = :id AND active"),
            {"id": subscription_id},
        )
    ).scalar()
    if dept is None or (mine is not None and dept not in mine):
        raise not_found("订阅", "Subscription", subscription_id)
    await session.execute(
        text("UPDATE webhook_subscriptions SET active = false WHERE id = :id"),
        {"id": subscription_id},
    )
    await record(
        session,
        "webhook_unsubscribed",
        actor=who,
        request=request,
        object_type="webhook",
        object_id=subscription_id,
    )


_FAILING = text(
    """
    SELECT d.id, d.subscription_id, s.department_id, s.url, d.event_id, d.attempts,
           d.gave_up, d.last_status, d.last_error, d.next_attempt_at
    FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
    WHERE d.delivered_at IS NULL AND (d.attempts >= 3 OR d.gave_up)
    ORDER BY d.gave_up DESC, d.attempts DESC, d.id LIMIT 500
    """
)


async def failing(session: AsyncSession) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in await session.execute(_FAILING)]
