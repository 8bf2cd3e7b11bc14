"""The server's VAPID key (RFC 8292): from `WANGGE_VAPID_PRIVATE_KEY`, required in production;
elsewhere derived from the development signing key, so every process of a development or test
server has the same key (the field app's subscriptions stay valid across restarts)."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from app.config import get_settings

_ORDER = int("FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=4)
def _key(configured: str | None, env: str, fallback: str) -> ec.EllipticCurvePrivateKey:
    if configured:
        if configured.lstrip().startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(configured.encode(), password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise RuntimeError("WANGGE_VAPID_PRIVATE_KEY is not an EC key")
            return key
        return ec.derive_private_key(int.from_bytes(unb64url(configured), "big"), ec.SECP256R1())
    if env == "production":
        raise RuntimeError("WANGGE_VAPID_PRIVATE_KEY must be set when ENV=production")
    seed = int.from_bytes(hashlib.sha256(("vapid:" + fallback).encode()).digest(), "big")
    return ec.derive_private_key(seed % (_ORDER - 1) + 1, ec.SECP256R1())


def private_key() -> ec.EllipticCurvePrivateKey:
    s = get_settings()
    fallback = "" if s.vapid_private_key or s.env == "production" else s.signing_key
    return _key(s.vapid_private_key, s.env, fallback)


def public_key() -> str:
    """The applicationServerKey the field app subscribes with (base64url, uncompressed point)."""
    raw = (
        private_key()
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )
    return b64url(raw)


def authorization(audience: str, expires: int) -> str:
    """The `Authorization: vapid t=<JWT>,k=<public key>` header for one push service."""
    v = Vapid02(private_key=private_key())
    claims = {"aud": audience, "exp": expires, "sub": get_settings().vapid_subject}
    return str(v.sign(claims)["Authorization"])


def generate() -> str:
    """A new private key, base64url (for `WANGGE_VAPID_PRIVATE_KEY`)."""
    key = ec.generate_private_key(ec.SECP256R1())
    return b64url(key.private_numbers().private_value.to_bytes(32, "big"))
