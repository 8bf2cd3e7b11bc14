"""One-use tickets for the live stream: browsers' EventSource cannot send an Authorization
header, so a console first asks `POST /api/v1/events/ticket` (with its bearer token) for a ticket
valid 60 s (also set as an HttpOnly cookie on /api/v1/events); the stream then authenticates it
(`authenticate`: `?ticket=`, else a bearer token, else the cookie). A ticket opens one stream,
once, whichever worker sees it."""

from __future__ import annotations

import time
import uuid

import jwt
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import ALGORITHM, Principal, decode_access_token, load_principal
from app.config import get_settings
from app.errors import ApiError

TICKET_SECONDS = 60
TICKET_TYPE = "sse"


def create_ticket(user_id: int, session_id: uuid.UUID) -> tuple[str, int]:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": now,
        "exp": now + TICKET_SECONDS,
        "jti": uuid.uuid4().hex,
        "typ": TICKET_TYPE,
    }
    return jwt.encode(claims, get_settings().signing_key, algorithm=ALGORITHM), TICKET_SECONDS


def _bad_ticket() -> ApiError:
    return ApiError(
        "invalid_token",
        detail="事件流票据无效、已过期或已使用",
        detail_en="The stream ticket is invalid, expired or already used",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def decode_ticket(ticket: str) -> tuple[int, uuid.UUID, str]:
    try:
        claims = jwt.decode(
            ticket,
            get_settings().signing_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "sid", "jti"]},
        )
        if claims.get("typ") != TICKET_TYPE:
            raise ValueError("not a stream ticket")
        return int(claims["sub"]), uuid.UUID(claims["sid"]), str(claims["jti"])
    except (jwt.PyJWTError, ValueError, KeyError):
        raise _bad_ticket() from None


_USE_TICKET = text(
    """
    INSERT INTO idempotency_keys (user_id, key, method_path, request_hash, state, lease_until,
                                  status_code)
    VALUES (:uid, :key, 'GET /api/v1/events/stream', :jti, 'done', now(), 200)
    ON CONFLICT (user_id, key) DO NOTHING
    RETURNING true
    """
)
"""A ticket is used once, whichever worker sees it: its id is claimed like an Idempotency-Key
(kept, then purged, with them)."""


async def authenticate(
    session: AsyncSession, ticket: str | None, bearer: str | None, cookie: str | None
) -> Principal:
    """A stream's caller: `?ticket=`, else a bearer token, else the ticket cookie."""
    if ticket or (not bearer and cookie):
        uid, sid, jti = decode_ticket(ticket or cookie or "")
        who = await load_principal(session, uid, sid)
        used = (
            await session.execute(_USE_TICKET, {"uid": uid, "key": f"sse-ticket:{jti}", "jti": jti})
        ).first()
        if used is None:
            raise _bad_ticket()
        return who
    if bearer:
        uid, sid = decode_access_token(bearer)
        return await load_principal(session, uid, sid)
    raise ApiError("unauthenticated", headers={"WWW-Authenticate": "Bearer"})


def bearer_of(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None
