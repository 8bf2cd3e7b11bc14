"""Writing events: in the caller's transaction, published when it commits.

A writer only queues an intent (`event_intents`, no lock). At COMMIT a deferred trigger (migration
0012) takes the order lock, gives the event its id, writes the `events` row with a webhook
delivery for each subscribing department, sends the NOTIFY and deletes the intent. Event ids
therefore follow commit order, so "everything after id N" (Last-Event-ID resume, the listener
catching up) can never skip an event that committed late; and the lock is held only for the
server's own commit work, never across a client's round trips.
"""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

CHANNEL = "wangge_events"
ORDER_LOCK = 7_246_002
"""The advisory lock the publishing trigger takes (its number is written in migration 0012)."""

_EMIT = text(
    "INSERT INTO event_intents (type, case_id, district_id, payload) "
    "VALUES (:type, :case_id, :district, CAST(:payload AS jsonb))"
)
_DISTRICT = text("SELECT district_id FROM cases WHERE id = :id")


async def emit(
    session: AsyncSession,
    type_: str,
    case_id: int,
    payload: dict[str, Any],
    *,
    district_id: int | None = None,
) -> None:
    """Record an event about a case: published (with its id) when the transaction commits. A
    writer that knows the case's district passes it (on Citus the intent is a table of the
    coordinator, written without reading the case's shard); else it is looked up."""
    if district_id is None:
        district_id = (await session.execute(_DISTRICT, {"id": case_id})).scalar()
        if district_id is None:  # no such case: no event (as before)
            return
    await session.execute(
        _EMIT,
        {
            "type": type_,
            "case_id": case_id,
            "district": district_id,
            "payload": orjson.dumps(payload, default=str).decode(),
        },
    )


# --- derived data: the cases whose evaluation facts must be recomputed --------------------------

CHANGED_SQL = (
    "INSERT INTO case_changes (district_id, case_id) "
    "SELECT c.district_id, c.id FROM cases c WHERE c.id = ANY(CAST(:ids AS bigint[])) "
)
"""Mark cases as changed (migration 0025); `stats_catch_up` recomputes their facts later, off
the request's path. The writers that run one statement of their own (the intake, the loop's
timeline step) add the same row in a CTE of that statement instead."""

_CHANGED = text(CHANGED_SQL)


async def changed(session: AsyncSession, case_ids: list[int]) -> None:
    """Record, in the caller's transaction, that these cases' facts are out of date: every write
    to `cases` or `case_assignments` outside the loop's actions and the intake calls this."""
    if case_ids:
        await session.execute(_CHANGED, {"ids": list(case_ids)})


_CATCH_UP = text("SELECT stats_catch_up(CAST(:districts AS bigint[]))")


async def catch_up(db: AsyncConnection | AsyncSession, districts: list[int] | None = None) -> int:
    """Recompute the evaluation facts of the changed cases (of these districts; None: all), in
    one statement: catch-ups are serialised in the database, and one that starts after a change
    committed includes it, so what the facts say after it is exact. Every reader of the facts
    calls it first; `app.stats.derive` runs it in the background too. Returns the cases done."""
    return int((await db.execute(_CATCH_UP, {"districts": districts})).scalar_one())
