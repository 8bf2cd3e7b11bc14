"""A month of field work for the demo community's workers (立新社区: `worker` and `leader`): a
patrol every working day of the 30 days before the load (a seeded walk inside their grid, a fix
a minute), check-in points with their check-ins, visits to buildings. Deterministic for a given
load day (every random choice is seeded by the worker, the grid and the date); about a second.
Idempotent: nothing is added when the workers already have patrols."""

from __future__ import annotations

import hashlib
import math
import random
from datetime import date, datetime, timedelta
from typing import Any

from shapely import wkb
from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.patrols.service import derive, place_of_grid
from app.schemas import SHANGHAI
from geo.measure import GEOD

WORKERS = ("worker", "leader")
DAYS = 30
FIX_SECONDS = 60
PURPOSES = ("condolence", "safety", "policy", "dispute", "care", "info")

_GRIDS = text(
    """
    SELECT u.id AS user_id, u.username, pg.grid_id, ST_AsBinary(b.boundary) AS wkb
    FROM users u JOIN posts p ON p.user_id = u.id JOIN post_grids pg ON pg.post_id = p.id
    JOIN grid_boundaries b ON b.grid_id = pg.grid_id AND b.valid_to IS NULL
    WHERE u.username = ANY(:names) ORDER BY u.username, pg.grid_id
    """
)


def _rng(*key: object) -> random.Random:
    return random.Random(int(hashlib.sha256(repr(key).encode()).hexdigest()[:16], 16))


def _walk(area: Any, rng: random.Random, n: int) -> list[tuple[float, float]]:
    """A walk of `n` fixes, ~1.1 m/s, turning now and then, staying inside `area`."""
    c = area.representative_point()
    minx, miny, maxx, maxy = area.bounds
    x, y = c.x, c.y
    for _ in range(50):
        px, py = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        if area.contains(Point(px, py)):
            x, y = px, py
            break
    heading = rng.uniform(0, 360)
    out = [(x, y)]
    for _ in range(n - 1):
        if rng.random() < 0.15:
            heading += rng.choice((-90, 90, 180))
        for _attempt in range(8):
            nx, ny, _ = GEOD.fwd(x, y, heading, FIX_SECONDS * rng.uniform(0.8, 1.4))
            if area.contains(Point(nx, ny)):
                break
            heading += rng.uniform(90, 270)
        else:
            nx, ny = x, y
        x, y = nx, ny
        out.append((x, y))
    return out


async def _workdays(conn: AsyncConnection, today: date) -> list[date]:
    from app.loop.deadlines import calendar

    cal = await calendar(conn)
    return [d for d in (today - timedelta(days=i) for i in range(DAYS, 0, -1)) if cal.is_workday(d)]


async def load_patrols(conn: AsyncConnection, today: date | None = None) -> int:
    """Patrols added (0 when the demo already has them)."""
    from app.patrols.visits import CATALOGUE

    await conn.execute(
        text(
            "INSERT INTO visit_purposes (code, name, name_en, sort) VALUES (:c, :n, :e, :s) "
            "ON CONFLICT (code) DO NOTHING"
        ),
        [{"c": c, "n": n, "e": e, "s": o} for c, n, e, o in CATALOGUE],
    )
    rows = list(await conn.execute(_GRIDS, {"names": list(WORKERS)}))
    if not rows:
        return 0
    users = sorted({r.user_id for r in rows})
    had = await conn.execute(
        text("SELECT 1 FROM patrols WHERE worker_id = ANY(:u) LIMIT 1"), {"u": users}
    )
    if had.first() is not None:
        return 0
    today = today or datetime.now(SHANGHAI).date()
    days = await _workdays(conn, today)
    first: dict[int, Any] = {}
    for r in rows:
        first.setdefault(r.user_id, r)
    made = 0
    for r in first.values():
        area = wkb.loads(bytes(r.wkb))
        place = await place_of_grid(conn, r.grid_id)
        checkpoints = await _checkpoints(conn, place, area, r.username)
        buildings = list(
            (
                await conn.execute(
                    text("SELECT id FROM buildings WHERE grid_id = :g ORDER BY id"),
                    {"g": r.grid_id},
                )
            ).scalars()
        )
        for day in days:
            rng = _rng(r.username, r.grid_id, day.isoformat())
            hours = rng.choice((3.5, 4.0, 4.5, 2.5, 4.0))
            start = datetime.combine(day, datetime.min.time(), SHANGHAI) + timedelta(
                hours=8, minutes=30 + rng.randrange(0, 40)
            )
            n = int(hours * 3600 / FIX_SECONDS)
            track = _walk(area, rng, n)
            pid = await _patrol(conn, place, r.user_id, start, track, rng)
            made += 1
            for k, cp in enumerate(checkpoints):
                if rng.random() < 0.8:  # some days a point is missed
                    at = start + timedelta(minutes=20 + 40 * k)
                    await _checkin(conn, place, cp, r.user_id, pid, at, rng)
            for j in range(2 if buildings else 0):
                b = buildings[rng.randrange(len(buildings))]
                await conn.execute(
                    text(
                        """
                        INSERT INTO visits (district_id, community_id, grid_id, building_id,
                                            worker_id, patrol_id, purpose_code, outcome, note, at)
                        VALUES (:d, :c, :g, :b, :w, :p, :purpose, :outcome, :note, :at)
                        """
                    ),
                    {
                        "d": place.district_id,
                        "c": place.community_id,
                        "g": place.grid_id,
                        "b": b,
                        "w": r.user_id,
                        "p": pid,
                        "purpose": PURPOSES[(day.toordinal() + j) % len(PURPOSES)],
                        "outcome": rng.choice(("done", "done", "not_home", "follow_up")),
                        "note": "示例走访记录",
                        "at": start + timedelta(minutes=30 + 60 * j),
                    },
                )
            await derive(conn, pid, place.district_id)
    return made


