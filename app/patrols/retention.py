"""Retention of whereabouts (PIPL: a person's whereabouts are sensitive): the track points of a
patrol ended more than `patrol_retention_days` ago are deleted, after its line is derived one
last time; the line (`patrols.track`), its length and duration stay. A scheduled job of the
clock (`app.loop.scheduler`, registered in `app.extensions` as `patrols`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import get_settings
from app.patrols.service import derive

BATCH = 200


async def tick(session: AsyncSession, now: datetime) -> dict[str, Any]:
    cutoff = now - timedelta(days=get_settings().patrol_retention_days)
    due = list(
        await session.execute(
            text(
                "SELECT id, district_id, dirty FROM patrols WHERE status = 'ended' "
                "AND ended_at < :cutoff AND purged_at IS NULL ORDER BY ended_at LIMIT :n"
            ),
            {"cutoff": cutoff, "n": BATCH},
        )
    )
    points = 0
    for p in due:
        if p.dirty:
            await derive(session, p.id, p.district_id)
        gone = await session.execute(
            text("DELETE FROM patrol_points WHERE patrol_id = :p AND district_id = :d"),
            {"p": p.id, "d": p.district_id},
        )
        points += gone.rowcount or 0  # type: ignore[attr-defined]
        await session.execute(
            text("UPDATE patrols SET purged_at = :now WHERE id = :p AND district_id = :d"),
            {"now": now, "p": p.id, "d": p.district_id},
        )
    return {"purged_patrols": len(due), "purged_points": points}
