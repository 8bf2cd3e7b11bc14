"""Patrols (巡查): start, pause, resume, end; batches of track points; the cleaned line.

- A worker has at most one patrol in progress (`patrol_in_progress`); a start with the same
  `client_id` answers the patrol it started (a retried request).
- A batch is checked whole before anything is stored (the first bad point answers, with its
  index in `field`): at most `patrol_batch_max` points, each in China, not in the future, not
  before the patrol began nor after it ended, no two with the same time or id. Points already
  stored (a retried batch, or overlapping batches) are skipped by the keys
  `(district_id, patrol_id, at)` and `(district_id, patrol_id, client_id)`: nothing is added twice.
- Points may come late (after the end) and in any order: the line is derived from all stored
  points in time order (`derive`) when the patrol is paused or ended, when a late batch arrives
  for an ended patrol, and when the patrol is read with new points since.
- Cleaning (`geo.track.clean_track`): poor accuracy, impossible speed, fixes during a pause are
  kept and flagged, and left out of the line. Distance: `ST_Length(track::geography)` (geodesic
  on the spheroid); duration: time on patrol, pauses excluded.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
from shapely import to_wkb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.policy import RULES, Principal
from app.auth.scope import resolve_rule
from app.config import get_settings
from app.errors import ApiError, not_found
from app.geometry import render
from app.patrols.schemas import PatrolStart, TrackBatch
from geo.crs import CRS, out_of_china, to_wgs84
from geo.track import clean_track

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "patrol_in_progress": (409, "已有进行中的巡查", "A patrol is already in progress"),
    "patrol_state": (409, "巡查当前状态下不能执行该操作", "Not possible in the patrol's state"),
    "not_your_grid": (422, "不是您负责的网格", "Not one of your grids"),
    "batch_too_large": (413, "轨迹点过多", "Too many points in one batch"),
    "point_outside_china": (422, "轨迹点不在中国境内", "The point is outside China"),
    "time_in_future": (422, "时间晚于当前时间", "The time is in the future"),
    "time_too_old": (422, "时间早于一年前", "The time is more than a year ago"),
    "before_patrol_start": (422, "时间早于巡查开始", "The time is before the patrol began"),
    "after_patrol_end": (422, "时间晚于巡查结束", "The time is after the patrol ended"),
    "duplicate_points": (422, "同一批次中有重复的轨迹点", "The batch repeats a point"),
    "checkin_too_far": (422, "打卡位置距打卡点过远", "Too far from the check-in point"),
    "unknown_purpose": (422, "走访目的不在目录中", "Unknown visit purpose"),
}
"""This package's error codes (registered in `app.extensions`)."""

_PLACE = text(
    """
    SELECT g.id AS grid_id, c.id AS community_id, s.id AS street_id,
           coalesce(d.id, s.id, c.id) AS district_id
    FROM grids g JOIN areas c ON c.id = g.community_id
    LEFT JOIN areas s ON s.id = c.parent_id LEFT JOIN areas d ON d.id = s.parent_id
    WHERE g.id = :grid AND g.deleted_at IS NULL
    """
)

PATROL_COLUMNS = """
    p.id, p.district_id, p.worker_id, u.display_name AS worker, p.grid_id, p.community_id,
    p.status, p.started_at, p.ended_at, p.paused_at, p.pauses, p.paused_s, p.points, p.kept,
    p.distance_m, p.dirty, p.purged_at, p.note,
    extract(epoch FROM coalesce(p.ended_at, now()) - p.started_at) - p.paused_s
      - coalesce(extract(epoch FROM now() - p.paused_at), 0) AS duration_s
"""
_ONE = text(
    f"SELECT {PATROL_COLUMNS} FROM patrols p JOIN users u ON u.id = p.worker_id WHERE p.id = :id"
)


def now() -> datetime:
    return datetime.now(UTC)


MAX_AGE = timedelta(days=366)
"""A phone offline for days is fine; a time more than a year back is a wrong clock."""


def _when(at: datetime | None, field: str = "at") -> datetime:
    t = at or now()
    if t < now() - MAX_AGE:
        raise ApiError(
            "time_too_old",
            detail=f"时间早于一年前：{t.isoformat()}",
            detail_en=f"More than a year ago: {t.isoformat()}",
            field=field,
        )
    if t > now() + timedelta(seconds=get_settings().patrol_future_seconds):
        raise ApiError(
            "time_in_future",
            detail=f"时间晚于当前时间：{t.isoformat()}",
            detail_en=f"The time is in the future: {t.isoformat()}",
            field=field,
        )
    return t


