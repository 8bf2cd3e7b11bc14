"""Bearer access tokens (JWT, HS256, short-lived; the refresh tokens are in `app.auth.service`)."""

from __future__ import annotations

import time
import uuid

import jwt

from app.config import get_settings
from app.errors import ApiError

ALGORITHM = "HS256"


def create_access_token(
    user_id: int, session_id: uuid.UUID, minutes: int | None = None
) -> tuple[str, int]:
    """A signed access token for the session; `minutes` overrides the setting (for tools that
    mint their own, like the fuzzer, whose runs outlast a 15-minute token)."""
    s = get_settings()
    now = int(time.time())
    ttl = (minutes or s.access_token_minutes) * 60
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": now,
        "exp": now + ttl,
        "typ": "access",
    }
    return jwt.encode(claims, s.signing_key, algorithm=ALGORITHM), ttl


def decode_access_token(token: str) -> tuple[int, uuid.UUID]:
    try:
        claims = jwt.decode(
            token,
            get_settings().signing_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "sid"]},
        )
        if claims.get("typ") != "access":
            raise ValueError("not an access token")
        return int(claims["sub"]), uuid.UUID(claims["sid"])
    except (jwt.PyJWTError, ValueError, KeyError):
        raise ApiError(
            "invalid_token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None
