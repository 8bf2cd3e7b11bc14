"""The case timeline's hash chain (migration 0018): every step of a case carries the hash of the
step before it and its own (`case_event_hash`, computed by the database when the step is written;
the hashed columns cannot be edited afterwards). Verifying recomputes both for every step."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import scope

# The hash from the step's fields (`case_event_hash_of`, migration 0024), as the trigger computes
# it: on a Citus shard the row is of the shard's own type, for which `case_event_hash(case_events)`
# does not exist. In the case's district, so that Citus runs it on one shard.
_VERIFY = text(
    """
    SELECT e.id,
           e.hash = case_event_hash_of(e.prev_hash, e.id, e.case_id, e.at, e.actor_id,
                                       e.post_id, e.action, e.from_status, e.to_status, e.note,
                                       e.detail) AS hash_ok,
           e.prev_hash = coalesce(lag(e.hash) OVER (ORDER BY e.id), repeat('0', 64)) AS link_ok
    FROM case_events e
    WHERE e.case_id = :case_id AND e.district_id = :d
    ORDER BY e.id
    """
)


async def verify_timeline(session: AsyncSession, case_id: int) -> tuple[int, list[dict[str, Any]]]:
    """Recompute every step's hash and link. Returns (steps checked, broken steps)."""
    checked, broken = 0, list[dict[str, Any]]()
    district = await scope.district_of(session, case_id)
    if district is None:
        return checked, broken
    for row in await session.execute(_VERIFY, {"case_id": case_id, "d": district}):
        checked += 1
        if not (row.hash_ok and row.link_ok):
            broken.append({"id": row.id, "hash_ok": row.hash_ok, "link_ok": row.link_ok})
    return checked, broken
