"""Bearer access tokens (JWT, HS256, short-lived; the refresh tokens are in `app.auth.service`),
and the two forms of a personal API token (`wgp_…`, sent as a header; `wgs_…`, the signed URL
prefix derived from it for clients that cannot send headers)."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
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


_VERIFIED: dict[str, tuple[int, uuid.UUID, int]] = {}
"""Access tokens this process has verified: token → (user, session, exp). A token is immutable
and its signature holds until it expires, so it is verified once (PyJWT's decode: 32.6 µs of
CPU against 0.3 µs from here, `bench/bench_auth.py`) and then only its expiry is checked. Only a token whose
signature and claims passed enters; the session itself is still checked by `load_principal`."""
_VERIFIED_MAX = 10_000
_verified_with = ""


def decode_access_token(token: str) -> tuple[int, uuid.UUID]:
    global _verified_with
    key = get_settings().signing_key
    if key != _verified_with:  # another key (a test's settings): nothing verified holds
        _VERIFIED.clear()
        _verified_with = key
    known = _VERIFIED.get(token)
    if known is not None:
        if known[2] > time.time():
            return known[0], known[1]
        del _VERIFIED[token]
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "sid"]},
        )
        if claims.get("typ") != "access":
            raise ValueError("not an access token")
        out = int(claims["sub"]), uuid.UUID(claims["sid"])
        exp = int(claims["exp"])
    except (jwt.PyJWTError, ValueError, KeyError, TypeError):
        raise ApiError(
            "invalid_token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None
    if len(_VERIFIED) >= _VERIFIED_MAX:
        del _VERIFIED[next(iter(_VERIFIED))]  # the oldest first
    _VERIFIED[token] = (*out, exp)
    return out


PERSONAL = "wgp_"
"""A personal API token: `wgp_` and 43 characters of base64url (256 random bits)."""
SIGNED = "wgs_"
"""A signed URL credential: `wgs_`, the token's id (32 hex) and an HMAC of it (40 hex)."""
_SIGNED = re.compile(r"^wgs_([0-9a-f]{32})([0-9a-f]{40})$")


def new_personal_token() -> str:
    return PERSONAL + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What is stored of a personal token: its SHA-256 (the token has 256 bits of entropy, so a
    plain hash is safe; a slow hash would cost every request)."""
    return hashlib.sha256(token.encode()).hexdigest()


def _mac(token_id: uuid.UUID, digest: str) -> str:
    key = get_settings().signing_key.encode()
    return hmac.new(key, f"signed-url:{token_id.hex}:{digest}".encode(), "sha256").hexdigest()[:40]


def signed_credential(token_id: uuid.UUID, digest: str) -> str:
    """The URL form of a token: bound to the token (revoking it ends the URL) and to the
    server's key, and not the token itself (the URL in a QGIS project cannot be replayed as a
    header against the rest of the API: the policy keeps it to the map)."""
    return f"{SIGNED}{token_id.hex}{_mac(token_id, digest)}"


def parse_signed(credential: str) -> tuple[uuid.UUID, str] | None:
    m = _SIGNED.match(credential)
    return (uuid.UUID(m.group(1)), m.group(2)) if m else None


def signed_matches(token_id: uuid.UUID, digest: str, mac: str) -> bool:
    return hmac.compare_digest(_mac(token_id, digest), mac)
