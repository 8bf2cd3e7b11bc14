"""Field work figures for evaluation (考评, issue 19): per grid worker and per grid, over an
evaluation period, patrol hours against the standard, coverage by patrol, the check-in rate and
the personal tasks' on-time rate.

Nothing is computed twice: a worker's figures are their work log over the period's days
(`app.patrols.worklog.between_many`), the standard is `app.patrols.coverage.standards` (duty
days or working days), a grid's coverage is `app.patrols.coverage.coverage_of`, its check-in
rate the one of `app.patrols.checkins.missed_in`, each asked once for all the rows. So the figures here are the work log's, the coverage endpoint's
and the weekly board's for the same days.

Which rows: the grids in the caller's scope (`app.stats.scoping`) below `area_id` when given
(all of them), else those with field work in the period (a patrol started, an active check-in
point, a personal task received or done); the workers posted on those grids or who patrolled
or had a task there, as far as the caller's scope reaches (`Scope.units("worker")`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.auth.scope import below_cte
from app.config import get_settings
from app.patrols import checkins, coverage, worklog
from app.schemas import SHANGHAI
from app.stats.periods import Period
from app.stats.scoping import scope_of

_GRIDS = text(
    """
    WITH """
    + below_cte()
    + """
    SELECT g.id, g.code, g.name, g.community_id, coalesce(s.parent_id, s.id, c.id) AS district_id
    FROM grids g JOIN areas c ON c.id = g.community_id
    LEFT JOIN areas s ON s.id = c.parent_id
    WHERE g.deleted_at IS NULL
      AND (CAST(:all AS boolean) OR g.id = ANY(CAST(:grids AS bigint[])))
      AND (CAST(:area AS bigint) IS NULL OR g.community_id IN (SELECT id FROM below))
    ORDER BY g.code
    """
)
_ACTIVE = text(
    """
    SELECT grid_id FROM patrols
    WHERE district_id = ANY(CAST(:districts AS bigint[])) AND grid_id = ANY(CAST(:grids AS bigint[]))
      AND started_at >= :lo AND started_at < :hi
    UNION SELECT grid_id FROM checkpoints
    WHERE district_id = ANY(CAST(:districts AS bigint[])) AND grid_id = ANY(CAST(:grids AS bigint[]))
      AND active
    UNION SELECT grid_id FROM worker_tasks
    WHERE district_id = ANY(CAST(:districts AS bigint[])) AND grid_id = ANY(CAST(:grids AS bigint[]))
      AND ((starts_at >= :lo AND starts_at < :hi) OR (finished_at >= :lo AND finished_at < :hi))
    """
)
"""The grids with field work in the period: the grids (base data) first, then the case side in
their districts (a subquery correlated to the grids is a join Citus cannot plan)."""
_WORKERS = text(
    """
    SELECT u.id, u.display_name FROM users u
    WHERE u.id IN (
        SELECT po.user_id FROM post_grids pg JOIN posts po ON po.id = pg.post_id
        WHERE pg.grid_id = ANY(CAST(:grids AS bigint[]))
          AND po.role IN ('grid_worker', 'grid_leader')
          AND po.starts_on <= current_date AND (po.ends_on IS NULL OR po.ends_on >= current_date)
        UNION SELECT worker_id FROM patrols
        WHERE district_id = ANY(CAST(:districts AS bigint[]))
          AND grid_id = ANY(CAST(:grids AS bigint[])) AND started_at >= :lo AND started_at < :hi
        UNION SELECT worker_id FROM worker_tasks
        WHERE district_id = ANY(CAST(:districts AS bigint[]))
          AND grid_id = ANY(CAST(:grids AS bigint[]))
          AND ((starts_at >= :lo AND starts_at < :hi) OR (finished_at >= :lo AND finished_at < :hi))
    )
    ORDER BY u.id
    """
)
_DISTRICT = text(
    """
    SELECT DISTINCT coalesce(s.parent_id, s.id, c.id) AS district_id, u.id AS worker_id
    FROM users u JOIN posts po ON po.user_id = u.id JOIN post_grids pg ON pg.post_id = po.id
    JOIN grids g ON g.id = pg.grid_id JOIN areas c ON c.id = g.community_id
    LEFT JOIN areas s ON s.id = c.parent_id
    WHERE u.id = ANY(CAST(:users AS bigint[]))
    """
)
_TASKS_OPEN = text(
    """
    SELECT worker_id, grid_id,
           count(*) FILTER (WHERE state IN ('open', 'accepted') AND due_at < :now) AS overdue
    FROM worker_tasks
    WHERE district_id = ANY(CAST(:districts AS bigint[]))
      AND (worker_id = ANY(CAST(:users AS bigint[])) OR grid_id = ANY(CAST(:grids AS bigint[])))
    GROUP BY worker_id, grid_id
    """
)
_GRID_TASKS = text(
    """
    SELECT grid_id,
           count(*) FILTER (WHERE starts_at >= :lo AND starts_at < :hi) AS received,
           count(*) FILTER (WHERE state = 'done' AND finished_at >= :lo AND finished_at < :hi)
               AS done,
           count(*) FILTER (WHERE state = 'done' AND finished_at >= :lo AND finished_at < :hi
                            AND finished_at <= due_at) AS on_time
    FROM worker_tasks
    WHERE district_id = ANY(CAST(:districts AS bigint[])) AND grid_id = ANY(CAST(:grids AS bigint[]))
    GROUP BY grid_id
    """
)


class Place(NamedTuple):
    grid_id: int
    district_id: int


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def dates(p: Period) -> tuple[Any, Any]:
    """The Shanghai dates the period covers (first and last, both included)."""
    return (
        p.start.astimezone(SHANGHAI).date(),
        (p.end - timedelta(microseconds=1)).astimezone(SHANGHAI).date(),
    )


async def fieldwork(
    session: AsyncSession, who: Principal, p: Period, area_id: int | None = None
) -> dict[str, Any]:
    s = get_settings()
    conn = await session.connection()
    mine = await scope_of(conn, who)
    grids_in_scope = await mine.units(conn, "grid")
    lo, hi = p.start, p.end
    first, last = dates(p)
    grid_rows = list(
        await session.execute(
            _GRIDS, {"all": grids_in_scope is None, "grids": grids_in_scope or [], "area": area_id}
        )
    )
    if area_id is None:
        active = set(
            (
                await session.execute(
                    _ACTIVE,
                    {
                        "grids": [g.id for g in grid_rows],
                        "districts": sorted({int(g.district_id) for g in grid_rows}),
                        "lo": lo,
                        "hi": hi,
                    },
                )
            ).scalars()
        )
        grid_rows = [g for g in grid_rows if g.id in active]
    gids = [g.id for g in grid_rows]
    districts = sorted({int(g.district_id) for g in grid_rows})
    now = datetime.now(SHANGHAI)
    overdue_w: dict[int, int] = {}
    overdue_g: dict[int, int] = {}
    users_in_scope = await mine.units(conn, "worker")
    workers = [
        w
        for w in await session.execute(
            _WORKERS, {"grids": gids, "districts": districts, "lo": lo, "hi": hi}
        )
        if users_in_scope is None or w.id in users_in_scope
    ]
    wids = [w.id for w in workers]
    for r in await session.execute(
        _TASKS_OPEN, {"users": wids, "grids": gids, "districts": districts, "now": now}
    ):
        if r.worker_id in wids:
            overdue_w[r.worker_id] = overdue_w.get(r.worker_id, 0) + int(r.overdue)
        if r.grid_id is not None:
            overdue_g[r.grid_id] = overdue_g.get(r.grid_id, 0) + int(r.overdue)

    grids_out = []
    covs = await coverage.coverage_of(
        session,
        [Place(g.id, g.district_id) for g in grid_rows],
        lo,
        hi,
        s.coverage_stale_days,
    )
    _, chks = await checkins.missed_in(
        session, sorted({g.community_id for g in grid_rows}), first, last, gids
    )
    for g in grid_rows:
        cov = covs[g.id]
        chk = chks.get(g.id, {"expected": 0, "done": 0, "rate": None})
        grids_out.append(
            {
                "grid_id": g.id,
                "code": g.code,
                "name": g.name,
                "cells": cov["cells"],
                "visited": cov["visited"],
                "coverage": cov["share"],
                "stale": cov["stale"],
                "patrols": cov["patrols"],
                "patrol_hours": round(sum(w["hours"] for w in cov["workers"]), 2),
                "distance_km": round(cov["distance_m"] / 1000, 2),
                "checkins_expected": chk["expected"],
                "checkins_done": chk["done"],
                "checkin_rate": chk["rate"],
                "tasks_received": 0,
                "tasks_done": 0,
                "tasks_on_time": 0,
                "on_time_rate": None,
                "tasks_overdue": overdue_g.get(g.id, 0),
            }
        )
    by_grid = {g["grid_id"]: g for g in grids_out}
    for r in await session.execute(
        _GRID_TASKS, {"grids": gids, "districts": districts, "lo": lo, "hi": hi}
    ):
        by_grid[r.grid_id].update(
            tasks_received=int(r.received),
            tasks_done=int(r.done),
            tasks_on_time=int(r.on_time),
            on_time_rate=_rate(int(r.on_time), int(r.done)),
        )

    district_of = {
        int(r.worker_id): int(r.district_id)
        for r in await session.execute(_DISTRICT, {"users": wids})
    }
    basis: dict[int, tuple[str, list[Any]]] = {}
    for d in sorted(set(district_of.values())):
        ids = [w for w, dd in district_of.items() if dd == d]
        basis.update(await coverage.standards(session, d, ids, lo, hi))
    workers_out = []
    logs = await worklog.between_many(session, {w.id: w.display_name for w in workers}, first, last)
    for w in workers:
        t = logs[w.id]["total"]
        kind, on = basis.get(w.id, ("working_days", []))
        standard = s.patrol_hours_per_workday * len(on)
        workers_out.append(
            {
                "worker_id": w.id,
                "worker": w.display_name,
                "patrols": t["patrols"],
                "patrol_hours": t["patrol_hours"],
                "distance_km": t["distance_km"],
                "standard_basis": kind,
                "standard_days": len(on),
                "standard_hours": standard,
                "met": t["patrol_hours"] >= standard,
                "checkins": t["checkins"],
                "checkins_accepted": t["checkins_accepted"],
                "checkin_rate": _rate(t["checkins_accepted"], t["checkins"]),
                "visits": t["visits"],
                "cases": t["cases"],
                "tasks_received": t["tasks_received"],
                "tasks_done": t["tasks_done"],
                "tasks_on_time": t["tasks_on_time"],
                "on_time_rate": _rate(t["tasks_on_time"], t["tasks_done"]),
                "tasks_overdue": overdue_w.get(w.id, 0),
            }
        )
    return {
        "period": p.out(),
        "area_id": area_id,
        "hours_per_day": s.patrol_hours_per_workday,
        "workers": workers_out,
        "grids": grids_out,
    }


WORKER_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("worker", "网格员", "worker"),
    ("patrols", "巡查次数", "patrols"),
    ("patrol_hours", "巡查时长（小时）", "patrol hours"),
    ("standard_hours", "标准时长（小时）", "standard hours"),
    ("standard_basis", "标准依据", "standard basis"),
    ("distance_km", "巡查里程（公里）", "distance (km)"),
    ("checkins", "打卡次数", "check-ins"),
    ("checkins_accepted", "有效打卡", "accepted check-ins"),
    ("checkin_rate", "打卡有效率", "check-in rate"),
    ("visits", "走访户次", "visits"),
    ("cases", "上报事件", "cases reported"),
    ("tasks_done", "完成任务", "tasks done"),
    ("tasks_on_time", "按期完成", "done on time"),
    ("on_time_rate", "任务按期率", "on-time rate"),
    ("tasks_overdue", "逾期未完成", "overdue"),
)
GRID_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("name", "网格", "grid"),
    ("code", "网格编码", "grid code"),
    ("cells", "网格单元数", "cells"),
    ("visited", "已巡单元", "visited cells"),
    ("coverage", "巡查覆盖率", "coverage"),
    ("patrols", "巡查次数", "patrols"),
    ("patrol_hours", "巡查时长（小时）", "patrol hours"),
    ("checkins_expected", "应打卡", "check-ins expected"),
    ("checkins_done", "已打卡", "check-ins done"),
    ("checkin_rate", "打卡率", "check-in rate"),
    ("tasks_done", "完成任务", "tasks done"),
    ("tasks_on_time", "按期完成", "done on time"),
    ("on_time_rate", "任务按期率", "on-time rate"),
    ("tasks_overdue", "逾期未完成", "overdue"),
)
BASIS_LABELS = {"duty_roster": ("排班", "duty roster"), "working_days": ("工作日", "working days")}


def table(result: dict[str, Any], unit: str, lang: str) -> tuple[list[str], list[list[Any]]]:
    """The export's table (`/stats/export?table=fieldwork`): a row per worker, or per grid."""
    cols = GRID_COLUMNS if unit == "grid" else WORKER_COLUMNS
    rows = result["grids"] if unit == "grid" else result["workers"]
    headers = [en if lang == "en" else zh for _, zh, en in cols]
    data = []
    for r in rows:
        line = []
        for key, _, _ in cols:
            v = r[key]
            if key == "standard_basis":
                zh, en = BASIS_LABELS[v]
                v = en if lang == "en" else zh
            line.append(v)
        data.append(line)
    return headers, data
