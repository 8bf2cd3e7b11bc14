"""Idempotency-Key (IETF httpapi draft) for unsafe requests from flaky mobile networks.

- The key is scoped to the user. The first request that claims a key runs; once it is done, the
  same key with the same body replays the first response (status and body) for at least
  `idempotency_hours` (72).
- While the first is still running, a duplicate answers 409 with Retry-After; the same key with a
  different body answers 422.
- The claim is part of the statement that does the work (`CLAIM`, a CTE for the caller's
  statement): claim, work and `result_id` (what was created) commit together, so a racing retry
  waits on the key's row for that one statement, then finds the key taken (409 until the
  response is stored, the replay after). The response is stored right after (one more
  statement). If the server fails in between, the key keeps pointing at what was created: when
  its lease lapses (at once when the failure is an exception, after `idempotency_lease_seconds`
  when the process died), a retry gets that result back, rendered anew, never a second copy.
- Doors whose work spans several statements (Open311, the QR form) use `run_once`: the claim
  commits on its own first, then the work and the stored response share one transaction; a
  failure releases the claim (a dead process: its lease lapses).
- Keys are kept `idempotency_hours` (72) and then purged (`wangge purge`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import get_settings
from app.db import RawSql, raw_connection
from app.errors import ApiError

ERROR_CODES: dict[str, tuple[int, str, str]] = {
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
"""This module's error codes (registered in `app.extensions`)."""

CLAIM = """
    INSERT INTO idempotency_keys
        (user_id, key, method_path, request_hash, state, lease_until, result_id, created_at)
    SELECT :user_id, CAST(:key AS text), :method_path, :hash, 'processing',
           CAST(:lease_until AS timestamptz), {result_id},
           CAST(:claimed_at AS timestamptz)
    FROM {source} WHERE CAST(:key AS text) IS NOT NULL
    ON CONFLICT (user_id, key) DO UPDATE
       SET method_path = EXCLUDED.method_path, request_hash = EXCLUDED.request_hash,
           state = 'processing', lease_until = EXCLUDED.lease_until, created_at = EXCLUDED.created_at,
           status_code = NULL, response = NULL, result_id = EXCLUDED.result_id
     WHERE (idempotency_keys.state = 'processing' AND idempotency_keys.lease_until < CAST(:claimed_at AS timestamptz)
            AND idempotency_keys.request_hash = EXCLUDED.request_hash
            AND idempotency_keys.result_id IS NULL)
        OR idempotency_keys.created_at < CAST(:stale_before AS timestamptz)
    RETURNING result_id
"""
"""A CTE body that claims the key (`:key` NULL: no key, claims nothing) for the statement that
does the work; format in the expression of the created id and the row source it comes from.
The work must run only when the claim returned a row (or there is no key). The time is a bind
(`:claimed_at`, the app's clock): Citus refuses `now()` in `ON CONFLICT DO UPDATE SET`."""

_READ = RawSql(
    """
    SELECT state, request_hash, status_code, response, result_id, lease_until < now() AS lapsed,
           greatest(1, ceil(extract(epoch FROM lease_until - now())))::int AS retry_after
    FROM idempotency_keys WHERE user_id = :user_id AND key = :key
    """
)
_DONE = RawSql(
    """
    UPDATE idempotency_keys SET state = 'done', status_code = :status, response = :body
    WHERE user_id = :user_id AND key = :key AND state = 'processing'
    """
)
_LAPSE = RawSql(
    """
    UPDATE idempotency_keys SET lease_until = now() - interval '1 second'
    WHERE user_id = :user_id AND key = :key AND state = 'processing'
    """
)


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


@dataclass(frozen=True)
class Claim:
    """An Idempotency-Key on a request: the user's key and the digest of what was asked."""

    user_id: int
    key: str
    method_path: str
    digest: str

    @classmethod
    def of(cls, user_id: int, key: str | None, method_path: str, body: bytes) -> Claim | None:
        if key is None:
            return None
        digest = hashlib.sha256(method_path.encode() + b"\n" + body).hexdigest()
        return cls(user_id, check_key(key), method_path, digest)

    def params(self) -> dict[str, Any]:
        s = get_settings()
        now = datetime.now(UTC)
        return {
            "user_id": self.user_id,
            "key": self.key,
            "method_path": self.method_path,
            "hash": self.digest,
            "claimed_at": now,
            "lease_until": now + timedelta(seconds=s.idempotency_lease_seconds),
            "stale_before": now - timedelta(hours=s.idempotency_hours),
        }

    @property
    def ids(self) -> dict[str, Any]:
        return {"user_id": self.user_id, "key": self.key}


