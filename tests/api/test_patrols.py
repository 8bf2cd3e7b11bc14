"""Patrols (巡查): start / pause / resume / end, batches of track points (idempotent, late, out of
order), cleaning, the geodesic length to the metre, bad input, scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pyproj
from sqlalchemy import text

from geo.crs import wgs84_to_gcj02
from tests.factories import DEMO_GRID, point_in_grid
from tests.helpers import problem

GEOD = pyproj.Geod(ellps="WGS84")


def walk(
    lon0: float, lat0: float, t0: datetime, n: int, step_s: float = 10, speed: float = 1.2
) -> list[tuple[datetime, float, float]]:
    """A walk north-east at `speed` m/s, a fix every `step_s` seconds (WGS84)."""
    out = []
    lon, lat = lon0, lat0
    for i in range(n):
        out.append((t0 + timedelta(seconds=i * step_s), lon, lat))
        lon, lat, _ = GEOD.fwd(lon, lat, 45 + (i % 7) * 10, speed * step_s)
    return out


def gcj_points(track: list[tuple[datetime, float, float]], acc: float = 8) -> list[dict[str, Any]]:
    pts = []
    for t, lon, lat in track:
        glon, glat = wgs84_to_gcj02(lon, lat)
        pts.append({"at": t.isoformat(), "lon": glon, "lat": glat, "accuracy_m": acc})
    return pts


async def _grid_id(conn: Any, code: str = DEMO_GRID) -> int:
    return int(
        (await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": code})).scalar_one()
    )


async def start(anon: Any, h: dict[str, str], grid_id: int, at: datetime, **kw: Any) -> dict:
    r = await anon.post(
        "/api/v1/patrols",
        json={"grid_id": grid_id, "started_at": at.isoformat(), **kw},
        headers=h,
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_a_patrol_from_start_to_end_measures_the_kept_line_to_the_metre(
    anon, as_user, conn
) -> None:
    h = as_user("worker")
    grid = await _grid_id(conn)
    lon0, lat0 = await point_in_grid(conn)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    p = await start(anon, h, grid, t0)
    assert p["status"] == "active" and p["worker_id"]
    track = walk(lon0, lat0, t0 + timedelta(seconds=5), 120)
    pts = gcj_points(track)
    # a wild fix (2 km in 10 s) and an indoor one (±200 m): kept, flagged, out of the line
    jump_lon, jump_lat, _ = GEOD.fwd(track[50][1], track[50][2], 90, 2000)
    glon, glat = wgs84_to_gcj02(jump_lon, jump_lat)
    pts[50] = {**pts[50], "lon": glon, "lat": glat}
    pts[70] = {**pts[70], "accuracy_m": 200}
    # out of order, in two batches, the second first
    r2 = await anon.post(f"/api/v1/patrols/{p['id']}/points", json={"points": pts[60:]}, headers=h)
    assert r2.status_code == 200, r2.text
    assert r2.json() == {"received": 60, "stored": 60, "duplicates": 0, "flagged": 1}
    r1 = await anon.post(f"/api/v1/patrols/{p['id']}/points", json={"points": pts[:60]}, headers=h)
    assert r1.json()["stored"] == 60
    # a retried batch adds nothing
    again = await anon.post(
        f"/api/v1/patrols/{p['id']}/points", json={"points": pts[:60]}, headers=h
    )
    assert again.json() == {"received": 60, "stored": 0, "duplicates": 60, "flagged": 0}
    end_at = track[-1][0] + timedelta(seconds=5)
    r = await anon.post(
        f"/api/v1/patrols/{p['id']}/end", json={"at": end_at.isoformat()}, headers=h
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == "ended"
    assert out["points"] == 120 and out["kept"] == 118
    assert out["flagged"] == {"speed": 1, "accuracy": 1}
    kept = [x for i, x in enumerate(track) if i not in (50, 70)]
    expected = GEOD.line_length([x[1] for x in kept], [x[2] for x in kept])
    assert abs(out["distance_m"] - expected) < 1.0, (out["distance_m"], expected)
    assert out["duration_s"] == (end_at - t0).total_seconds()
    assert out["line"]["type"] == "MultiLineString"
    simplified = sum(len(part) for part in out["line"]["coordinates"])
    assert 2 <= simplified <= 118
    # the points are in the database as WGS84 geometry
    stored = (
        await conn.execute(
            text(
                "SELECT ST_X(geom), ST_Y(geom) FROM patrol_points WHERE patrol_id = :p "
                "ORDER BY at LIMIT 1"
            ),
            {"p": p["id"]},
        )
    ).one()
    assert abs(stored[0] - track[0][1]) < 1e-7 and abs(stored[1] - track[0][2]) < 1e-7


async def test_pauses_leave_their_time_and_fixes_out(anon, as_user, conn) -> None:
    h = as_user("worker")
    grid = await _grid_id(conn)
    lon0, lat0 = await point_in_grid(conn)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    p = await start(anon, h, grid, t0)
    track = walk(lon0, lat0, t0 + timedelta(seconds=1), 90)
    pid = p["id"]
    url = f"/api/v1/patrols/{pid}"
    pause_at, resume_at = track[30][0] + timedelta(seconds=1), track[59][0] + timedelta(seconds=1)
    assert (
        await anon.post(url + "/points", json={"points": gcj_points(track[:30])}, headers=h)
    ).status_code == 200
    r = await anon.post(url + "/pause", json={"at": pause_at.isoformat()}, headers=h)
    assert r.json()["status"] == "paused", r.text
    problem(await anon.post(url + "/pause", json={}, headers=h), 409, "patrol_state")
    r = await anon.post(url + "/resume", json={"at": resume_at.isoformat()}, headers=h)
    assert r.json()["status"] == "active"
    # the fixes taken during the pause arrive late: stored, flagged `paused`
    await anon.post(url + "/points", json={"points": gcj_points(track[30:])}, headers=h)
    end_at = track[-1][0] + timedelta(seconds=1)
    out = (await anon.post(url + "/end", json={"at": end_at.isoformat()}, headers=h)).json()
    assert out["flagged"] == {"paused": 29}
    assert out["kept"] == 61
    assert (
        out["duration_s"] == (end_at - t0).total_seconds() - (resume_at - pause_at).total_seconds()
    )
    before, after = track[:30], track[59:]
    expected = GEOD.line_length([x[1] for x in before], [x[2] for x in before]) + GEOD.line_length(
        [x[1] for x in after], [x[2] for x in after]
    )
    assert abs(out["distance_m"] - expected) < 1.0
    assert len(out["line"]["coordinates"]) == 2  # one line per stretch
    tl = (await anon.get(url + "/timeline", headers=h)).json()
    assert [i["kind"] for i in tl] == ["started", "paused", "resumed", "ended"]


async def test_a_late_batch_after_the_end_extends_the_line(anon, as_user, conn) -> None:
    h = as_user("worker")
    grid = await _grid_id(conn)
    lon0, lat0 = await point_in_grid(conn)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=5)
    p = await start(anon, h, grid, t0)
    track = walk(lon0, lat0, t0 + timedelta(seconds=1), 40)
    url = f"/api/v1/patrols/{p['id']}"
    await anon.post(url + "/points", json={"points": gcj_points(track[:20])}, headers=h)
    end_at = track[-1][0] + timedelta(seconds=1)
    first = (await anon.post(url + "/end", json={"at": end_at.isoformat()}, headers=h)).json()
    await anon.post(url + "/points", json={"points": gcj_points(track[20:])}, headers=h)
    later = (await anon.get(url, headers=h)).json()
    assert later["points"] == 40 and later["distance_m"] > first["distance_m"]
    expected = GEOD.line_length([x[1] for x in track], [x[2] for x in track])
    assert abs(later["distance_m"] - expected) < 1.0
    # after the end: refused, nothing stored
    late = gcj_points(walk(lon0, lat0, end_at + timedelta(seconds=30), 2))
    r = await anon.post(url + "/points", json={"points": late}, headers=h)
    body = problem(r, 422, "after_patrol_end")
    assert body["field"] == "points[0].at"


async def test_bad_batches_are_refused_whole_with_the_point_at_fault(anon, as_user, conn) -> None:
    h = as_user("worker")
    grid = await _grid_id(conn)
    lon0, lat0 = await point_in_grid(conn)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    p = await start(anon, h, grid, t0)
    url = f"/api/v1/patrols/{p['id']}/points"
    good = gcj_points(walk(lon0, lat0, t0 + timedelta(seconds=1), 5))

    async def refused(points: list[dict[str, Any]], status: int, code: str, field: str) -> None:
        body = problem(await anon.post(url, json={"points": points}, headers=h), status, code)
        assert body["field"] == field, body
        assert any("\u4e00" <= ch <= "\u9fff" for ch in body["detail"]), body  # Chinese
        n = (
            await conn.execute(
                text("SELECT count(*) FROM patrol_points WHERE patrol_id = :p"), {"p": p["id"]}
            )
        ).scalar_one()
        assert n == 0

    await refused(
        [
            *good,
            {**good[0], "lon": 2.35, "lat": 48.85, "at": (t0 + timedelta(minutes=9)).isoformat()},
        ],
        422,
        "point_outside_china",
        "points[5].lon",
    )
    await refused(
        [{**good[0], "lon": good[0]["lat"], "lat": good[0]["lon"]}],
        422,
        "point_outside_china",
        "points[0].lon",
    )
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    await refused([*good[:2], {**good[2], "at": future}], 422, "time_in_future", "points[2].at")
    before = (t0 - timedelta(minutes=1)).isoformat()
    await refused([{**good[0], "at": before}], 422, "before_patrol_start", "points[0].at")
    await refused(
        [good[0], good[1], {**good[2], "at": good[1]["at"]}],
        422,
        "duplicate_points",
        "points[2].at",
    )

    def many(n: int) -> list[dict[str, Any]]:
        return [
            {**good[0], "at": (t0 + timedelta(seconds=1 + i * 0.1)).isoformat()} for i in range(n)
        ]

    body = problem(
        await anon.post(url, json={"points": many(501)}, headers=h), 413, "batch_too_large"
    )
    assert body["field"] == "points" and body["max"] == 500
    # 10,000 points are over the body limit before they are parsed
    problem(
        await anon.post(url, json={"points": many(10_000)}, headers=h), 413, "payload_too_large"
    )
    # and a good batch still goes in
    r = await anon.post(url, json={"points": good}, headers=h)
    assert r.json()["stored"] == 5


async def test_one_patrol_at_a_time_and_a_retried_start(anon, as_user, conn) -> None:
    h = as_user("worker")
    grid = await _grid_id(conn)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    p = await start(anon, h, grid, t0, client_id="phone-1")
    again = await anon.post(
        "/api/v1/patrols",
        json={"grid_id": grid, "started_at": t0.isoformat(), "client_id": "phone-1"},
        headers=h,
    )
    assert again.status_code == 200 and again.json()["id"] == p["id"]
    other = await anon.post("/api/v1/patrols", json={"grid_id": grid}, headers=h)
    assert problem(other, 409, "patrol_in_progress")["patrol_id"] == p["id"]
    future = await anon.post(
        "/api/v1/patrols/" + str(p["id"]) + "/end",
        json={"at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()},
        headers=h,
    )
    assert problem(future, 422, "time_in_future")["field"] == "at"
    # another district's grid is not the worker's
    out_grid = (
        await conn.execute(
            text("SELECT id FROM grids WHERE code <> :c ORDER BY id DESC LIMIT 1"), {"c": DEMO_GRID}
        )
    ).scalar_one()
    assert problem(
        await anon.post("/api/v1/patrols", json={"grid_id": out_grid}, headers=as_user("worker2")),
        422,
        "not_your_grid",
    )


async def test_scope_a_worker_sees_only_their_own_patrols(anon, as_user, conn) -> None:
    grid = await _grid_id(conn)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    p = await start(anon, as_user("worker"), grid, t0)
    url = f"/api/v1/patrols/{p['id']}"
    # the leader of the grid and the community read it; worker2 (another community) does not
    for who in ("worker", "leader", "community", "street", "centre", "admin"):
        assert (await anon.get(url, headers=as_user(who))).status_code == 200, who
    problem(await anon.get(url, headers=as_user("worker2")), 404, "not_found")
    problem(await anon.get(url, headers=as_user("dept")), 403, "forbidden")
    # nobody else writes it, not even the leader
    problem(await anon.post(url + "/end", json={}, headers=as_user("leader")), 404, "not_found")
    problem(await anon.post(url + "/end", json={}, headers=as_user("worker2")), 404, "not_found")
    mine = (await anon.get("/api/v1/patrols", headers=as_user("worker"))).json()
    assert p["id"] in [x["id"] for x in mine["items"]]
    theirs = (await anon.get("/api/v1/patrols", headers=as_user("worker2"))).json()
    assert p["id"] not in [x["id"] for x in theirs["items"]]
    led = (
        await anon.get("/api/v1/patrols", params={"grid_id": grid}, headers=as_user("leader"))
    ).json()
    assert p["id"] in [x["id"] for x in led["items"]]


async def test_cases_reported_during_a_patrol_are_on_its_timeline(anon, as_user, conn) -> None:
    from tests.factories import report_body

    h = as_user("worker")
    grid = await _grid_id(conn)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10)
    p = await start(anon, h, grid, t0)
    r = await anon.post(
        "/api/v1/cases", json=await report_body(conn, "巡查中发现井盖破损"), headers=h
    )
    assert r.status_code == 201, r.text
    tl = (await anon.get(f"/api/v1/patrols/{p['id']}/timeline", headers=h)).json()
    cases = [i for i in tl if i["kind"] == "case"]
    assert [c["id"] for c in cases] == [r.json()["id"]]


async def test_retention_reduces_an_old_patrol_to_its_line(anon, as_user, conn, session) -> None:
    from app.patrols import retention

    h = as_user("worker")
    grid = await _grid_id(conn)
    lon0, lat0 = await point_in_grid(conn)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=120)
    p = await start(anon, h, grid, t0)
    url = f"/api/v1/patrols/{p['id']}"
    track = walk(lon0, lat0, t0 + timedelta(seconds=1), 30)
    await anon.post(url + "/points", json={"points": gcj_points(track)}, headers=h)
    end_at = (track[-1][0] + timedelta(seconds=1)).isoformat()
    ended = (await anon.post(url + "/end", json={"at": end_at}, headers=h)).json()
    done = await retention.tick(session, datetime.now(UTC))
    assert done["purged_patrols"] >= 1 and done["purged_points"] >= 30
    left = (
        await conn.execute(
            text("SELECT count(*) FROM patrol_points WHERE patrol_id = :p"), {"p": p["id"]}
        )
    ).scalar_one()
    assert left == 0
    after = (await anon.get(url, headers=h)).json()
    assert after["purged"] is True and after["distance_m"] == ended["distance_m"]
    assert after["line"]["type"] == "MultiLineString"
    # a recent patrol keeps its points
    assert (await retention.tick(session, datetime.now(UTC)))["purged_patrols"] == 0


async def test_the_retention_job_is_on_the_clock() -> None:
    from app.loop import scheduler
    from app.patrols import retention

    assert scheduler._jobs["patrols"] is retention.tick


async def test_times_out_of_any_range_are_refused(anon, as_user, conn) -> None:
    grid = await _grid_id(conn)
    old = (datetime.now(UTC) - timedelta(days=800)).isoformat()
    r = await anon.post(
        "/api/v1/patrols", json={"grid_id": grid, "started_at": old}, headers=as_user("worker")
    )
    assert problem(r, 422, "time_too_old")["field"] == "started_at"
    for url, params, who in (
        (f"/api/v1/grids/{grid}/coverage", {"until": "0001-01-01T00:00:00"}, "community"),
        (f"/api/v1/grids/{grid}/coverage", {"since": "9999-12-31T00:00:00"}, "community"),
        ("/api/v1/areas/1/missed-checkins", {"until": "0001-01-01"}, "admin"),
        ("/api/v1/areas/1/missed-checkins", {"until": "9999-12-31"}, "admin"),
        ("/api/v1/me/worklog", {"date": "9999-12-31", "span": "month"}, "worker"),
    ):
        r = await anon.get(url, params=params, headers=as_user(who))
        assert r.status_code == 422, (url, params, r.text)
