"""Identity numbers and phones at rest: AES-256-GCM (authenticated: a changed byte fails to
decrypt) with keys from the settings (`WANGGE_PII_KEYS`, a version per key; every row names its
`key_version`), and a keyed hash (HMAC-SHA256, `WANGGE_PII_HASH_KEY`) for exact search.

A sealed value is `nonce (12 bytes) || ciphertext+tag`; the associated data binds it to its field
(`id_number`, `phone`), so a ciphertext copied from one column to another does not open.
Clear values never go to logs: this module neither logs nor puts them in exceptions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import cached_property, lru_cache

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.config import DEVELOPMENT_KEY, get_settings

DEV_VERSION = 1


def _dev_key(purpose: bytes) -> bytes:
    return hashlib.sha256(purpose + DEVELOPMENT_KEY.encode()).digest()


DEVELOPMENT_PII_KEY = "1:" + base64.b64encode(_dev_key(b"pii-enc:")).decode()
"""The key used outside production when none is set (ENV=production refuses it)."""
DEVELOPMENT_HASH_KEY = base64.b64encode(_dev_key(b"pii-hash:")).decode()


@dataclass(frozen=True, eq=False)
class Keyring:
    keys: dict[int, bytes]
    hash_key: bytes

    @property
    def current(self) -> int:
        return max(self.keys)

    @cached_property
    def aeads(self) -> dict[int, AESGCM]:
        return {v: AESGCM(k) for v, k in self.keys.items()}


def parse_keys(value: str) -> dict[int, bytes]:
    keys: dict[int, bytes] = {}
    for part in value.split(","):
        part = part.strip()
        if not part:
            continue
        version, sep, b64 = part.partition(":")
        if not sep or not version.isdigit() or not 1 <= int(version) <= 32767:
            raise RuntimeError("WANGGE_PII_KEYS: each key is version:base64 (version 1-32767)")
        raw = base64.b64decode(b64, validate=True)
        if len(raw) != 32:
            raise RuntimeError("WANGGE_PII_KEYS: each key must be 32 bytes (AES-256)")
        keys[int(version)] = raw
    if not keys:
        raise RuntimeError("WANGGE_PII_KEYS holds no key")
    return keys


@lru_cache
def keyring() -> Keyring:
    """The keys of the settings; ENV=production refuses to run without them or with the
    development ones (checked when the server starts, `app.main.lifespan`)."""
    s = get_settings()
    if s.env == "production":
        if not s.pii_keys or not s.pii_hash_key:
            raise RuntimeError(
                "WANGGE_PII_KEYS and WANGGE_PII_HASH_KEY must be set when ENV=production"
            )
        dev = parse_keys(DEVELOPMENT_PII_KEY)[DEV_VERSION]
        if dev in parse_keys(s.pii_keys).values() or s.pii_hash_key == DEVELOPMENT_HASH_KEY:
            raise RuntimeError("WANGGE_PII_KEYS is the development key: never in production")
    keys = parse_keys(s.pii_keys or DEVELOPMENT_PII_KEY)
    return Keyring(keys, (s.pii_hash_key or DEVELOPMENT_HASH_KEY).encode())


def seal(value: str, field: str, version: int | None = None) -> tuple[bytes, int]:
    """(nonce || ciphertext, key version) of a clear value."""
    ring = keyring()
    v = ring.current if version is None else version
    nonce = os.urandom(12)
    return nonce + ring.aeads[v].encrypt(nonce, value.encode(), field.encode()), v


def open_sealed(blob: bytes, field: str, version: int) -> str:
    """The clear value (raises `cryptography.exceptions.InvalidTag` if it was altered)."""
    aead = keyring().aeads.get(version)
    if aead is None:
        raise RuntimeError(f"no key of version {version} in WANGGE_PII_KEYS")
    return aead.decrypt(blob[:12], blob[12:], field.encode()).decode()


def keyed_hash(value: str, field: str) -> bytes:
    """HMAC-SHA256 of the normalised value: equal values, equal hashes (exact search)."""
    return hmac.new(keyring().hash_key, field.encode() + b":" + value.encode(), "sha256").digest()
