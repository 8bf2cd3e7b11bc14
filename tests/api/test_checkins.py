"""Check-ins (打卡) at fixed points: accepted inside the radius (the accuracy counted, up to the
setting), flagged outside, refused far away; missed check-ins per community; scope."""

from __future__ import annotations

from datetime import datetime

import pyproj
from sqlalchemy import text

from app.loop.deadlines import calendar
from app.schemas import SHANGHAI
from tests.factories import DEMO_GRID, point_in_grid
from tests.helpers import problem

GEOD = pyproj.Geod(ellps="WGS84")


async def _checkpoint(anon, as_user, conn, **kw) -> tuple[dict, float, float]:  # type: ignore[no-untyped-def]
    gid = (
        await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": DEMO_GRID})
    ).scalar_one()
    lon, lat = await point_in_grid(conn)
    body = {"name": "消防通道", "lon": lon, "lat": lat, "crs": "wgs84", "radius_m": 50, **kw}
    r = await anon.post(f"/api/v1/grids/{gid}/checkpoints", json=body, headers=as_user("community"))
    assert r.status_code == 201, r.text
    return r.json(), lon, lat


async def _at(anon, as_user, cp: dict, lon: float, lat: float, metres: float, acc: float, **kw):  # type: ignore[no-untyped-def]
    x, y, _ = GEOD.fwd(lon, lat, 30, metres)
    return await anon.post(
        f"/api/v1/checkpoints/{cp['id']}/checkins",
        json={"lon": x, "lat": y, "crs": "wgs84", "accuracy_m": acc, **kw},
        headers=as_user("worker"),
    )


async def test_a_checkin_is_accepted_inside_the_radius_with_the_accuracy(
    anon, as_user, conn
) -> None:
    cp, lon, lat = await _checkpoint(anon, as_user, conn)
    assert cp["crs"] == "wgs84" and abs(cp["lon"] - lon) < 1e-6
    inside = await _at(anon, as_user, cp, lon, lat, 30, 10)
    assert inside.status_code == 201, inside.text
    assert inside.json()["accepted"] is True and abs(inside.json()["distance_m"] - 30) < 0.2
    widened = await _at(anon, as_user, cp, lon, lat, 80, 40)  # 80 m <= 50 m + 40 m
    assert widened.json()["accepted"] is True
    capped = await _at(anon, as_user, cp, lon, lat, 150, 400)  # ±400 m widens by 50 m at most
    assert capped.status_code == 201 and capped.json()["accepted"] is False
    outside = await _at(anon, as_user, cp, lon, lat, 200, 5)
    assert outside.status_code == 201 and outside.json()["accepted"] is False
    n = (
        await conn.execute(
            text("SELECT count(*) FROM checkins WHERE checkpoint_id = :c"), {"c": cp["id"]}
        )
    ).scalar_one()
    far = await _at(anon, as_user, cp, lon, lat, 2000, 5)
    body = problem(far, 422, "checkin_too_far")
    assert body["field"] == "lon,lat" and 1990 < body["distance_m"] < 2010
    assert "米" in body["detail"]
    after = (
        await conn.execute(
            text("SELECT count(*) FROM checkins WHERE checkpoint_id = :c"), {"c": cp["id"]}
        )
    ).scalar_one()
    assert after == n == 4  # nothing stored for the far one
    # a retried check-in (same client id) is stored once
    a = await _at(anon, as_user, cp, lon, lat, 10, 5, client_id="k-1")
    b = await _at(anon, as_user, cp, lon, lat, 10, 5, client_id="k-1")
    assert a.status_code == 201 and b.status_code == 200 and a.json()["id"] == b.json()["id"]
    # outside China, and in the future
    r = await anon.post(
        f"/api/v1/checkpoints/{cp['id']}/checkins",
        json={"lon": 2.35, "lat": 48.85, "crs": "wgs84", "accuracy_m": 5},
        headers=as_user("worker"),
    )
    assert r.status_code == 422, r.text
    r = await _at(
        anon, as_user, cp, lon, lat, 10, 5, at="2099-01-01T08:00:00"
    )  # future, inside the accepted years
    assert problem(r, 422, "time_in_future")["field"] == "at"


async def test_checkin_scope(anon, as_user, conn) -> None:
    cp, lon, lat = await _checkpoint(anon, as_user, conn)
    r = await anon.post(
        f"/api/v1/checkpoints/{cp['id']}/checkins",
        json={"lon": lon, "lat": lat, "crs": "wgs84", "accuracy_m": 5},
        headers=as_user("worker2"),
    )
    problem(r, 404, "not_found")
    problem(
        await anon.post(
            f"/api/v1/checkpoints/{cp['id']}/checkins",
            json={"lon": lon, "lat": lat, "crs": "wgs84", "accuracy_m": 5},
            headers=as_user("community"),
        ),
        403,
        "forbidden",
    )
    listed = await anon.get(f"/api/v1/grids/{cp['grid_id']}/checkpoints", headers=as_user("worker"))
    assert cp["id"] in [x["id"] for x in listed.json()]


async def test_a_checkpoint_must_lie_inside_its_grid(anon, as_user, conn) -> None:
    gid = (
        await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": DEMO_GRID})
    ).scalar_one()
    r = await anon.post(
        f"/api/v1/grids/{gid}/checkpoints",
        json={"name": "远处", "lon": 120.0, "lat": 30.0, "crs": "wgs84"},
        headers=as_user("community"),
    )
    assert problem(r, 422, "validation_error")["field"] == "lon,lat"


async def test_missed_checkins_per_community(anon, as_user, conn) -> None:
    done, lon, lat = await _checkpoint(anon, as_user, conn)
    missed, _, _ = await _checkpoint(anon, as_user, conn, name="工地")
    weekly, _, _ = await _checkpoint(
        anon, as_user, conn, name="菜市场", schedule="weekly", per_week=2
    )
    assert (await _at(anon, as_user, done, lon, lat, 5, 5)).json()["accepted"]
    today = datetime.now(SHANGHAI).date()
    community = done["community_id"]
    r = await anon.get(
        f"/api/v1/areas/{community}/missed-checkins",
        params={"since": today.isoformat(), "until": today.isoformat()},
        headers=as_user("community"),
    )
    assert r.status_code == 200, r.text
    out = r.json()
    ours = [
        m for m in out["missed"] if m["checkpoint_id"] in (done["id"], missed["id"], weekly["id"])
    ]
    workday = (await calendar(conn)).is_workday(today)
    y, w, _ = today.isocalendar()
    want = [{"checkpoint_id": weekly["id"], "period": f"{y}-W{w:02d}", "expected": 2, "done": 0}]
    if workday:
        want.insert(
            0,
            {"checkpoint_id": missed["id"], "period": today.isoformat(), "expected": 1, "done": 0},
        )
    got = [{k: m[k] for k in ("checkpoint_id", "period", "expected", "done")} for m in ours]
    assert got == want
    # the street sees it too; a grid worker does not read the board
    st = await anon.get(f"/api/v1/areas/{community}/missed-checkins", headers=as_user("street"))
    assert st.status_code == 200
    problem(
        await anon.get(f"/api/v1/areas/{community}/missed-checkins", headers=as_user("worker")),
        403,
        "forbidden",
    )
