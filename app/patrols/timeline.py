"""A patrol's timeline: its own steps (start, pauses, end), and what the worker did during it:
the cases they reported (reported between the start and the end, the patrol's district), their
check-ins and visits (linked by `patrol_id`, or made during the patrol)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.patrols.service import get

_DURING = text(
    """
    SELECT 'case' AS kind, c.id, c.reported_at AS at, c.number || ' ' || c.title AS label,
           jsonb_build_object('number', c.number, 'status', c.status,
                              'category', c.category_code) AS detail
    FROM cases c
    WHERE c.district_id = :d AND c.reporter_id = :w
      AND c.reported_at >= :since AND c.reported_at <= :until
    UNION ALL
    SELECT 'checkin', k.id, k.at, cp.name,
           jsonb_build_object('accepted', k.accepted, 'distance_m', k.distance_m,
                              'checkpoint_id', k.checkpoint_id)
    FROM checkins k JOIN checkpoints cp ON cp.id = k.checkpoint_id AND cp.district_id = k.district_id
    WHERE k.district_id = :d AND k.worker_id = :w
      AND (k.patrol_id = :p OR (k.patrol_id IS NULL AND k.at >= :since AND k.at <= :until))
    UNION ALL
    SELECT 'visit', v.id, v.at, b.name || ' · ' || vp.name,
           jsonb_build_object('purpose', v.purpose_code, 'outcome', v.outcome,
                              'building_id', v.building_id, 'case_id', v.case_id)
    FROM visits v JOIN buildings b ON b.id = v.building_id
    JOIN visit_purposes vp ON vp.code = v.purpose_code
    WHERE v.district_id = :d AND v.worker_id = :w
      AND (v.patrol_id = :p OR (v.patrol_id IS NULL AND v.at >= :since AND v.at <= :until))
    """
)


async def timeline(session: AsyncSession, patrol_id: int) -> list[dict[str, Any]]:
    p = await get(session, patrol_id)
    items: list[dict[str, Any]] = [
        {"at": p.started_at, "kind": "started", "id": None, "label": "开始巡查", "detail": {}}
    ]
    for a, b in p.pauses:
        items.append(
            {"at": datetime.fromisoformat(a), "kind": "paused", "label": "暂停", "detail": {}}
        )
        items.append(
            {"at": datetime.fromisoformat(b), "kind": "resumed", "label": "继续", "detail": {}}
        )
    if p.paused_at is not None:
        items.append({"at": p.paused_at, "kind": "paused", "label": "暂停", "detail": {}})
    if p.ended_at is not None:
        items.append({"at": p.ended_at, "kind": "ended", "label": "结束巡查", "detail": {}})
    until = p.ended_at or (await session.execute(text("SELECT now()"))).scalar_one()
    rows = await session.execute(
        _DURING,
        {"d": p.district_id, "w": p.worker_id, "p": p.id, "since": p.started_at, "until": until},
    )
    for r in rows:
        items.append({"at": r.at, "kind": r.kind, "id": r.id, "label": r.label, "detail": r.detail})
    order = {
        "started": 0,
        "resumed": 1,
        "case": 2,
        "checkin": 2,
        "visit": 2,
        "paused": 3,
        "ended": 4,
    }
    items.sort(key=lambda i: (i["at"], order[i["kind"]]))
    return items
