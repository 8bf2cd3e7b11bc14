"""Public identifiers of the Open311 door: unguessable, not sequential, the bigint key kept inside.

A public id is the internal id (and what kind of object it names) encrypted as one AES block under
a key derived from the signing key (`public_id_key`, else `secret_key`): 32 hex digits. It says
nothing of the id, its neighbours or how many cases there are, cannot be guessed, and decodes
back with no lookup table (nothing to migrate). Anything else decodes to None (a 404)."""

from __future__ import annotations

import hashlib
import hmac
import re
import struct
from functools import lru_cache

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from app.config import get_settings

_TAG = b"w311"
KINDS = {"request": 1, "update": 2}
_HEX = re.compile(r"[0-9a-f]{32}")


@lru_cache(maxsize=4)
def _cipher(secret: str) -> Cipher[modes.ECB]:
    key = hmac.new(secret.encode(), b"wangge open311 public id v1", hashlib.sha256).digest()
    # ECB over exactly one block is a keyed permutation of 128-bit values, which is what an
    # opaque id needs (no two ids share a block, nothing chains).
    return Cipher(algorithms.AES(key[:16]), modes.ECB())


def _secret() -> str:
    s = get_settings()
    return s.public_id_key or s.signing_key


def encode(internal_id: int, kind: str = "request") -> str:
    block = _TAG + struct.pack(">BxxxQ", KINDS[kind], internal_id)
    enc = _cipher(_secret()).encryptor()
    return (enc.update(block) + enc.finalize()).hex()


def decode(public_id: str | None, kind: str = "request") -> int | None:
    """The internal id of a public one of this kind; None for anything else."""
    if public_id is None or not _HEX.fullmatch(public_id):
        return None
    dec = _cipher(_secret()).decryptor()
    block = dec.update(bytes.fromhex(public_id)) + dec.finalize()
    if block[:4] != _TAG:
        return None
    got_kind, internal_id = struct.unpack(">BxxxQ", block[4:])
    if got_kind != KINDS[kind] or internal_id <= 0 or internal_id >= 2**63:
        return None
    return int(internal_id)