async def place_of_grid(session: AsyncSession | AsyncConnection, grid_id: int) -> Any:
    row = (await session.execute(_PLACE, {"grid": grid_id})).first()
    if row is None:
        raise not_found("网格", "Grid", grid_id)
    return row


def worker_grids(who: Principal) -> list[int]:
    return sorted(
        {g for p in who.posts if p.role in ("grid_worker", "grid_leader") for g in p.grid_ids}
    )


async def get(session: AsyncSession, patrol_id: int) -> Any:
    row = (await session.execute(_ONE, {"id": patrol_id})).first()
    if row is None:
        raise not_found("巡查", "Patrol", patrol_id)
    return row


async def start(session: AsyncSession, who: Principal, body: PatrolStart) -> tuple[Any, bool]:
    """(the patrol, whether it was created now)."""
    mine = worker_grids(who)
    grid_id = body.grid_id if body.grid_id is not None else (mine[0] if mine else None)
    if grid_id is None or grid_id not in mine:
        raise ApiError("not_your_grid", field="grid_id")
    place = await place_of_grid(session, grid_id)
    if body.client_id is not None:
        old = (
            await session.execute(
                text("SELECT id FROM patrols WHERE worker_id = :w AND client_id = :c"),
                {"w": who.user_id, "c": body.client_id},
            )
        ).scalar()
        if old is not None:
            return await get(session, old), False
    started = _when(body.started_at, "started_at")
    open_ = (
        await session.execute(
            text(
                "SELECT id FROM patrols WHERE worker_id = :w AND status <> 'ended' "
                "AND district_id = :d FOR UPDATE"
            ),
            {"w": who.user_id, "d": place.district_id},
        )
    ).scalar()
    if open_ is not None:
        raise ApiError(
            "patrol_in_progress",
            detail=f"巡查 {open_} 尚未结束",
            detail_en=f"Patrol {open_} has not ended",
            extra={"patrol_id": open_},
        )
    pid = (
        await session.execute(
            text(
                """
                INSERT INTO patrols (district_id, street_id, community_id, grid_id, worker_id,
                                     client_id, started_at, note)
                VALUES (:district, :street, :community, :grid, :worker, :client, :at, :note)
                RETURNING id
                """
            ),
            {
                "district": place.district_id,
                "street": place.street_id,
                "community": place.community_id,
                "grid": grid_id,
                "worker": who.user_id,
                "client": body.client_id,
                "at": started,
                "note": body.note,
            },
        )
    ).scalar_one()
    return await get(session, pid), True


def _state(p: Any, allowed: tuple[str, ...], action: str) -> None:
    if p.status not in allowed:
        raise ApiError(
            "patrol_state",
            detail=f"巡查状态为 {p.status}，不能{action}",
            detail_en=f"The patrol is {p.status}: cannot {action}",
        )


def _not_before(t: datetime, floor: datetime, field: str = "at") -> None:
    if t < floor:
        raise ApiError(
            "before_patrol_start",
            detail=f"时间 {t.isoformat()} 早于 {floor.isoformat()}",
            detail_en=f"{t.isoformat()} is before {floor.isoformat()}",
            field=field,
        )


async def pause(session: AsyncSession, patrol_id: int, at: datetime | None) -> Any:
    p = await get(session, patrol_id)
    _state(p, ("active",), "暂停")
    t = _when(at)
    _not_before(t, _last_change(p))
    await session.execute(
        text(
            "UPDATE patrols SET status = 'paused', paused_at = :t WHERE id = :id AND district_id = :d"
        ),
        {"t": t, "id": p.id, "d": p.district_id},
    )
    await derive(session, p.id, p.district_id)
    return await get(session, p.id)


def _last_change(p: Any) -> datetime:
    last = p.paused_at or p.started_at
    for _, to in p.pauses:
        last = max(last, datetime.fromisoformat(to))
    return last


