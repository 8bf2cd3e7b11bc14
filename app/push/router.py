"""Web Push for the field app: the server's key, and the caller's own devices."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response, status

from app.auth.policy import OwnWork
from app.db import DbSession
from app.http import ApiRoute
from app.i18n import request_lang
from app.push import service, vapid
from app.push.schemas import PushKeyOut, PushSubscriptionIn, PushSubscriptionOut
from app.schemas import IdPath

router = APIRouter(
    prefix="/api/v1/me/push",
    tags=["push"],
    route_class=ApiRoute,
    dependencies=[Depends(request_lang)],
)


@router.get(
    "/key",
    response_model=PushKeyOut,
    summary="The VAPID applicationServerKey to subscribe with (pushManager.subscribe)",
)
async def key(who: OwnWork) -> Any:
    return {"public_key": vapid.public_key(), "channel": "webpush"}


@router.post(
    "/subscriptions",
    response_model=PushSubscriptionOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register this device: the browser's PushSubscription JSON",
    description="The same endpoint registered again (by anyone) is the same device, now the "
    "caller's. Messages (a new task, an overdue reminder, a case sent back, a meeting "
    "resolution) are held outside the caller's duty time until the next duty starts.",
)
async def subscribe(body: PushSubscriptionIn, session: DbSession, who: OwnWork) -> Any:
    sub_id = await service.subscribe(session, who, body)
    return (await service.mine(session, who, sub_id))[0]


@router.get("/subscriptions", response_model=list[PushSubscriptionOut], summary="My devices")
async def list_mine(session: DbSession, who: OwnWork) -> Any:
    return await service.mine(session, who)


@router.delete(
    "/subscriptions/{subscription_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Forget a device",
)
async def unsubscribe(subscription_id: IdPath, session: DbSession, who: OwnWork) -> Response:
    await service.unsubscribe(session, who, subscription_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
