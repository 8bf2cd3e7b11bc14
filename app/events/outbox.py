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
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "wangge_events"
ORDER_LOCK = 7_246_002
"""The advisory lock the publishing trigger takes (its number is written in migration 0012)."""

_EMIT = text(
    "INSERT INTO event_intents (type, case_id, district_id, payload) "
    "SELECT :type, c.id, c.district_id, CAST(:payload AS jsonb) FROM cases c WHERE c.id = :case_id"
)


async def emit(session: AsyncSession, type_: str, case_id: int, payload: dict[str, Any]) -> None:
    """Record an event about a case: published (with its id) when the transaction commits."""
    await session.execute(
        _EMIT,
        {"type": type_, "case_id": case_id, "payload": orjson.dumps(payload, default=str).decode()},
    )