async def _close_pause(session: AsyncSession, p: Any, t: datetime, status: str) -> None:
    pauses = [*p.pauses, [p.paused_at.isoformat(), t.isoformat()]]
    await session.execute(
        text(
            "UPDATE patrols SET status = :status, paused_at = NULL, pauses = CAST(:pauses AS jsonb), "
            "paused_s = paused_s + :secs, dirty = true WHERE id = :id AND district_id = :d"
        ),
        {
            "status": status,
            "pauses": orjson.dumps(pauses).decode(),
            "secs": (t - p.paused_at).total_seconds(),
            "id": p.id,
            "d": p.district_id,
        },
    )


async def resume(session: AsyncSession, patrol_id: int, at: datetime | None) -> Any:
    p = await get(session, patrol_id)
    _state(p, ("paused",), "继续")
    t = _when(at)
    _not_before(t, p.paused_at)
    await _close_pause(session, p, t, "active")
    return await get(session, p.id)


async def end(session: AsyncSession, patrol_id: int, at: datetime | None) -> Any:
    p = await get(session, patrol_id)
    _state(p, ("active", "paused"), "结束")
    t = _when(at)
    _not_before(t, _last_change(p))
    if p.status == "paused":
        await _close_pause(session, p, t, "paused")
    await session.execute(
        text(
            "UPDATE patrols SET status = 'ended', ended_at = :t, dirty = true "
            "WHERE id = :id AND district_id = :d"
        ),
        {"t": t, "id": p.id, "d": p.district_id},
    )
    late = await session.execute(
        text(
            "SELECT count(*) FROM patrol_points WHERE patrol_id = :id AND district_id = :d "
            "AND at > :t"
        ),
        {"id": p.id, "d": p.district_id, "t": t},
    )
    if late.scalar_one():
        raise ApiError(
            "after_patrol_end",
            detail="已有轨迹点晚于该结束时间",
            detail_en="Points already stored are later than this end",
            field="at",
        )
    await derive(session, p.id, p.district_id)
    return await get(session, p.id)


# --- points -------------------------------------------------------------------------------------

_INSERT_POINTS = text(
    """
    WITH v AS (
        SELECT * FROM unnest(CAST(:ats AS timestamptz[]), CAST(:lons AS float8[]),
                             CAST(:lats AS float8[]), CAST(:accs AS float8[]),
                             CAST(:speeds AS float8[]), CAST(:ids AS text[]))
               AS u(at, lon, lat, acc, speed, cid)
    ), ins AS (
        INSERT INTO patrol_points (district_id, patrol_id, at, client_id, geom, accuracy_m,
                                   speed_mps, input_crs, flag)
        SELECT :d, :p, v.at, v.cid, ST_SetSRID(ST_MakePoint(v.lon, v.lat), 4326), v.acc, v.speed,
               :crs, CASE WHEN v.acc > :max_acc THEN 'accuracy' END
        FROM v
        ON CONFLICT DO NOTHING
        RETURNING flag
    ), up AS (
        UPDATE patrols SET points = points + (SELECT count(*) FROM ins), dirty = true
        WHERE id = :p AND district_id = :d AND EXISTS (SELECT 1 FROM ins)
    )
    SELECT count(*) AS stored, count(flag) AS flagged FROM ins
    """
)


def _bad_point(code: str, i: int, field: str, zh: str, en: str) -> ApiError:
    return ApiError(code, detail=zh, detail_en=en, field=f"points[{i}].{field}", extra={"index": i})


