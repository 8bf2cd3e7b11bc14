"""Rate limits on login, intake, Open311 posts and the residents' QR form: fixed windows (a minute;
an hour for the QR form) counted in PostgreSQL.

Correct with several replicas (the counter is in the database, not in a process), and one round
trip per check: a single upsert bumps every key of the request (the account and the address) and
returns the counts. The table is UNLOGGED (a crash resets the counters: harmless) and holds one
row per key; `wangge purge` forgets keys idle for an hour. Only the limited routes pay: the policy
layer checks a rule's `rate` after it has the caller, and login checks its own keys.

**Batched counts** (`batched=True`: intake and Open311 posts, the hot writes; never login or the
QR form). A request whose keys are all far below their limits is admitted by the process itself
and its hit written later, with the others of the same moment, in one upsert
(`flush`, every `FLUSH_SECONDS` from the server's background loop, and before any exact check of
the same key). "Far below" is `WANGGE_RATE_LOCAL_SHARE` (a quarter) of the limit, as this
process last read the shared count plus what it admitted since; from there on every request
goes to the database as above. So one process never lets a key pass its limit, and P processes
together by at most (P - 1) × share × limit for a moment (until their next flush); the share 0
makes every check exact.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import DateTime, Integer, Text, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from app.background import every
from app.config import get_settings
from app.db import Base, RawSql, RecordView, raw_of
from app.errors import ApiError

WINDOW_SECONDS = 60
HOUR = 3600
_PER = {WINDOW_SECONDS: ("每分钟", "a minute"), HOUR: ("每小时", "an hour")}

_HIT = text(
    """
    INSERT INTO rate_counters AS r (key, window_start, hits)
    SELECT k, date_bin(make_interval(secs => :window), now(), TIMESTAMPTZ '2000-01-01'), n
    FROM unnest(CAST(:keys AS text[]), CAST(:counts AS integer[])) AS u(k, n)
    ON CONFLICT (key) DO UPDATE
       SET hits = CASE WHEN r.window_start = excluded.window_start
                       THEN r.hits + excluded.hits ELSE excluded.hits END,
           window_start = excluded.window_start
    RETURNING key, hits,
              extract(epoch FROM window_start + make_interval(secs => :window)
                                 - clock_timestamp()) AS left_s
    """
)
_PURGE = text("DELETE FROM rate_counters WHERE window_start < now() - interval '1 hour'")
FLUSH_SECONDS = 0.5
"""How often a process writes the hits it admitted on its own (batched keys)."""


class _Seen:
    """One key in one window, as this process knows it."""

    __slots__ = ("known", "pending", "window_start")

    def __init__(self, window_start: float) -> None:
        self.window_start = window_start
        self.known = 0  # the shared count when this process last read it
        self.pending = 0  # admitted here since, not yet written


_seen: dict[tuple[str, int], _Seen] = {}


def forget() -> None:
    """Drop what this process knows of every key (its unwritten hits too): for tests that
    empty `rate_counters`."""
    _seen.clear()


_SEEN_MAX = 100_000
"""Keys a process keeps for batches; beyond, new keys are counted exactly (a bounded memory)."""


def _entry(key: str, window: int, now: float, create: bool = True) -> _Seen | None:
    """This process's view of a key in the current window (a new one when the window moved);
    None when it has none and `create` is off, or when it keeps `_SEEN_MAX` keys already."""
    start = now - now % window
    e = _seen.get((key, window))
    if e is None or e.window_start != start:
        if e is None and (not create or len(_seen) >= _SEEN_MAX):
            return None
        e = _seen[(key, window)] = _Seen(start)
    return e


def _admit_here(limits: dict[str, int], window: int) -> bool:
    """True when every key is far enough below its limit for this process to count it alone."""
    share = get_settings().rate_local_share
    if share <= 0:
        return False
    now = time.time()
    entries = []
    for key, limit in limits.items():
        e = _entry(key, window, now)
        if e is None or e.known + e.pending + 1 > limit * share:
            return False
        entries.append(e)
    for e in entries:
        e.pending += 1
    return True


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_HIT_RAW = RawSql(str(_HIT.text))


async def hit(conn: AsyncConnection, limits: dict[str, int], window: int = WINDOW_SECONDS) -> None:
    """Count one request against each key (key → allowed per window of `window` seconds, a
    minute or an hour), with the hits this process admitted on its own for those keys; 429 when
    any is over. A key is always counted with the same window."""
    if not limits or not get_settings().rate_limits:
        return
    keys = sorted(limits)  # one lock order for every statement: no deadlock between them
    now = time.time()
    # Only keys this process counts in batches have a view here (login's never do).
    entries = [_entry(k, window, now, create=False) for k in keys]
    taken = [e.pending if e is not None else 0 for e in entries]
    rows = await _write(conn, keys, [n + 1 for n in taken], window)
    for e, n in zip(entries, taken, strict=True):
        if e is not None:
            e.pending -= n
    _learn(rows, window, now)
    _refuse_over(rows, limits, window)


async def _write(
    conn: AsyncConnection, keys: list[str], counts: list[int], window: int
) -> list[RecordView]:
    # On the raw driver (a prepared statement, none of SQLAlchemy's per-call work).
    async with raw_of(conn) as raw:
        rows = await raw.fetch(
            _HIT_RAW.sql, *_HIT_RAW.args({"keys": keys, "counts": counts, "window": window})
        )
    return [RecordView(r) for r in rows]


def _learn(rows: list[Any], window: int, now: float) -> None:
    for r in rows:
        e = _entry(r.key, window, now, create=False)
        if e is not None:
            e.known = int(r.hits)


async def flush(conn: AsyncConnection) -> int:
    """Write the hits this process admitted on its own (one upsert per window length); the
    counts read back become what it knows. Keys of windows that have ended are dropped once
    written. Returns the number of keys written."""
    now = time.time()
    written = 0
    for window in sorted({w for _, w in _seen}):
        due = [(k, e) for (k, w), e in _seen.items() if w == window and e.pending > 0]
        if due:
            due.sort(key=lambda ke: ke[0])
            taken = [e.pending for _, e in due]
            rows = await _write(conn, [k for k, _ in due], taken, window)
            for (_, e), n in zip(due, taken, strict=True):
                e.pending -= n
            _learn(rows, window, now)
            written += len(due)
    _prune(now)
    return written


def _prune(now: float) -> None:
    """Forget keys whose window has ended and whose hits are written."""
    for key, e in list(_seen.items()):
        if e.window_start + key[1] <= now and e.pending == 0:
            del _seen[key]


async def run_forever(
    stop: asyncio.Event, connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
) -> None:
    """The server's loop: `flush` every FLUSH_SECONDS, and once more when it stops."""

    async def job() -> bool:
        if any(e.pending for e in _seen.values()):
            async with connect() as conn:
                await flush(conn)
        else:
            _prune(time.time())
        return False

    await every(stop, FLUSH_SECONDS, job, "rate limit flush")
    await job()


