"""Coverage of a grid by patrols (不留死角): a lattice of square cells inside the grid, the cells a
kept track passed near, the cells not visited for days, patrol hours against the standard.

- The lattice: `ST_SquareGrid` in Web Mercator with a side of `patrol_cell_m` / cos(latitude)
  (Mercator stretches by 1 / cos φ, so the cells are `patrol_cell_m` metres on the ground at
  the grid's centre); a cell belongs to the grid when its centre is inside the boundary. Made the
  first time a track, a coverage question or a check-in point reaches the grid (`ensure_cells`,
  `ensure_lattice`), made again when
  the boundary changes (`rebuild_cells`).
- A hit: a patrol's kept track (`patrols.track`, flagged points left out) passes within
  `coverage_radius_m` of a cell's centre: a box around the track on the cells' GiST index, then
  `ST_DWithin` on geography (the spheroid distance from the centre to the line; a geography
  buffer of a walk that crosses itself took seconds). Hits are stored per (cell, patrol) when the line is derived, so a month's
  coverage is one indexed count.
- Hours: time on patrol (pauses excluded) of the patrols started in the grid in the period,
  per worker, against `patrol_hours_per_workday` × the days the standard applies to
  (`standards`): a worker on a duty roster in the period, their duty days (`standard_basis`
  `duty_roster`); else the working days of the official calendar (`working_days`,
  `app.loop.deadlines.calendar`, 调休 included); never days after today.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.config import get_settings
from app.duty.service import duty_days
from app.loop.deadlines import calendar
from app.schemas import SHANGHAI

_CELLS = text(
    """
    WITH b AS (
        SELECT g.id AS grid_id, ST_Transform(b.boundary, 3857) AS m,
               :size / cos(radians(ST_Y(ST_Centroid(b.boundary)))) AS side
        FROM grids g JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
        WHERE g.id = ANY(CAST(:grids AS bigint[]))
          AND NOT EXISTS (SELECT 1 FROM patrol_cells pc WHERE pc.grid_id = g.id)
    )
    INSERT INTO patrol_cells (district_id, grid_id, size_m, geom, center)
    SELECT :district, b.grid_id, :size, ST_Transform(sq.geom, 4326),
           ST_Transform(ST_Centroid(sq.geom), 4326)
    FROM b CROSS JOIN LATERAL ST_SquareGrid(b.side, b.m) sq
    WHERE ST_Intersects(b.m, ST_Centroid(sq.geom))
    RETURNING grid_id
    """
)
_NEAR_GRIDS = text(
    """
    SELECT DISTINCT b.grid_id FROM patrols p
    JOIN grid_boundaries b ON b.valid_to IS NULL AND b.boundary && p.track
    JOIN grids g ON g.id = b.grid_id AND g.deleted_at IS NULL
    JOIN areas c ON c.id = g.community_id
    LEFT JOIN areas s ON s.id = c.parent_id
    WHERE p.id = :p AND p.district_id = :d AND coalesce(s.parent_id, s.id, c.id) = :d
    """
)
_HITS = text(
    """
    WITH t AS (
        SELECT id, district_id, worker_id, started_at, track::geography AS g,
               ST_Expand(track, :radius / 100000.0 / cos(radians(ST_Y(ST_Centroid(track)))))
                   AS box
        FROM patrols WHERE id = :p AND district_id = :d AND track IS NOT NULL
    )
    INSERT INTO patrol_cell_hits (district_id, cell_id, patrol_id, grid_id, worker_id, at)
    SELECT c.district_id, c.id, t.id, c.grid_id, t.worker_id, t.started_at
    FROM t JOIN patrol_cells c ON c.district_id = t.district_id AND c.geom && t.box
    WHERE ST_DWithin(c.center::geography, t.g, :radius)
    """
)
_BACKFILL = text(
    """
    WITH t AS (
        SELECT p.id, p.district_id, p.worker_id, p.started_at, p.track::geography AS g,
               ST_Expand(p.track, :radius / 100000.0 / cos(radians(ST_Y(ST_Centroid(p.track)))))
                   AS box
        FROM patrols p JOIN grid_boundaries b ON b.grid_id = :grid AND b.valid_to IS NULL
        WHERE p.district_id = :d AND p.track IS NOT NULL AND p.track && b.boundary
    )
    INSERT INTO patrol_cell_hits (district_id, cell_id, patrol_id, grid_id, worker_id, at)
    SELECT c.district_id, c.id, t.id, c.grid_id, t.worker_id, t.started_at
    FROM t JOIN patrol_cells c ON c.grid_id = :grid AND c.district_id = t.district_id
                              AND c.geom && t.box
    WHERE ST_DWithin(c.center::geography, t.g, :radius)
    ON CONFLICT DO NOTHING
    """
)


async def ensure_cells(
    session: AsyncSession | AsyncConnection, district_id: int, grid_ids: list[int]
) -> list[int]:
    """Make the lattice of the grids that have none; returns the grids just made."""
    if not grid_ids:
        return []
    made = await session.execute(
        _CELLS, {"grids": grid_ids, "district": district_id, "size": get_settings().patrol_cell_m}
    )
    return sorted({r.grid_id for r in made})


async def record_hits(
    session: AsyncSession | AsyncConnection, patrol_id: int, district_id: int
) -> None:
    """The cells the patrol's line passed (replacing what an earlier line recorded)."""
    params = {"p": patrol_id, "d": district_id}
    await session.execute(
        text("DELETE FROM patrol_cell_hits WHERE patrol_id = :p AND district_id = :d"), params
    )
    grids = [r.grid_id for r in await session.execute(_NEAR_GRIDS, params)]
    made = await ensure_cells(session, district_id, grids)
    await session.execute(_HITS, {**params, "radius": get_settings().coverage_radius_m})
    for g in made:  # a new lattice: the earlier patrols through this grid count too
        await _backfill(session, district_id, g)


