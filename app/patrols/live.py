"""Live positions for the centre (PIPL: whereabouts are sensitive personal information).

The last fix of each patrol in progress (active or paused) in the grids below an area, for the
workers who are on duty now (`app.duty.service.duty_until`): outside a worker's duty time their
position is not shown, whatever the state of their patrol. Each row says until when it may be
shown (`duty_until`, the end of the duty). An ended patrol is history: its line is read with
`GET /patrols/{id}` under `patrols:read` at any time, never here. Every read is audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.policy import Principal
from app.auth.scope import below_cte, districts_of
from app.duty.service import duty_until
from app.geometry import point_out
from geo.crs import CRS

_LIVE = text(
    """
    WITH """
    + below_cte()
    + """
    SELECT p.id AS patrol_id, p.district_id, p.worker_id, u.display_name AS worker, p.grid_id,
           p.status, f.at, ST_X(f.geom) AS lon, ST_Y(f.geom) AS lat, f.accuracy_m
    FROM patrols p JOIN users u ON u.id = p.worker_id
    CROSS JOIN LATERAL (
        SELECT pp.at, pp.geom, pp.accuracy_m FROM patrol_points pp
        WHERE pp.district_id = p.district_id AND pp.patrol_id = p.id
          AND (pp.flag IS NULL OR pp.flag = 'paused')
        ORDER BY pp.at DESC LIMIT 1
    ) f
    WHERE p.district_id = ANY(CAST(:districts AS bigint[]))
      AND p.community_id IN (SELECT id FROM below) AND p.status IN ('active', 'paused')
    ORDER BY p.worker_id
    """
)


async def live_positions(
    session: AsyncSession, who: Principal, area_id: int, crs: CRS, at: datetime | None = None
) -> list[dict[str, Any]]:
    now = at or datetime.now(UTC)
    districts = await districts_of(session, who)
    rows = list(await session.execute(_LIVE, {"area": area_id, "districts": districts}))
    on_duty: dict[int, datetime] = {}
    for d in sorted({r.district_id for r in rows}):
        on_duty.update(
            await duty_until(session, d, [r.worker_id for r in rows if r.district_id == d], now)
        )
    out = []
    for r in rows:
        if r.worker_id not in on_duty:
            continue
        lon, lat = point_out(r.lon, r.lat, crs)
        out.append(
            {
                "patrol_id": r.patrol_id,
                "worker_id": r.worker_id,
                "worker": r.worker,
                "grid_id": r.grid_id,
                "status": r.status,
                "at": r.at,
                "lon": lon,
                "lat": lat,
                "crs": crs,
                "accuracy_m": r.accuracy_m,
                "duty_until": on_duty[r.worker_id],
            }
        )
    await record(
        session,
        "live_positions_read",
        actor=who,
        object_type="area",
        object_id=area_id,
        detail={"shown": len(out), "workers": [o["worker_id"] for o in out]},
    )
    return out
