"""A worker's live position is visible to the centre only during their duty time
(`GET /api/v1/areas/{area_id}/live-positions`, `positions:live`); an ended patrol's line stays
readable as history outside duty time; a leader's view of a worker's work log is scoped to the
workers of their areas."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook
from sqlalchemy import text

from tests.api.worktasks_support import slot, user_id
from tests.factories import DEMO_GRID, point_in_grid
from tests.helpers import problem


async def _patrol(anon, as_user, conn) -> tuple[int, int, int, float, float]:  # type: ignore[no-untyped-def]
    gid, community = (
        await conn.execute(
            text("SELECT id, community_id FROM grids WHERE code = :c"), {"c": DEMO_GRID}
        )
    ).one()
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = now - timedelta(minutes=20)
    lon, lat = await point_in_grid(conn)
    h = as_user("worker")
    r = await anon.post(
        "/api/v1/patrols", json={"grid_id": gid, "started_at": t0.isoformat()}, headers=h
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    k = 1 / (111_320 * math.cos(math.radians(lat)))
    points = [
        {
            "at": (t0 + timedelta(minutes=i)).isoformat(),
            "lon": lon + 10 * i * k,
            "lat": lat,
            "accuracy_m": 5,
        }
        for i in range(20)
    ]
    r = await anon.post(
        f"/api/v1/patrols/{pid}/points", json={"crs": "wgs84", "points": points}, headers=h
    )
    assert r.status_code == 200, r.text
    return pid, gid, community, lon + 10 * 19 * k, lat


async def test_live_positions_only_during_duty(anon, as_user, conn) -> None:
    pid, gid, community, last_lon, last_lat = await _patrol(anon, as_user, conn)
    worker = await user_id(conn, "worker")
    url = f"/api/v1/areas/{community}/live-positions"

    # On patrol but not on duty (no roster now): nothing, for any area above the grid.
    r = await anon.get(url, headers=as_user("centre"))
    assert r.status_code == 200 and r.json() == [], r.text

    # A duty that starts tomorrow does not count either.
    now = datetime.now(UTC).replace(microsecond=0)
    tomorrow = now + timedelta(days=1)
    r = await anon.post(
        f"/api/v1/areas/{community}/duty",
        json={"slots": [slot(worker, tomorrow, tomorrow + timedelta(hours=8), gid)]},
        headers=as_user("community"),
    )
    assert r.status_code == 201, r.text
    assert (await anon.get(url, headers=as_user("centre"))).json() == []

    # On duty now: the last fix, with the end of the duty.
    end = now + timedelta(hours=2)
    r = await anon.post(
        f"/api/v1/areas/{community}/duty",
        json={"slots": [slot(worker, now - timedelta(hours=1), end, gid)]},
        headers=as_user("community"),
    )
    assert r.status_code == 201, r.text
    slot_id = r.json()[0]["id"]
    r = await anon.get(url, params={"crs": "wgs84"}, headers=as_user("centre"))
    assert r.status_code == 200, r.text
    [pos] = r.json()
    assert (pos["patrol_id"], pos["worker_id"], pos["grid_id"]) == (pid, worker, gid)
    assert datetime.fromisoformat(pos["duty_until"]) == end
    assert abs(pos["lon"] - last_lon) < 1e-6 and abs(pos["lat"] - last_lat) < 1e-6
    assert pos["crs"] == "wgs84" and pos["status"] == "active"
    district = (
        await conn.execute(text("SELECT district_id FROM patrols WHERE id = :p"), {"p": pid})
    ).scalar_one()
    assert (
        await anon.get(f"/api/v1/areas/{district}/live-positions", headers=as_user("centre"))
    ).json()[0]["patrol_id"] == pid
    audited = (
        await conn.execute(
            text(
                "SELECT count(*) FROM audit_log WHERE action = 'live_positions_read' "
                "AND object_id = :a"
            ),
            {"a": str(community)},
        )
    ).scalar_one()
    assert audited >= 3

    # Only the centre: not the community, the street, the worker, nor an administrator.
    for who in ("community", "street", "worker", "leader", "admin"):
        problem(await anon.get(url, headers=as_user(who)), 403, "forbidden")
    r = await anon.get(url, params={"crs": "mars"}, headers=as_user("centre"))
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem")

    # The duty is taken off the roster: nothing again, though the patrol goes on.
    r = await anon.delete(f"/api/v1/areas/{community}/duty/{slot_id}", headers=as_user("community"))
    assert r.status_code in (200, 204), r.text
    assert (await anon.get(url, headers=as_user("centre"))).json() == []


async def test_an_ended_patrols_line_is_history_outside_duty(anon, as_user, conn) -> None:
    pid, _, community, _, _ = await _patrol(anon, as_user, conn)
    r = await anon.post(f"/api/v1/patrols/{pid}/end", json={}, headers=as_user("worker"))
    assert r.status_code == 200, r.text
    # No duty now: the line is still read (patrols:read), by the centre and the community.
    for who in ("centre", "community", "worker"):
        r = await anon.get(f"/api/v1/patrols/{pid}", headers=as_user(who))
        assert r.status_code == 200, (who, r.text)
        assert r.json()["line"] is not None and r.json()["distance_m"] > 100
    assert (
        await anon.get(f"/api/v1/areas/{community}/live-positions", headers=as_user("centre"))
    ).json() == []


async def test_a_leaders_view_of_a_workers_log(anon, as_user, conn) -> None:
    worker = await user_id(conn, "worker")
    worker2 = await user_id(conn, "worker2")  # another community (东湖家园)
    mine = (
        await anon.get(
            "/api/v1/me/worklog",
            params={"date": "2026-11-10", "span": "month"},
            headers=as_user("worker"),
        )
    ).json()
    for who in ("community", "street", "centre", "admin"):
        r = await anon.get(
            f"/api/v1/workers/{worker}/worklog",
            params={"date": "2026-11-10", "span": "month"},
            headers=as_user(who),
        )
        assert r.status_code == 200, (who, r.text)
        assert r.json() == mine
    x = await anon.get(
        f"/api/v1/workers/{worker}/worklog",
        params={"date": "2026-11-10", "span": "month", "format": "xlsx"},
        headers=as_user("community"),
    )
    rows = list(load_workbook(io.BytesIO(x.content)).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert rows[1][0] == "日期" and rows[-1][0] == "合计"
    assert rows[-1][1] == mine["total"]["patrols"]
    # The community's staff: not a worker of another community; grid staff: not at all.
    problem(
        await anon.get(f"/api/v1/workers/{worker2}/worklog", headers=as_user("community")),
        404,
        "not_found",
    )
    problem(
        await anon.get("/api/v1/workers/999999999/worklog", headers=as_user("community")),
        404,
        "not_found",
    )
    for who in ("leader", "worker2", "dept"):
        problem(
            await anon.get(f"/api/v1/workers/{worker}/worklog", headers=as_user(who)),
            403,
            "forbidden",
        )
    r = await anon.get(
        f"/api/v1/workers/{worker}/worklog",
        params={"date": "2026-13-01"},
        headers=as_user("community"),
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem")
