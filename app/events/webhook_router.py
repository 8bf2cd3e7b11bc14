"""/api/v1/webhooks — departments subscribe their own systems to the events of their cases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from pydantic import AnyHttpUrl, Field
from sqlalchemy import text

from app.audit.service import record
from app.auth.policy import Principal, WebhookManager, WebhookMonitor
from app.db import DbSession
from app.errors import ApiError, not_found
from app.events.webhooks import new_secret
from app.http import ApiRoute
from app.schemas import LocalTime, RequestModel, ResponseModel

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=ApiRoute)


class SubscriptionIn(RequestModel):
    department_id: int | None = Field(None, description="Default: your department")
    url: AnyHttpUrl
    event_types: list[str] = Field(
        default_factory=list,
        max_length=30,
        description="e.g. case.dispatch, case.overdue; empty: all",
    )


class SubscriptionOut(ResponseModel):
    id: int
    department_id: int
    url: str
    event_types: list[str]
    active: bool
    created_at: LocalTime
    delivered: int
    pending: int
    failing: int = Field(description="Undelivered after at least one failed attempt")
    gave_up: int
    last_error: str | None


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Shown once: verify Wangge-Signature with it")


class FailingDelivery(ResponseModel):
    id: int
    subscription_id: int
    department_id: int
    url: str
    event_id: int
    attempts: int
    gave_up: bool
    last_status: int | None
    last_error: str | None
    next_attempt_at: LocalTime


def _my_departments(who: Principal) -> set[int] | None:
    if who.is_admin:
        return None
    return {p.department_id for p in who.posts if p.department_id is not None}


_LIST = """
    SELECT s.id, s.department_id, s.url, s.event_types, s.active, s.created_at,
           count(d.id) FILTER (WHERE d.delivered_at IS NOT NULL) AS delivered,
           count(d.id) FILTER (WHERE d.delivered_at IS NULL AND NOT d.gave_up) AS pending,
           count(d.id) FILTER (WHERE d.delivered_at IS NULL AND NOT d.gave_up
                               AND d.attempts > 0) AS failing,
           count(d.id) FILTER (WHERE d.gave_up) AS gave_up,
           (SELECT d2.last_error FROM webhook_deliveries d2 WHERE d2.subscription_id = s.id
              AND d2.last_error IS NOT NULL ORDER BY d2.id DESC LIMIT 1) AS last_error
    FROM webhook_subscriptions s LEFT JOIN webhook_deliveries d ON d.subscription_id = s.id
    WHERE s.active AND (CAST(:depts AS bigint[]) IS NULL OR s.department_id = ANY(:depts))
    {extra}
    GROUP BY s.id ORDER BY s.id
"""


@router.get("", response_model=list[SubscriptionOut], summary="Your department's subscriptions")
async def list_subscriptions(session: DbSession, who: WebhookManager) -> list[dict[str, Any]]:
    mine = _my_departments(who)
    rows = await session.execute(
        text(_LIST.format(extra="")), {"depts": sorted(mine) if mine is not None else None}
    )
    return [dict(r._mapping) for r in rows]


@router.post(
    "",
    response_model=SubscriptionCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a URL to your department's case events",
)
async def subscribe(
    body: SubscriptionIn, request: Request, session: DbSession, who: WebhookManager
) -> dict[str, Any]:
    mine = _my_departments(who)
    dept = body.department_id
    if dept is None:
        if not mine or len(mine) != 1:
            raise ApiError(
                "validation_error",
                field="department_id",
                detail="请指定部门",
                detail_en="Name the department",
            )
        dept = next(iter(mine))
    if mine is not None and dept not in mine:
        raise ApiError(
            "validation_error",
            field="department_id",
            detail=f"部门不存在：{dept}",
            detail_en=f"No such department: {dept}",
        )
    exists = (
        await session.execute(text("SELECT 1 FROM departments WHERE id = :d"), {"d": dept})
    ).scalar()
    if not exists:
        raise ApiError(
            "validation_error",
            field="department_id",
            detail=f"部门不存在：{dept}",
            detail_en=f"No such department: {dept}",
        )
    secret = new_secret()
    sid = (
        await session.execute(
            text(
                "INSERT INTO webhook_subscriptions (department_id, url, secret, event_types) "
                "VALUES (:d, :u, :s, :t) RETURNING id"
            ),
            {"d": dept, "u": str(body.url), "s": secret, "t": body.event_types},
        )
    ).scalar_one()
    await record(
        session,
        "webhook_subscribed",
        actor=who,
        request=request,
        object_type="webhook",
        object_id=sid,
        detail={"url": str(body.url), "department_id": dept},
    )
    await session.commit()
    row = (
        await session.execute(
            text(_LIST.format(extra="AND s.id = :id")), {"depts": None, "id": sid}
        )
    ).one()
    return {**row._mapping, "secret": secret}


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Unsubscribe")
async def unsubscribe(
    subscription_id: int, request: Request, session: DbSession, who: WebhookManager
) -> Response:
    mine = _my_departments(who)
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
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/failing",
    response_model=list[FailingDelivery],
    summary="Deliveries that keep failing (for administrators)",
)
async def failing(session: DbSession, who: WebhookMonitor) -> list[dict[str, Any]]:
    rows = await session.execute(
        text(
            """
        SELECT d.id, d.subscription_id, s.department_id, s.url, d.event_id, d.attempts,
               d.gave_up, d.last_status, d.last_error, d.next_attempt_at
        FROM webhook_deliveries d JOIN webhook_subscriptions s ON s.id = d.subscription_id
        WHERE d.delivered_at IS NULL AND (d.attempts >= 3 OR d.gave_up)
        ORDER BY d.gave_up DESC, d.attempts DESC, d.id LIMIT 500
        """
        )
    )
    return [dict(r._mapping) for r in rows]
