"""/api/v1/webhooks — departments subscribe their own systems to the events of their cases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from app.auth.policy import WebhookManager, WebhookMonitor
from app.db import DbSession
from app.events.webhooks import service
from app.events.webhooks.schemas import (
    FailingDelivery,
    SubscriptionCreated,
    SubscriptionIn,
    SubscriptionOut,
)
from app.http import ApiRoute
from app.schemas import IdPath

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"], route_class=ApiRoute)


@router.get("", response_model=list[SubscriptionOut], summary="Your department's subscriptions")
async def list_subscriptions(session: DbSession, who: WebhookManager) -> list[dict[str, Any]]:
    return await service.list_subscriptions(session, who)


@router.post(
    "",
    response_model=SubscriptionCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a URL to your department's case events",
    responses={
        403: {"description": "The department is not yours"},
        404: {"description": "No such department"},
        422: {"description": "Unknown event type; a loopback, private or link-local address"},
    },
)
async def subscribe(
    body: SubscriptionIn, request: Request, session: DbSession, who: WebhookManager
) -> dict[str, Any]:
    out = await service.subscribe(session, who, body, request)
    return out


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Unsubscribe")
async def unsubscribe(
    subscription_id: IdPath, request: Request, session: DbSession, who: WebhookManager
) -> Response:
    await service.unsubscribe(session, who, subscription_id, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/failing",
    response_model=list[FailingDelivery],
    summary="Deliveries that keep failing (for administrators)",
)
async def failing(session: DbSession, who: WebhookMonitor) -> list[dict[str, Any]]:
    return await service.failing(session)