def _refuse_over(rows: list[Any], limits: dict[str, int], window: int) -> None:
    over = [r for r in rows if r.hits > limits[r.key]]
    if not over:
        return
    wait = max(1, math.ceil(max(float(r.left_s) for r in over)))
    worst = over[0]
    kind = worst.key.split(":", 2)
    raise ApiError(
        "rate_limited",
        detail=f"请求过于频繁（{_PER[window][0]}最多 {limits[worst.key]} 次），请 {wait} 秒后再试",
        detail_en=f"Too many requests (at most {limits[worst.key]} {_PER[window][1]}); "
        f"retry in {wait} seconds",
        headers={"Retry-After": str(wait)},
        extra={
            "limit": limits[worst.key],
            "window_seconds": window,
            "retry_after": wait,
            "scope": kind[1] if len(kind) > 1 else kind[0],
        },
    )


async def check(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    limits: dict[str, int],
    window: int = WINDOW_SECONDS,
    batched: bool = False,
) -> None:
    """`hit` on a short autocommit connection of its own (the count stays even if the request
    then fails, and no transaction of the request holds it). `batched`: admitted by the process
    alone while every key is far below its limit (the module's docstring)."""
    if not limits or not get_settings().rate_limits:
        return
    if batched and _admit_here(limits, window):
        return
    async with connect() as conn:
        await hit(conn, limits, window)


def login_limits(request: Request, username: str) -> dict[str, int]:
    s = get_settings()
    return {
        f"login:account:{username.strip().lower()[:64]}": s.login_per_account_per_minute,
        f"login:ip:{client_ip(request)}": s.login_per_ip_per_minute,
    }


def limits_for(rate: str, request: Request, user_id: int) -> dict[str, int]:
    """The keys of a rule's `rate` for this caller."""
    s = get_settings()
    if rate == "intake":
        return {
            f"intake:account:{user_id}": s.intake_per_account_per_minute,
            f"intake:ip:{client_ip(request)}": s.intake_per_ip_per_minute,
        }
    raise KeyError(rate)


async def purge(conn: AsyncConnection) -> int:
    return (await conn.execute(_PURGE)).rowcount or 0


class RateCounter(Base):
    """One key's hits in its current window (UNLOGGED: see the migration)."""

    __tablename__ = "rate_counters"
    __table_args__ = ({"prefixes": ["UNLOGGED"]},)

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    hits: Mapped[int] = mapped_column(Integer)
