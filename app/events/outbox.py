"""Writing events: in the caller's transaction, with a webhook delivery for each subscribing
department and a NOTIFY that PostgreSQL sends only when the transaction commits."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

CHANNEL = "wangge_events"
ORDER_LOCK = 7_246_002
LOCKED = f"(SELECT pg_advisory_xact_lock({ORDER_LOCK})) AS ordered"
"""Event writers take this transaction lock before their event gets its id, and hold it to
commit: ids are then in commit order, so "everything after id N" (Last-Event-ID resume, the
listener catching up) can never skip an event that committed late."""

_EMIT = text(
    f"""
    WITH e AS (
        INSERT INTO events (type, case_id, district_id, grid_id, area_ids, department_ids, payload)
        SELECT :type, c.id, c.district_id, c.grid_id,
               array_remove(ARRAY[c.community_id, c.street_id, c.district_id], NULL),
               array(SELECT DISTINCT a.department_id FROM case_assignments a
                     WHERE a.case_id = c.id AND a.state <> 'withdrawn'),
               CAST(:payload AS jsonb)
        FROM cases c, {LOCKED} WHERE c.id = :case_id
        RETURNING id, department_ids
    ),
    d AS (
        INSERT INTO webhook_deliveries (subscription_id, event_id)
        SELECT s.id, e.id FROM e JOIN webhook_subscriptions s
          ON s.active AND s.department_id = ANY(e.department_ids)
         AND (cardinality(s.event_types) = 0 OR CAST(:type AS text) = ANY(s.event_types))
    )
    SELECT id, pg_notify('{CHANNEL}', id::text) FROM e
    """
)


async def emit(session: AsyncSession, type_: str, case_id: int, payload: dict[str, Any]) -> int:
    """Record an event about a case (not committed: it commits with the change)."""
    row = (
        await session.execute(
            _EMIT,
            {
                "type": type_,
                "case_id": case_id,
                "payload": orjson.dumps(payload, default=str).decode(),
            },
        )
    ).first()
    return int(row.id) if row else 0
