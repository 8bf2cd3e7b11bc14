"""The community's weekly board (周工作看板, issue 19 "the paperwork, done"): for an area and an ISO
week (Monday to Sunday, Asia/Shanghai), per grid its coverage by patrol (`coverage.coverage`), per
worker the patrol hours against the standard summed over the grids and their personal tasks, and
the missed check-ins of the area's points (`checkins.missed`). Nothing is stored: each figure is
the one the other endpoints give for the same period."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.scope import below_cte
from app.config import get_settings
from app.patrols import checkins, coverage
from app.patrols.service import place_of_grid
from app.schemas import SHANGHAI

_GRIDS = text(
    """
    WITH """
    + below_cte()
    + """
    SELECT g.id, g.code, g.name FROM grids g
    WHERE g.community_id IN (SELECT id FROM below) AND g.deleted_at IS NULL
    ORDER BY g.code
    """
)

_TASKS = text(
    """
    SELECT t.worker_id, u.display_name AS worker,
           count(*) FILTER (WHERE t.state IN ('open', 'accepted')) AS open,
           count(*) FILTER (WHERE t.state IN ('open', 'accepted') AND t.due_at < :now) AS overdue,
           count(*) FILTER (WHERE t.state = 'done' AND t.finished_at >= :lo
                            AND t.finished_at < :hi) AS done,
           count(*) FILTER (WHERE t.state = 'done' AND t.finished_at >= :lo
                            AND t.finished_at < :hi AND t.finished_at <= t.due_at) AS on_time
    FROM worker_tasks t JOIN users u ON u.id = t.worker_id
    WHERE t.district_id = :d AND t.grid_id = ANY(:grids)
    GROUP BY t.worker_id, u.display_name
    """
)


def week_of(day: date) -> tuple[date, str]:
    """The Monday of the ISO week holding `day`, and the week's name (2026-W49)."""
    y, w, _ = day.isocalendar()
    return date.fromisocalendar(y, w, 1), f"{y}-W{w:02d}"


async def weekly(session: AsyncSession, area_id: int, monday: date) -> dict[str, Any]:
    s = get_settings()
    lo = datetime.combine(monday, time(0), SHANGHAI)
    hi = lo + timedelta(days=7)
    now = datetime.now(SHANGHAI)
    grids = []
    workers: dict[int, dict[str, Any]] = {}
    district = None
    for g in (await session.execute(_GRIDS, {"area": area_id})).all():
        place = await place_of_grid(session, g.id)
        district = place.district_id
        cov = await coverage.coverage(session, place, lo, hi, s.coverage_stale_days)
        grids.append({**cov, "code": g.code, "name": g.name})
        for w in cov["workers"]:
            one = workers.setdefault(
                w["worker_id"],
                {"worker_id": w["worker_id"], "worker": w["worker"], "hours": 0.0},
            )
            one["hours"] += float(w["hours"])
    tasks: dict[int, Any] = {}
    if district is not None:
        params = {"d": district, "grids": [g["grid_id"] for g in grids], "now": now}
        for r in await session.execute(_TASKS, {**params, "lo": lo, "hi": hi}):
            tasks[r.worker_id] = r
            workers.setdefault(
                r.worker_id, {"worker_id": r.worker_id, "worker": r.worker, "hours": 0.0}
            )
    basis = (
        await coverage.standards(session, district, sorted(workers), lo, hi)
        if district is not None
        else {}
    )
    rows = []
    for w in sorted(workers.values(), key=lambda x: (-x["hours"], x["worker_id"])):
        t = tasks.get(w["worker_id"])
        kind, on = basis.get(w["worker_id"], ("working_days", []))
        standard = s.patrol_hours_per_workday * len(on)
        rows.append(
            {
                **w,
                "hours": round(w["hours"], 2),
                "standard_basis": kind,
                "standard_hours": standard,
                "met": w["hours"] >= standard,
                "open_tasks": int(t.open) if t else 0,
                "overdue_tasks": int(t.overdue) if t else 0,
                "done_tasks": int(t.done) if t else 0,
                "done_on_time": int(t.on_time) if t else 0,
            }
        )
    missed = await checkins.missed(session, area_id, monday, monday + timedelta(days=6))
    return {
        "area_id": area_id,
        "week": week_of(monday)[1],
        "since": monday,
        "until": monday + timedelta(days=6),
        "grids": grids,
        "workers": rows,
        "checkins": {"area_id": area_id, **missed},
        "open_tasks": sum(r["open_tasks"] for r in rows),
        "overdue_tasks": sum(r["overdue_tasks"] for r in rows),
    }
