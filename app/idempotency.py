"""Idempotency-Key (IETF httpapi draft) for unsafe requests from flaky mobile networks.

- The key is scoped to the user. The first request that claims a key runs; once it is done, the
  same key with the same body replays the first response (status and body) for at least
  `idempotency_hours` (72).
- While the first is still running, a duplicate answers 409 with Retry-After; the same key with a
  different body answers 422.
- The claim is committed on its own (so racing retries see it); the response is stored in the
  same transaction as the work, so a crash leaves either both or neither. A claim whose request
  died is released at once, or by its lease running out if the process itself died.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import get_settings
from app.errors import CATALOG, ApiError

CATALOG.update(
    {
        "idempotency_key_in_use": (
            409,
            "相同 Idempotency-Key 的请求仍在处理",
            "A request with this Idempotency-Key is still in progress",
        ),
        "idempotency_key_reused": (
            422,
            "Idempotency-Key 已用于另一个请求",
            "This Idempotency-Key was used for a different request",
        ),
        "invalid_idempotency_key": (400, "Idempotency-Key 格式无效", "Malformed Idempotency-Key"),
    }
)

_CLAIM = text(
    """
    INSERT INTO idempotency_keys (user_id, key, method_path, request_hash, state, lease_until)
    VALUES (:user_id, :key, :method_path, :hash, 'processing', now() + make_interval(secs => :lease))
    ON CONFLICT (user_id, key) DO UPDATE
       SET method_path = EXCLUDED.method_path, request_hash = EXCLUDED.request_hash,
           state = 'processing', lease_until = EXCLUDED.lease_until, created_at = now(),
           status_code = NULL, response = NULL
     WHERE (idempotency_keys.state = 'processing' AND idempotency_keys.lease_until < now()
            AND idempotency_keys.request_hash = EXCLUDED.request_hash)
        OR idempotency_keys.created_at < now() - make_interval(hours => :keep_hours)
    RETURNING true
    """
)
_READ = text(
    """
    SELECT state, request_hash, status_code, response,
           greatest(1, ceil(extract(epoch FROM lease_until - now())))::int AS retry_after
    FROM idempotency_keys WHERE user_id = :user_id AND key = :key
    """
)
_DONE = text(
    """
    UPDATE idempotency_keys SET state = 'done', status_code = :status, response = :body
    WHERE user_id = :user_id AND key = :key
    """
)
_RELEASE = text(
    "DELETE FROM idempotency_keys WHERE user_id = :user_id AND key = :key AND state = 'processing'"
)


@dataclass
class Replay:
    status: int
    body: bytes


def check_key(key: str) -> str:
    key = key.strip().strip('"')
    if not (1 <= len(key) <= 100) or not key.isprintable():
        raise ApiError(
            "invalid_idempotency_key",
            field="Idempotency-Key",
            detail="Idempotency-Key 应为 1-100 个可打印字符（建议 UUID）",
            detail_en="Idempotency-Key must be 1-100 printable characters (a UUID)",
        )
    return key


async def run_once(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    session: AsyncSession,
    *,
    user_id: int,
    key: str,
    method_path: str,
    body: bytes,
    work: Callable[[], Awaitable[tuple[int, bytes]]],
) -> Replay:
    """Run `work` (which must not commit) at most once for (user, key); replay afterwards.

    `connect` gives a short-lived autocommit connection for the claim and its release (seen by
    other requests at once, and returned before the work starts, so a request never holds two
    connections); `session` carries the work and the stored response in one transaction.
    """
    digest = hashlib.sha256(method_path.encode() + b"\n" + body).hexdigest()
    params = {"user_id": user_id, "key": key}
    async with connect() as reader:
        claimed, row = await _claim(reader, params, method_path, digest)
    if claimed is None:
        if row.request_hash != digest:
            raise ApiError("idempotency_key_reused", field="Idempotency-Key")
        if row.state == "done":
            return Replay(row.status_code, bytes(row.response))
        raise ApiError("idempotency_key_in_use", headers={"Retry-After": str(row.retry_after)})
    try:
        status, payload = await work()
        await session.execute(_DONE, {**params, "status": status, "body": payload})
        await session.commit()
    except BaseException:
        await session.rollback()
        async with connect() as reader:
            await reader.execute(_RELEASE, params)
        raise
    return Replay(status, payload)


async def _claim(
    reader: AsyncConnection, params: dict[str, Any], method_path: str, digest: str
) -> tuple[Any, Any]:
    s = get_settings()
    claimed = (
        await reader.execute(
            _CLAIM,
            {
                **params,
                "method_path": method_path,
                "hash": digest,
                "lease": s.idempotency_lease_seconds,
                "keep_hours": s.idempotency_hours,
            },
        )
    ).first()
    row = None if claimed else (await reader.execute(_READ, params)).one()
    return claimed, row


_PURGE = text(
    "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => :hours) "
    "AND (state = 'done' OR lease_until < now())"
)


async def purge(conn: AsyncConnection) -> int:
    """Forget keys older than `idempotency_hours` (run daily: `wangge purge`)."""
    result = await conn.execute(_PURGE, {"hours": get_settings().idempotency_hours})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