def check_batch(p: Any, batch: TrackBatch) -> dict[str, Any]:
    """The whole batch checked and converted to WGS84, or the first problem."""
    s = get_settings()
    pts = batch.points
    if len(pts) > s.patrol_batch_max:
        raise ApiError(
            "batch_too_large",
            detail=f"一批最多 {s.patrol_batch_max} 个轨迹点，收到 {len(pts)} 个",
            detail_en=f"At most {s.patrol_batch_max} points a batch, got {len(pts)}",
            field="points",
            extra={"max": s.patrol_batch_max, "received": len(pts)},
        )
    lon = np.array([q.lon for q in pts], dtype=np.float64)
    lat = np.array([q.lat for q in pts], dtype=np.float64)
    finite = np.isfinite(lon) & np.isfinite(lat)
    outside = ~finite | np.asarray(out_of_china(lon, lat), dtype=bool).reshape(-1)
    if outside.any():
        i = int(np.argmax(outside))
        raise _bad_point(
            "point_outside_china",
            i,
            "lon",
            f"第 {i + 1} 个轨迹点 ({pts[i].lon}, {pts[i].lat}) 不在中国境内（经度、纬度是否颠倒？）",
            f"Point {i} ({pts[i].lon}, {pts[i].lat}) is outside China (lon and lat swapped?)",
        )
    limit = now() + timedelta(seconds=s.patrol_future_seconds)
    seen_at: set[datetime] = set()
    seen_id: set[str] = set()
    for i, q in enumerate(pts):
        if q.at > limit:
            raise _bad_point(
                "time_in_future",
                i,
                "at",
                f"第 {i + 1} 个轨迹点的时间晚于当前时间",
                f"Point {i} is in the future",
            )
        if q.at < p.started_at:
            raise _bad_point(
                "before_patrol_start",
                i,
                "at",
                f"第 {i + 1} 个轨迹点的时间早于巡查开始",
                f"Point {i} is before the patrol began",
            )
        if p.ended_at is not None and q.at > p.ended_at:
            raise _bad_point(
                "after_patrol_end",
                i,
                "at",
                f"第 {i + 1} 个轨迹点的时间晚于巡查结束",
                f"Point {i} is after the patrol ended",
            )
        if q.at in seen_at or (q.id is not None and q.id in seen_id):
            raise _bad_point(
                "duplicate_points",
                i,
                "at" if q.at in seen_at else "id",
                f"第 {i + 1} 个轨迹点与本批次中的另一个重复",
                f"Point {i} repeats another one",
            )
        seen_at.add(q.at)
        if q.id is not None:
            seen_id.add(q.id)
    wlon, wlat = to_wgs84(lon, lat, CRS(batch.crs))
    return {
        "ats": [q.at for q in pts],
        "lons": [float(x) for x in wlon],
        "lats": [float(y) for y in wlat],
        "accs": [float(q.accuracy_m) for q in pts],
        "speeds": [q.speed_mps for q in pts],
        "ids": [q.id for q in pts],
        "crs": CRS(batch.crs).value,
        "max_acc": s.patrol_max_accuracy_m,
    }


async def add_points(session: AsyncSession, patrol_id: int, batch: TrackBatch) -> dict[str, int]:
    p = await get(session, patrol_id)
    params = check_batch(p, batch)
    row = (await session.execute(_INSERT_POINTS, {**params, "d": p.district_id, "p": p.id})).one()
    if p.status == "ended" and row.stored:
        await derive(session, p.id, p.district_id)  # a late batch: the line and coverage change
    n = len(batch.points)
    return {
        "received": n,
        "stored": int(row.stored),
        "duplicates": n - int(row.stored),
        "flagged": int(row.flagged),
    }


# --- the line -----------------------------------------------------------------------------------

_POINTS = text(
    "SELECT at, ST_X(geom) AS lon, ST_Y(geom) AS lat, accuracy_m FROM patrol_points "
    "WHERE patrol_id = :p AND district_id = :d ORDER BY at"
)
_FLAGS = text(
    """
    UPDATE patrol_points pp SET flag = v.flag
    FROM unnest(CAST(:ats AS timestamptz[]), CAST(:flags AS text[])) AS v(at, flag)
    WHERE pp.patrol_id = :p AND pp.district_id = :d AND pp.at = v.at
      AND pp.flag IS DISTINCT FROM v.flag
    """
)
_TRACK = text(
    """
    WITH t AS (SELECT ST_SetSRID(ST_GeomFromWKB(CAST(:wkb AS bytea)), 4326) AS g)
    UPDATE patrols SET
        track = t.g,
        track_display = ST_Multi(ST_Transform(ST_Simplify(ST_Transform(t.g, 3857), :tol, true),
                                              4326)),
        distance_m = coalesce(ST_Length(t.g::geography), 0),
        kept = :kept, dirty = false, derived_at = now()
    FROM t
    WHERE id = :p AND district_id = :d
    """
)


def _epoch(t: datetime) -> float:
    return t.timestamp()