def no_claim(user_id: int) -> dict[str, Any]:
    """The CLAIM parameters of a request without a key."""
    return {
        "user_id": user_id,
        "key": None,
        "method_path": None,
        "hash": None,
        "claimed_at": None,
        "lease_until": None,
        "stale_before": None,
    }


@dataclass
class Replay:
    status: int
    body: bytes


@dataclass
class Lapsed:
    """The first request created `result_id` but never stored its response (it failed after
    its statement): render the result anew and `store` it."""

    result_id: int


async def settle(conn: asyncpg.Connection, claim: Claim) -> Replay | Lapsed | None:
    """The key was not claimed by this request's statement: what to answer instead. None: there
    is no such key (the statement claimed nothing for another reason, e.g. an unknown category)."""
    row = await conn.fetchrow(_READ.sql, *_READ.args(claim.ids))
    if row is None:
        return None
    if row["request_hash"] != claim.digest:
        raise ApiError("idempotency_key_reused", field="Idempotency-Key")
    if row["state"] == "done":
        return Replay(row["status_code"], bytes(row["response"]))
    if row["lapsed"] and row["result_id"] is not None:
        return Lapsed(row["result_id"])
    raise ApiError("idempotency_key_in_use", headers={"Retry-After": str(row["retry_after"])})


async def store(conn: asyncpg.Connection, claim: Claim, status: int, body: bytes) -> None:
    """Store the response for replays (the first one stored wins)."""
    await conn.execute(_DONE.sql, *_DONE.args({**claim.ids, "status": status, "body": body}))


async def lapse(conn: asyncpg.Connection, claim: Claim) -> None:
    """The response could not be made after the work committed: let the next retry recover the
    result at once instead of waiting for the lease."""
    await conn.execute(_LAPSE.sql, *_LAPSE.args(claim.ids))


_CLAIM_ALONE = RawSql(
    "WITH claim AS ({claim}) SELECT count(*) > 0 FROM claim".format(
        claim=CLAIM.format(result_id="NULL", source="(SELECT 1) AS one")
    )
)
_RELEASE = RawSql(
    "DELETE FROM idempotency_keys WHERE user_id = :user_id AND key = :key AND state = 'processing'"
)


async def run_once(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    session: AsyncSession,
    claim: Claim,
    work: Callable[[], Awaitable[tuple[int, bytes]]],
) -> Replay:
    """Run `work` (on `session`, the request's unit of work) at most once for the claim's key;
    replay its response afterwards. `connect` gives a short autocommit connection for the claim
    and its release (returned before the work starts: a request never holds two)."""
    async with raw_connection(connect) as conn:
        claimed = await conn.fetchval(_CLAIM_ALONE.sql, *_CLAIM_ALONE.args(claim.params()))
        settled = None if claimed else await settle(conn, claim)
    if not claimed:
        if isinstance(settled, Replay):
            return settled
        # No row (purged in between) or a lapsed one with no result: the phone retries.
        raise ApiError("idempotency_key_in_use", headers={"Retry-After": "1"})
    try:
        status, payload = await work()
        await session.execute(
            text(
                "UPDATE idempotency_keys SET state = 'done', status_code = :status, "
                "response = :body WHERE user_id = :user_id AND key = :key"
            ),
            {**claim.ids, "status": status, "body": payload},
        )
        # The request's unit of work commits the work and the key together.
    except BaseException:
        # Undo the work first (its locks go with it), then give the key back for the retry;
        # shielded, so that a cancelled request still releases its key.
        with anyio.CancelScope(shield=True):
            await session.rollback()
            async with raw_connection(connect) as conn:
                await conn.execute(_RELEASE.sql, *_RELEASE.args(claim.ids))
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
