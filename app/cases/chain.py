"""The case timeline's hash chain (migration 0018): every step of a case carries the hash of the
step before it and its own (`case_event_hash`, computed by the database when the step is written;
the hashed columns cannot be edited afterwards). Verifying recomputes both for every step."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_VERIFY = text(
    """
    SELECT e.id, e.hash = case_event_hash(e) AS hash_ok,
           e.prev_hash = coalesce(lag(e.hash) OVER (ORDER BY e.id), repeat('0', 64)) AS link_ok
    FROM case_events e JOIN cases c ON c.id = e.case_id AND c.district_id = e.district_id
    WHERE c.id = :case_id
    ORDER BY e.id
    """
)


async def verify_timeline(session: AsyncSession, case_id: int) -> tuple[int, list[dict[str, Any]]]:
    """Recompute every step's hash and link. Returns (steps checked, broken steps)."""
    checked, broken = 0, []
    for row in await session.execute(_VERIFY, {"case_id": case_id}):
        checked += 1
        if not (row.hash_ok and row.link_ok):
            broken.append({"id": row.id, "hash_ok": row.hash_ok, "link_ok": row.link_ok})
    return checked, broken
