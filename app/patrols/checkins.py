"""Check-in points (打卡点) and check-ins (打卡).

A check-in is accepted when the reported position is within the point's radius, widened by the
reported accuracy up to `patrol_max_accuracy_m` (a fix of ±20 m 60 m away from a 50 m point is
accepted; a fix of ±300 m is not widened by more than 50 m). Outside that but within
`checkin_far_m` it is stored and flagged (`accepted: false`); farther it is refused
(`checkin_too_far`) and nothing is stored.

Schedules: `working_day` (one accepted check-in every working day of the official calendar) or
`weekly` with `per_week` (that many accepted check-ins each ISO week). Missed check-ins are the
periods of a community's active points with fewer accepted check-ins than the schedule asks.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.config import get_settings
from app.errors import ApiError, not_found
from app.geometry import parse_lonlat, point_out
from app.loop.deadlines import calendar
from app.patrols import coverage
from app.patrols.schemas import CheckinIn, CheckpointIn, CheckpointUpdate
from app.patrols.service import _when, place_of_grid
from app.schemas import SHANGHAI
from geo.crs import CRS

_CP_COLUMNS = (
    "id, district_id, grid_id, community_id, name, ST_X(location) AS lon, ST_Y(location) AS lat, "
    "radius_m, schedule, per_week, active, created_at"
)


def checkpoint_out(r: Any, crs: CRS = CRS.GCJ02) -> dict[str, Any]:
    lon, lat = point_out(r.lon, r.lat, crs)
    return {
        "id": r.id,
        "grid_id": r.grid_id,
        "community_id": r.community_id,
        "name": r.name,
        "lon": lon,
        "lat": lat,
        "crs": crs,
        "radius_m": r.radius_m,
        "schedule": r.schedule,
        "per_week": r.per_week,
        "active": r.active,
    }


async def get_checkpoint(session: AsyncSession, checkpoint_id: int) -> Any:
    row = (
        await session.execute(
            text(f"SELECT {_CP_COLUMNS} FROM checkpoints WHERE id = :id"), {"id": checkpoint_id}
        )
    ).first()
    if row is None:
        raise not_found("打卡点", "Check-in point", checkpoint_id)
    return row


async def create_checkpoint(
    session: AsyncSession, grid_id: int, body: CheckpointIn, who: Principal
) -> Any:
    if body.schedule == "weekly" and body.per_week is None:
        raise ApiError(
            "validation_error",
            detail="每周打卡需要填写每周次数",
            detail_en="A weekly schedule needs per_week",
            field="per_week",
        )
    place = await place_of_grid(session, grid_id)
    lon, lat = parse_lonlat(body.lon, body.lat, body.crs)
    inside = (
        await session.execute(
            text(
                "SELECT ST_Intersects(boundary, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)) "
                "FROM grid_boundaries WHERE grid_id = :g AND valid_to IS NULL"
            ),
            {"lon": lon, "lat": lat, "g": grid_id},
        )
    ).scalar()
    if not inside:
        raise ApiError(
            "validation_error",
            detail="打卡点不在该网格内",
            detail_en="The check-in point is not inside the grid",
            field="lon,lat",
        )
    cid = (
        await session.execute(
            text(
                """
                INSERT INTO checkpoints (district_id, community_id, grid_id, name, location,
                                         radius_m, schedule, per_week, created_by)
                VALUES (:d, :c, :g, :name, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :r,
                        :schedule, :per_week, :by)
                RETURNING id
                """
            ),
            {
                "d": place.district_id,
                "c": place.community_id,
                "g": grid_id,
                "name": body.name,
                "lon": lon,
                "lat": lat,
                "r": body.radius_m,
                "schedule": body.schedule,
                "per_week": body.per_week if body.schedule == "weekly" else None,
                "by": who.user_id,
            },
        )
    ).scalar_one()
    await coverage.ensure_lattice(session, place.district_id, grid_id)
    return await get_checkpoint(session, cid)


async def update_checkpoint(
    session: AsyncSession, checkpoint_id: int, body: CheckpointUpdate
) -> Any:
    cp = await get_checkpoint(session, checkpoint_id)
    await session.execute(
        text(
            "UPDATE checkpoints SET name = coalesce(:name, name), "
            "radius_m = coalesce(:r, radius_m), active = coalesce(:active, active) "
            "WHERE id = :id AND district_id = :d"
        ),
        {
            "name": body.name,
            "r": body.radius_m,
            "active": body.active,
            "id": cp.id,
            "d": cp.district_id,
        },
    )
    return await get_checkpoint(session, cp.id)


async def list_checkpoints(session: AsyncSession, grid_id: int) -> list[Any]:
    return list(
        await session.execute(
            text(f"SELECT {_CP_COLUMNS} FROM checkpoints WHERE grid_id = :g ORDER BY id"),
            {"g": grid_id},
        )
    )


_CHECKIN_COLUMNS = "id, checkpoint_id, worker_id, patrol_id, at, accuracy_m, distance_m, accepted"


async def check_in(
    session: AsyncSession, checkpoint_id: int, body: CheckinIn, who: Principal
) -> tuple[Any, bool]:
    """(the check-in, whether it was stored now)."""
    s = get_settings()
    cp = await get_checkpoint(session, checkpoint_id)
    if body.client_id is not None:
        old = (
            await session.execute(
                text(
                    f"SELECT {_CHECKIN_COLUMNS} FROM checkins WHERE district_id = :d "
                    "AND worker_id = :w AND client_id = :c"
                ),
                {"d": cp.district_id, "w": who.user_id, "c": body.client_id},
            )
        ).first()
        if old is not None:
            return old, False
    if not cp.active:
        raise ApiError("validation_error", detail="打卡点已停用", detail_en="The point is retired")
    lon, lat = parse_lonlat(body.lon, body.lat, body.crs)
    at = _when(body.at)
    distance = (
        await session.execute(
            text(
                "SELECT ST_Distance(location::geography, "
                "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography) "
                "FROM checkpoints WHERE id = :id AND district_id = :d"
            ),
            {"lon": lon, "lat": lat, "id": cp.id, "d": cp.district_id},
        )
    ).scalar_one()
    if distance > s.checkin_far_m:
        raise ApiError(
            "checkin_too_far",
            detail=f"距打卡点「{cp.name}」{distance:.0f} 米，超过 {s.checkin_far_m:.0f} 米",
            detail_en=f"{distance:.0f} m from '{cp.name}', more than {s.checkin_far_m:.0f} m",
            field="lon,lat",
            extra={"distance_m": round(distance, 1), "radius_m": cp.radius_m},
        )
    if body.patrol_id is not None:
        mine = (
            await session.execute(
                text("SELECT 1 FROM patrols WHERE id = :p AND worker_id = :w"),
                {"p": body.patrol_id, "w": who.user_id},
            )
        ).scalar()
        if mine is None:
            raise not_found("巡查", "Patrol", body.patrol_id)
    accepted = distance <= cp.radius_m + min(body.accuracy_m, s.patrol_max_accuracy_m)
    row = (
        await session.execute(
            text(
                f"""
                INSERT INTO checkins (district_id, checkpoint_id, community_id, grid_id, worker_id,
                                      patrol_id, client_id, at, location, input_crs, accuracy_m,
                                      distance_m, accepted)
                VALUES (:d, :cp, :c, :g, :w, :p, :client, :at,
                        ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :crs, :acc, :dist, :ok)
                RETURNING {_CHECKIN_COLUMNS}
                """
            ),
            {
                "d": cp.district_id,
                "cp": cp.id,
                "c": cp.community_id,
                "g": cp.grid_id,
                "w": who.user_id,
                "p": body.patrol_id,
                "client": body.client_id,
                "at": at,
                "lon": lon,
                "lat": lat,
                "crs": CRS(body.crs).value,
                "acc": body.accuracy_m,
                "dist": round(distance, 1),
                "ok": accepted,
            },
        )
    ).one()
    return row, True


def _week(d: date) -> str:
    y, w, _ = d.isocalendar()
    return f"{y}-W{w:02d}"


async def missed(
    session: AsyncSession, area_id: int, since: date, until: date, grid_id: int | None = None
) -> dict[str, Any]:
    """Per active check-in point at or below the area (of one grid of it: `grid_id`), the periods
    of [since, until] (dates, Shanghai; never after today) with fewer accepted check-ins than its
    schedule asks."""
    community_ids = list(
        (
            await session.execute(
                text(
                    "WITH RECURSIVE below(id) AS (SELECT id FROM areas WHERE id = :a "
                    "UNION ALL SELECT a.id FROM areas a JOIN below ON a.parent_id = below.id) "
                    "SELECT id FROM below"
                ),
                {"a": area_id},
            )
        ).scalars()
    )
    grids = None if grid_id is None else [grid_id]
    return (await missed_in(session, community_ids, since, until, grids))[0]


async def missed_in(
    session: AsyncSession,
    community_ids: list[int],
    since: date,
    until: date,
    grid_ids: list[int] | None = None,
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """`missed` over these communities (only these grids' points: `grid_ids`), and the same
    figures per grid (expected, done, rate): one pass for a district's hundreds of grids."""
    today = datetime.now(SHANGHAI).date()
    last = min(until, today)
    cal = await calendar(session)
    points = list(
        await session.execute(
            text(
                "SELECT id, name, grid_id, schedule, per_week, "
                "(created_at AT TIME ZONE 'Asia/Shanghai')::date AS since FROM checkpoints "
                "WHERE community_id = ANY(:c) AND active "
                "AND (CAST(:all AS boolean) OR grid_id = ANY(CAST(:g AS bigint[]))) ORDER BY id"
            ),
            {"c": community_ids, "all": grid_ids is None, "g": grid_ids or []},
        )
    )
    done: dict[tuple[int, date], int] = {}
    if points:
        for r in await session.execute(
            text(
                "SELECT checkpoint_id, (at AT TIME ZONE 'Asia/Shanghai')::date AS day, "
                "count(*) AS n FROM checkins WHERE checkpoint_id = ANY(:ids) AND accepted "
                "AND at >= :lo AND at < :hi GROUP BY 1, 2"
            ),
            {
                "ids": [p.id for p in points],
                "lo": datetime.combine(since, datetime.min.time(), SHANGHAI),
                "hi": datetime.combine(last + timedelta(days=1), datetime.min.time(), SHANGHAI),
            },
        ):
            done[(r.checkpoint_id, r.day)] = int(r.n)
    span = [since + timedelta(days=i) for i in range(max((last - since).days + 1, 0))]
    out: list[dict[str, Any]] = []
    expected_total = done_total = 0
    per: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for p in points:
        mine = [d for d in span if d >= p.since]
        if p.schedule == "working_day":
            periods = [(d.isoformat(), [d], 1) for d in mine if cal.is_workday(d)]
        else:
            weeks: dict[str, list[date]] = {}
            for d in mine:
                weeks.setdefault(_week(d), []).append(d)
            periods = [(w, ds, int(p.per_week or 1)) for w, ds in weeks.items()]
        for label, ds, want in periods:
            got = sum(done.get((p.id, d), 0) for d in ds)
            expected_total += want
            done_total += min(got, want)
            per[p.grid_id][0] += want
            per[p.grid_id][1] += min(got, want)
            if got < want:
                out.append(
                    {
                        "checkpoint_id": p.id,
                        "checkpoint": p.name,
                        "grid_id": p.grid_id,
                        "period": label,
                        "expected": want,
                        "done": got,
                    }
                )
    by_grid = {
        g: {"expected": e, "done": k, "rate": round(k / e, 4) if e else None}
        for g, (e, k) in per.items()
    }
    return {
        "since": since,
        "until": until,
        "expected": expected_total,
        "done": done_total,
        "rate": round(done_total / expected_total, 4) if expected_total else None,
        "missed": out,
    }, by_grid
