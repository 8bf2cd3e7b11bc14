"""Rate limits on login, intake, Open311 posts and the residents' QR form: fixed windows (a minute;
an hour for the QR form) counted in PostgreSQL.

Correct with several replicas (the counter is in the database, not in a process), and one round
trip per check: a single upsert bumps every key of the request (the account and the address) and
returns the counts. The table is UNLOGGED (a crash resets the counters: harmless) and holds one
row per key; `wangge purge` forgets keys idle for an hour. Only the limited routes pay: the policy
layer checks a rule's `rate` after it has the caller, and login checks its own keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import DateTime, Integer, Text, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Mapped, mapped_column

from app.config import get_settings
from app.db import Base, RawSql, RecordView, raw_of
from app.errors import ApiError

WINDOW_SECONDS = 60
HOUR = 3600
_PER = {WINDOW_SECONDS: ("每分钟", "a minute"), HOUR: ("每小时", "an hour")}

_HIT = text(
    """
    INSERT INTO rate_counters AS r (key, window_start, hits)
    SELECT k, date_bin(make_interval(secs => :window), now(), TIMESTAMPTZ '2000-01-01'), 1
    FROM unnest(CAST(:keys AS text[])) AS k
    ON CONFLICT (key) DO UPDATE
       SET hits = CASE WHEN r.window_start = excluded.window_start THEN r.hits + 1 ELSE 1 END,
           window_start = excluded.window_start
    RETURNING key, hits,
              extract(epoch FROM window_start + make_interval(secs => :window)
                                 - clock_timestamp()) AS left_s
    """
)
_PURGE = text("DELETE FROM rate_counters WHERE window_start < now() - interval '1 hour'")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


_HIT_RAW = RawSql(str(_HIT.text))


async def hit(conn: AsyncConnection, limits: dict[str, int], window: int = WINDOW_SECONDS) -> None:
    """Count one request against each key (key → allowed per window of `window` seconds, a
    minute or an hour); 429 when any is over. A key is always counted with the same window."""
    if not limits or not get_settings().rate_limits:
        return
    keys = sorted(limits)  # one lock order for every statement: no deadlock between them
    # On the raw driver (a prepared statement, none of SQLAlchemy's per-call work): every
    # limited call pays this.
    async with raw_of(conn) as raw:
        rows = await raw.fetch(_HIT_RAW.sql, *_HIT_RAW.args({"keys": keys, "window": window}))
    _refuse_over([RecordView(r) for r in rows], limits, window)


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
) -> None:
    """`hit` on a short autocommit connection of its own (the count stays even if the request
    then fails, and no transaction of the request holds it)."""
    if not limits or not get_settings().rate_limits:
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