async def derive(session: AsyncSession | AsyncConnection, patrol_id: int, district_id: int) -> None:
    """Clean the points, store their flags, the line, its display version and length, and the
    coverage cells the line passed (`app.patrols.coverage.record_hits`)."""
    from app.patrols.coverage import record_hits

    s = get_settings()
    p = (
        await session.execute(
            text(
                "SELECT pauses, paused_at, purged_at FROM patrols WHERE id = :p AND district_id = :d"
            ),
            {"p": patrol_id, "d": district_id},
        )
    ).one()
    if p.purged_at is not None:
        return  # only the line is left: nothing to derive it from
    rows = (await session.execute(_POINTS, {"p": patrol_id, "d": district_id})).all()
    pauses = [
        (datetime.fromisoformat(a).timestamp(), datetime.fromisoformat(b).timestamp())
        for a, b in p.pauses
    ]
    if p.paused_at is not None:
        pauses.append((p.paused_at.timestamp(), math.inf))
    cleaned = clean_track(
        [_epoch(r.at) for r in rows],
        [r.lon for r in rows],
        [r.lat for r in rows],
        [r.accuracy_m for r in rows],
        sorted(pauses),
        max_accuracy_m=s.patrol_max_accuracy_m,
        max_speed_mps=s.patrol_max_speed_mps,
    )
    if rows:
        await session.execute(
            _FLAGS,
            {"ats": [r.at for r in rows], "flags": cleaned.flags, "p": patrol_id, "d": district_id},
        )
    line = cleaned.line([r.lon for r in rows], [r.lat for r in rows])
    lat0 = rows[0].lat if rows else 0.0
    await session.execute(
        _TRACK,
        {
            "wkb": to_wkb(line) if line is not None else None,
            "tol": s.patrol_simplify_m / max(math.cos(math.radians(lat0)), 0.01),
            "kept": cleaned.kept,
            "p": patrol_id,
            "d": district_id,
        },
    )
    await record_hits(session, patrol_id, district_id)


async def detail(session: AsyncSession, patrol_id: int, crs: CRS) -> dict[str, Any]:
    p = await get(session, patrol_id)
    if p.dirty and p.purged_at is None and p.status != "active":
        await derive(session, p.id, p.district_id)
        p = await get(session, p.id)
    extra = (
        await session.execute(
            text(
                """
                SELECT ST_AsGeoJSON(track_display, 7) AS line,
                       (SELECT coalesce(jsonb_object_agg(flag, n), '{}') FROM (
                            SELECT flag, count(*) AS n FROM patrol_points
                            WHERE patrol_id = :p AND district_id = :d AND flag IS NOT NULL
                            GROUP BY flag) f) AS flagged
                FROM patrols WHERE id = :p AND district_id = :d
                """
            ),
            {"p": p.id, "d": p.district_id},
        )
    ).one()
    return out(p, extra.flagged, render(extra.line, crs) if extra.line else None)


def out(p: Any, flagged: dict[str, int] | None = None, line: Any = None) -> dict[str, Any]:
    return {
        "id": p.id,
        "worker_id": p.worker_id,
        "worker": p.worker,
        "grid_id": p.grid_id,
        "community_id": p.community_id,
        "status": p.status,
        "started_at": p.started_at,
        "ended_at": p.ended_at,
        "paused_at": p.paused_at,
        "pauses": p.pauses,
        "duration_s": round(max(float(p.duration_s), 0.0), 1),
        "distance_m": round(float(p.distance_m), 1),
        "points": p.points,
        "kept": p.kept,
        "flagged": flagged or {},
        "purged": p.purged_at is not None,
        "note": p.note,
        "line": line,
    }


async def list_patrols(
    session: AsyncSession,
    who: Principal,
    *,
    worker_id: int | None,
    grid_id: int | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int]:
    vis = (await resolve_rule(session, who, RULES["patrols:read"])).sql("p", owner="worker_id")
    rows = (
        await session.execute(
            text(
                f"""
                SELECT {PATROL_COLUMNS}, count(*) OVER () AS total
                FROM patrols p JOIN users u ON u.id = p.worker_id
                WHERE {vis.sql}
                  AND (CAST(:worker AS bigint) IS NULL OR p.worker_id = :worker)
                  AND (CAST(:grid AS bigint) IS NULL OR p.grid_id = :grid)
                  AND (CAST(:since AS timestamptz) IS NULL OR p.started_at >= :since)
                  AND (CAST(:until AS timestamptz) IS NULL OR p.started_at < :until)
                ORDER BY p.started_at DESC, p.id DESC LIMIT :limit OFFSET :offset
                """
            ),
            {
                **vis.binds,
                "worker": worker_id,
                "grid": grid_id,
                "since": since,
                "until": until,
                "limit": limit,
                "offset": offset,
            },
        )
    ).all()
    total = rows[0].total if rows else 0
    return [out(r) for r in rows], total