async def ensure_lattice(session: AsyncSession, district_id: int, grid_id: int) -> None:
    """The grid's lattice, made (with the earlier patrols through it) when it has none: on a
    coverage question, and when a check-in point is set up in it (so a grid with check-in points
    and no patrol is on the coverage layer, all cells unvisited)."""
    if await ensure_cells(session, district_id, [grid_id]):
        await _backfill(session, district_id, grid_id)


async def rebuild_cells(session: AsyncSession, grid_id: int) -> None:
    """A grid's boundary changed (`app.grids.service.on_boundary_change`, registered in
    `app/extensions.py`): its lattice and hits are made again for the new boundary, every kept
    patrol line through it counted."""
    d = (
        await session.execute(
            text("SELECT district_id FROM patrol_cells WHERE grid_id = :g LIMIT 1"),
            {"g": grid_id},
        )
    ).scalar()
    if d is None:  # no lattice yet: the first question or track makes it
        return
    params = {"g": grid_id, "d": d}
    await session.execute(
        text("DELETE FROM patrol_cell_hits WHERE grid_id = :g AND district_id = :d"), params
    )
    await session.execute(
        text("DELETE FROM patrol_cells WHERE grid_id = :g AND district_id = :d"), params
    )
    await ensure_lattice(session, d, grid_id)


async def _backfill(session: AsyncSession | AsyncConnection, district_id: int, grid: int) -> None:
    await session.execute(
        _BACKFILL, {"grid": grid, "d": district_id, "radius": get_settings().coverage_radius_m}
    )


_COVERAGE = text(
    """
    WITH g AS (SELECT unnest(CAST(:grids AS bigint[])) AS grid_id),
    cells AS (
        SELECT grid_id, count(*) AS n FROM patrol_cells
        WHERE district_id = :d AND grid_id = ANY(CAST(:grids AS bigint[])) GROUP BY grid_id
    ),
    hits AS (
        SELECT grid_id,
               count(DISTINCT cell_id) FILTER (WHERE at >= :since) AS visited,
               count(DISTINCT cell_id) FILTER (WHERE at >= :fresh) AS fresh
        FROM patrol_cell_hits
        WHERE district_id = :d AND grid_id = ANY(CAST(:grids AS bigint[]))
          AND at >= least(CAST(:since AS timestamptz), CAST(:fresh AS timestamptz))
          AND at < :until
        GROUP BY grid_id
    )
    SELECT g.grid_id, coalesce(cells.n, 0) AS cells, coalesce(hits.visited, 0) AS visited,
           coalesce(hits.fresh, 0) AS fresh
    FROM g LEFT JOIN cells USING (grid_id) LEFT JOIN hits USING (grid_id)
    """
)
_PATROLS = text(
    """
    SELECT p.grid_id, p.worker_id, u.display_name AS worker,
           (p.started_at AT TIME ZONE 'Asia/Shanghai')::date AS day, p.distance_m,
           greatest(extract(epoch FROM coalesce(p.ended_at, least(now(), :until)) - p.started_at)
                    - p.paused_s - coalesce(extract(epoch FROM now() - p.paused_at), 0), 0)
               AS seconds
    FROM patrols p JOIN users u ON u.id = p.worker_id
    WHERE p.district_id = :d AND p.grid_id = ANY(CAST(:grids AS bigint[]))
      AND p.started_at >= :since AND p.started_at < :until
    """
)
_GRID_STAFF = text(
    """
    SELECT DISTINCT pg.grid_id, u.id AS worker_id, u.display_name AS worker
    FROM post_grids pg JOIN posts po ON po.id = pg.post_id JOIN users u ON u.id = po.user_id
    WHERE pg.grid_id = ANY(CAST(:grids AS bigint[])) AND po.role IN ('grid_worker', 'grid_leader')
      AND po.starts_on <= current_date AND (po.ends_on IS NULL OR po.ends_on >= current_date)
    """
)


