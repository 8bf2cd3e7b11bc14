from __future__ import annotations

from datetime import datetime

from pydantic import Field

from app.schemas import RequestModel, ResponseModel


class PushKeysIn(RequestModel):
    p256dh: str = Field(min_length=80, max_length=200, pattern=r"^[A-Za-z0-9_-]+={0,2}$")
    auth: str = Field(min_length=16, max_length=100, pattern=r"^[A-Za-z0-9_-]+={0,2}$")


class PushSubscriptionIn(RequestModel):
    """The browser's `PushSubscription.toJSON()`, as the field app sends it."""

    endpoint: str = Field(min_length=10, max_length=2000)
    expirationTime: int | None = Field(
        None, ge=0, le=253_402_214_400_000, description="Milliseconds since the epoch, or null"
    )
    keys: PushKeysIn
    user_agent: str = Field("", max_length=300)


class PushSubscriptionOut(ResponseModel):
    id: int
    channel: str
    endpoint: str
    expires_at: datetime | None
    user_agent: str
    active: bool
    created_at: datetime
    last_success_at: datetime | None


class PushKeyOut(ResponseModel):
    public_key: str = Field(description="The VAPID applicationServerKey (base64url)")
    channel: str
