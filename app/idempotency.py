"""Idempotency-Key (IETF httpapi draft) for unsafe requests from flaky mobile networks.

- The key is scoped to the user. The first request that claims a key runs; once it is done, the
  same key with the same body replays the first response (status and body) for at least
  `idempotency_hours` (72).
- While the first is still running, a duplicate answers 409 with Retry-After; the same key with a
  different body answers 422.
- The claim is committed on its own (so racing retries see it); the response is stored in the
  same transaction as the work, so a crash leaves either both or neither. A claim whose request
  died is released at once, or by its lease running out if the process itself died.
- It all runs on one raw asyncpg connection (the intake's hot path): claim (autocommit), then
  BEGIN, the work, the stored response, COMMIT.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import get_settings
from app.db import RawSql
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

_CLAIM = RawSql(
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
_READ = RawSql(
    """
    SELECT state, request_hash, status_code, response,
           greatest(1, ceil(extract(epoch FROM lease_until - now())))::int AS retry_after
    FROM idempotency_keys WHERE user_id = :user_id AND key = :key
    """
)
_DONE = RawSql(
    """
    UPDATE idempotency_keys SET state = 'done', status_code = :status, response = :body
    WHERE user_id = :user_id AND key = :key
    """
)
_RELEASE = RawSql(
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
    conn: asyncpg.Connection,
    *,
    user_id: int,
    key: str,
    method_path: str,
    body: bytes,
    work: Callable[[], Awaitable[tuple[int, bytes]]],
) -> Replay:
    """Run `work` (statements on `conn`, which it must not commit) at most once for (user, key);
    replay its response afterwards.

    `conn` is outside any transaction: the claim commits at once (seen by other requests), then
    the work and the stored response share one transaction.
    """
    digest = hashlib.sha256(method_path.encode() + b"\n" + body).hexdigest()
    s = get_settings()
    claimed = await conn.fetchval(
        _CLAIM.sql,
        *_CLAIM.args(
            {
                "user_id": user_id,
                "key": key,
                "method_path": method_path,
                "hash": digest,
                "lease": s.idempotency_lease_seconds,
                "keep_hours": s.idempotency_hours,
            }
        ),
    )
    ids = {"user_id": user_id, "key": key}
    if not claimed:
        row = await conn.fetchrow(_READ.sql, *_READ.args(ids))
        if row is None:  # purged in between: rare; the phone retries
            raise ApiError("idempotency_key_in_use", headers={"Retry-After": "1"})
        if row["request_hash"] != digest:
            raise ApiError("idempotency_key_reused", field="Idempotency-Key")
        if row["state"] == "done":
            return Replay(row["status_code"], bytes(row["response"]))
        raise ApiError("idempotency_key_in_use", headers={"Retry-After": str(row["retry_after"])})
    try:
        async with conn.transaction():
            status, payload = await work()
            await conn.execute(_DONE.sql, *_DONE.args({**ids, "status": status, "body": payload}))
    except BaseException:
        await conn.execute(_RELEASE.sql, *_RELEASE.args(ids))
        raise
    return Replay(status, payload)


_PURGE = text(
    "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => :hours) "
    "AND (state = 'done' OR lease_until < now())"
)


async def purge(conn: AsyncConnection) -> int:
    """Forget keys older than `idempotency_hours` (run daily: `wangge purge`)."""
    result = await conn.execute(_PURGE, {"hours": get_settings().idempotency_hours})
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