def days(since: datetime, until: datetime) -> list[date]:
    """The Shanghai dates of [since, until)."""
    first = since.astimezone(SHANGHAI).date()
    last = (until - timedelta(microseconds=1)).astimezone(SHANGHAI).date()
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def standards(
    session: AsyncSession, district_id: int, worker_ids: list[int], since: datetime, until: datetime
) -> dict[int, tuple[str, list[date]]]:
    """Per worker, the basis of the patrol standard and the days it applies to in [since, until)
    up to today: their duty days when they have any in the period (`duty_roster`), else the
    official calendar's working days (`working_days`)."""
    cal = await calendar(session)
    today = datetime.now(SHANGHAI).date()
    working = [x for x in days(since, until) if x <= today and cal.is_workday(x)]
    duty = await duty_days(session, district_id, worker_ids, since, until)
    out: dict[int, tuple[str, list[date]]] = {}
    for w in worker_ids:
        mine = sorted(x for x in duty.get(w, ()) if x <= today)
        out[w] = ("duty_roster", mine) if w in duty else ("working_days", working)
    return out


async def coverage(
    session: AsyncSession, grid: Any, since: datetime, until: datetime, stale_days: int
) -> dict[str, Any]:
    """`grid`: its place row (`service.place_of_grid`)."""
    return (await coverage_of(session, [grid], since, until, stale_days))[grid.grid_id]


async def coverage_of(
    session: AsyncSession, grids: list[Any], since: datetime, until: datetime, stale_days: int
) -> dict[int, dict[str, Any]]:
    """The coverage of many grids (rows with `grid_id` and `district_id`), by grid id: a fixed
    number of statements per district whatever the number of grids (the board and the district's
    field-work figures ask for hundreds)."""
    by_district: dict[int, list[int]] = defaultdict(list)
    for g in grids:
        by_district[int(g.district_id)].append(int(g.grid_id))
    out: dict[int, dict[str, Any]] = {}
    for d, ids in by_district.items():
        out.update(await _coverage_in(session, d, sorted(set(ids)), since, until, stale_days))
    return out


async def _coverage_in(
    session: AsyncSession,
    d: int,
    grid_ids: list[int],
    since: datetime,
    until: datetime,
    stale_days: int,
) -> dict[int, dict[str, Any]]:
    s = get_settings()
    for made in await ensure_cells(session, d, grid_ids):
        await _backfill(session, d, made)
    params = {"grids": grid_ids, "d": d, "since": since, "until": until}
    counts = {
        r.grid_id: r
        for r in await session.execute(
            _COVERAGE, {**params, "fresh": until - timedelta(days=stale_days)}
        )
    }
    per: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    by_day: dict[tuple[int, int, date], float] = defaultdict(float)
    patrols: dict[int, int] = defaultdict(int)
    distance: dict[int, float] = defaultdict(float)
    for r in await session.execute(_PATROLS, params):
        patrols[r.grid_id] += 1
        distance[r.grid_id] += float(r.distance_m)
        w = per[r.grid_id].setdefault(
            r.worker_id, {"worker_id": r.worker_id, "worker": r.worker, "s": 0.0}
        )
        w["s"] += float(r.seconds)
        by_day[(r.grid_id, r.worker_id, r.day)] += float(r.seconds)
    for r in await session.execute(_GRID_STAFF, {"grids": grid_ids}):
        per[r.grid_id].setdefault(
            r.worker_id, {"worker_id": r.worker_id, "worker": r.worker, "s": 0.0}
        )
    everyone = sorted({w for ws in per.values() for w in ws})
    basis = await standards(session, d, everyone, since, until)
    out: dict[int, dict[str, Any]] = {}
    for gid in grid_ids:
        workers = []
        for w in sorted(per[gid].values(), key=lambda x: (-x["s"], x["worker_id"])):
            hours = w["s"] / 3600
            kind, on = basis[w["worker_id"]]
            standard = s.patrol_hours_per_workday * len(on)
            workers.append(
                {
                    "worker_id": w["worker_id"],
                    "worker": w["worker"],
                    "hours": round(hours, 2),
                    "standard_basis": kind,
                    "working_days": len(on),
                    "standard_hours": standard,
                    "days_met": sum(
                        1
                        for x in on
                        if by_day.get((gid, w["worker_id"], x), 0.0) / 3600
                        >= s.patrol_hours_per_workday
                    ),
                    "met": hours >= standard,
                }
            )
        row = counts[gid]
        cells = int(row.cells)
        out[gid] = {
            "grid_id": gid,
            "since": since,
            "until": until,
            "cell_m": s.patrol_cell_m,
            "radius_m": s.coverage_radius_m,
            "cells": cells,
            "visited": int(row.visited),
            "share": round(int(row.visited) / cells, 4) if cells else 0.0,
            "stale_days": stale_days,
            "stale": cells - int(row.fresh),
            "patrols": patrols[gid],
            "distance_m": round(distance[gid], 1),
            "workers": workers,
        }
    return out