async def _patrol(
    conn: AsyncConnection,
    place: Any,
    worker: int,
    start: datetime,
    track: list[tuple[float, float]],
    rng: random.Random,
) -> int:
    end = start + timedelta(seconds=FIX_SECONDS * len(track))
    pid = (
        await conn.execute(
            text(
                "INSERT INTO patrols (district_id, street_id, community_id, grid_id, worker_id, "
                "status, started_at, ended_at, note) VALUES (:d, :s, :c, :g, :w, 'ended', :t0, "
                ":t1, '示例巡查') RETURNING id"
            ),
            {
                "d": place.district_id,
                "s": place.street_id,
                "c": place.community_id,
                "g": place.grid_id,
                "w": worker,
                "t0": start,
                "t1": end,
            },
        )
    ).scalar_one()
    accs = [rng.choice((5.0, 8.0, 10.0, 12.0, 15.0, 80.0)) for _ in track]
    await conn.execute(
        text(
            """
            WITH ins AS (
                INSERT INTO patrol_points (district_id, patrol_id, at, geom, accuracy_m, input_crs)
                SELECT :d, :p, u.at, ST_SetSRID(ST_MakePoint(u.lon, u.lat), 4326), u.acc, 'gcj02'
                FROM unnest(CAST(:ats AS timestamptz[]), CAST(:lons AS float8[]),
                            CAST(:lats AS float8[]), CAST(:accs AS float8[])) AS u(at, lon, lat, acc)
                RETURNING 1
            )
            UPDATE patrols SET points = (SELECT count(*) FROM ins) WHERE id = :p AND district_id = :d
            """
        ),
        {
            "d": place.district_id,
            "p": pid,
            "ats": [start + timedelta(seconds=FIX_SECONDS * i + 1) for i in range(len(track))],
            "lons": [x for x, _ in track],
            "lats": [y for _, y in track],
            "accs": accs,
        },
    )
    return int(pid)


async def _checkpoints(conn: AsyncConnection, place: Any, area: Any, who: str) -> list[Any]:
    rng = _rng("checkpoints", who, place.grid_id)
    names = ("消防通道", "建筑工地", "农贸市场")
    out = []
    minx, miny, maxx, maxy = area.bounds
    for i, name in enumerate(names):
        for _ in range(50):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if area.contains(Point(x, y)):
                break
        else:
            x, y = area.representative_point().x, area.representative_point().y
        row = (
            await conn.execute(
                text(
                    "INSERT INTO checkpoints (district_id, community_id, grid_id, name, location, "
                    "radius_m, schedule, per_week, created_at) VALUES (:d, :c, :g, :name, "
                    "ST_SetSRID(ST_MakePoint(:x, :y), 4326), 50, :schedule, :per_week, "
                    "now() - interval '60 days') RETURNING id, ST_X(location) AS lon, "
                    "ST_Y(location) AS lat"
                ),
                {
                    "d": place.district_id,
                    "c": place.community_id,
                    "g": place.grid_id,
                    "name": name,
                    "x": x,
                    "y": y,
                    "schedule": "weekly" if i == 2 else "working_day",
                    "per_week": 2 if i == 2 else None,
                },
            )
        ).one()
        out.append(row)
    return out


async def _checkin(
    conn: AsyncConnection,
    place: Any,
    cp: Any,
    worker: int,
    patrol: int,
    at: datetime,
    rng: random.Random,
) -> None:
    d = rng.uniform(2, 70)
    lon, lat, _ = GEOD.fwd(cp.lon, cp.lat, rng.uniform(0, 360), d)
    acc = rng.choice((5.0, 10.0, 20.0))
    await conn.execute(
        text(
            "INSERT INTO checkins (district_id, checkpoint_id, community_id, grid_id, worker_id, "
            "patrol_id, at, location, input_crs, accuracy_m, distance_m, accepted) VALUES "
            "(:d, :cp, :c, :g, :w, :p, :at, ST_SetSRID(ST_MakePoint(:x, :y), 4326), 'gcj02', "
            ":acc, :dist, :ok)"
        ),
        {
            "d": place.district_id,
            "cp": cp.id,
            "c": place.community_id,
            "g": place.grid_id,
            "w": worker,
            "p": patrol,
            "at": at,
            "x": lon,
            "y": lat,
            "acc": acc,
            "dist": round(d, 1),
            "ok": d <= 50 + min(acc, 50.0) and not math.isnan(d),
        },
    )
