"""Field work figures (`/api/v1/stats/fieldwork`, `table=fieldwork` of the export): per worker
the work log's figures, per grid the coverage endpoint's and the missed check-ins' figures, the
weekly board's for the same week; the patrol standard on duty days; a grid with only check-in
points is listed; scope and bad input."""

from __future__ import annotations

import io
import math
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook
from sqlalchemy import text

from app.patrols.board import week_of
from app.schemas import SHANGHAI
from tests.api.worktasks_support import slot, user_id
from tests.factories import DEMO_GRID, point_in_grid
from tests.helpers import problem

OTHER_GRID = "360602001001002"  # 立新社区 grid 2


async def _grid(conn, code: str = DEMO_GRID) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    row = (
        await conn.execute(text("SELECT id, community_id FROM grids WHERE code = :c"), {"c": code})
    ).one()
    return int(row.id), int(row.community_id)


async def _todays_work(anon, as_user, conn) -> dict:  # type: ignore[no-untyped-def]
    """Today: a half-hour patrol in the demo grid, a check-in at a new point, a task done."""
    h = as_user("worker")
    gid, _ = await _grid(conn)
    today = datetime.now(SHANGHAI).date()
    now = datetime.now(UTC).replace(microsecond=0)
    t0 = max(now - timedelta(minutes=30), datetime.combine(today, datetime.min.time(), SHANGHAI))
    lon, lat = await point_in_grid(conn)
    r = await anon.post(
        "/api/v1/patrols", json={"grid_id": gid, "started_at": t0.isoformat()}, headers=h
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    k = 1 / (111_320 * math.cos(math.radians(lat)))
    n = int((now - t0).total_seconds() // 60)
    points = [
        {
            "at": (t0 + timedelta(minutes=i)).isoformat(),
            "lon": lon + 8 * i * k,
            "lat": lat,
            "accuracy_m": 5,
        }
        for i in range(n + 1)
    ]
    r = await anon.post(
        f"/api/v1/patrols/{pid}/points", json={"crs": "wgs84", "points": points}, headers=h
    )
    assert r.status_code == 200, r.text
    r = await anon.post(f"/api/v1/patrols/{pid}/end", json={"at": now.isoformat()}, headers=h)
    assert r.status_code == 200, r.text
    cp = await anon.post(
        f"/api/v1/grids/{gid}/checkpoints",
        json={"name": "统计测试点", "lon": lon, "lat": lat, "crs": "wgs84", "radius_m": 50},
        headers=as_user("community"),
    )
    assert cp.status_code == 201, cp.text
    r = await anon.post(
        f"/api/v1/checkpoints/{cp.json()['id']}/checkins",
        json={"lon": lon, "lat": lat, "crs": "wgs84", "accuracy_m": 5},
        headers=h,
    )
    assert r.status_code == 201 and r.json()["accepted"], r.text
    worker = await user_id(conn, "worker")
    t = await anon.post(
        "/api/v1/worker-tasks",
        json={
            "kind": "inspection",
            "title": "检查消防通道",
            "worker_id": worker,
            "grid_id": gid,
            "due_value": 1,
            "due_unit": "days",
        },
        headers=as_user("community"),
    )
    assert t.status_code == 201, t.text
    tid = t.json()["id"]
    assert (
        await anon.post(f"/api/v1/me/tasks/{tid}/accept", json={}, headers=h)
    ).status_code == 200
    r = await anon.post(f"/api/v1/me/tasks/{tid}/done", json={"note": "已检查"}, headers=h)
    assert r.status_code == 200, r.text
    return {"grid": gid, "worker": worker, "patrol": pid}


async def test_fieldwork_figures_are_the_work_logs_and_the_boards(anon, as_user, conn) -> None:
    made = await _todays_work(anon, as_user, conn)
    gid, community = await _grid(conn)
    today = datetime.now(SHANGHAI).date()

    # Per worker: the work log's totals, for a day and for the month.
    for period, span in (("day", "day"), ("month", "month")):
        r = await anon.get(
            "/api/v1/stats/fieldwork",
            params={"period": period, "at": today.isoformat()},
            headers=as_user("community"),
        )
        assert r.status_code == 200, r.text
        fw = r.json()
        [me] = [w for w in fw["workers"] if w["worker_id"] == made["worker"]]
        log = (
            await anon.get(
                "/api/v1/me/worklog",
                params={"date": today.isoformat(), "span": span},
                headers=as_user("worker"),
            )
        ).json()["total"]
        for key in (
            "patrols",
            "patrol_hours",
            "distance_km",
            "checkins",
            "checkins_accepted",
            "visits",
            "cases",
            "tasks_received",
            "tasks_done",
            "tasks_on_time",
        ):
            assert me[key] == log[key], (period, key, me[key], log[key])
        assert me["tasks_done"] >= 1 and me["on_time_rate"] == round(
            me["tasks_on_time"] / me["tasks_done"], 4
        )
        assert me["checkin_rate"] == round(me["checkins_accepted"] / me["checkins"], 4)
        assert me["standard_basis"] == "working_days"

    # Per grid: the coverage endpoint's and the missed check-ins' figures for the same days.
    r = await anon.get(
        "/api/v1/stats/fieldwork",
        params={"period": "week", "at": today.isoformat()},
        headers=as_user("community"),
    )
    fw = r.json()
    [grid] = [g for g in fw["grids"] if g["grid_id"] == gid]
    since, until = fw["period"]["since"], fw["period"]["until"]
    cov = (
        await anon.get(
            f"/api/v1/grids/{gid}/coverage",
            params={"since": since, "until": until},
            headers=as_user("community"),
        )
    ).json()
    assert (grid["cells"], grid["visited"], grid["coverage"], grid["patrols"]) == (
        cov["cells"],
        cov["visited"],
        cov["share"],
        cov["patrols"],
    )
    assert grid["visited"] >= 1 and grid["tasks_done"] >= 1
    assert grid["patrol_hours"] == round(sum(w["hours"] for w in cov["workers"]), 2)
    monday, week = week_of(today)
    missed = (
        await anon.get(
            f"/api/v1/areas/{community}/missed-checkins",
            params={"since": monday.isoformat(), "until": (monday + timedelta(days=6)).isoformat()},
            headers=as_user("community"),
        )
    ).json()
    # Every check-in point of the community is in the demo grid (the demo's and the test's).
    assert (grid["checkins_expected"], grid["checkins_done"], grid["checkin_rate"]) == (
        missed["expected"],
        missed["done"],
        missed["rate"],
    )
    board = (
        await anon.get(
            f"/api/v1/areas/{community}/weekly-board",
            params={"week": week},
            headers=as_user("community"),
        )
    ).json()
    [bg] = [g for g in board["grids"] if g["grid_id"] == gid]
    assert bg["share"] == grid["coverage"] and bg["visited"] == grid["visited"]
    [bw] = [w for w in board["workers"] if w["worker_id"] == made["worker"]]
    [fw_me] = [w for w in fw["workers"] if w["worker_id"] == made["worker"]]
    assert abs(bw["hours"] - fw_me["patrol_hours"]) <= 0.01 * 7  # days rounded to 0.01 h
    assert bw["standard_hours"] == fw_me["standard_hours"]
    assert bw["standard_basis"] == fw_me["standard_basis"]

    # The export: the same rows, Chinese headers.
    x = await anon.get(
        "/api/v1/stats/export",
        params={"table": "fieldwork", "format": "xlsx", "unit": "worker", "period": "week"},
        headers=as_user("community"),
    )
    assert x.status_code == 200, x.text
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[0][:3] == ("网格员", "巡查次数", "巡查时长（小时）")
    [xme] = [row for row in rows[1:] if row[0] == fw_me["worker"]]
    assert xme[1] == fw_me["patrols"] and xme[2] == fw_me["patrol_hours"]
    assert xme[4] == "工作日"
    c = await anon.get(
        "/api/v1/stats/export",
        params={"table": "fieldwork", "format": "csv", "unit": "grid", "period": "week"},
        headers=as_user("community"),
    )
    assert c.status_code == 200, c.text
    lines = c.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("网格,网格编码,网格单元数,已巡单元,巡查覆盖率")
    assert any(line.split(",")[1] == DEMO_GRID for line in lines[1:])


async def test_a_grid_with_only_check_in_points_is_listed(anon, as_user, conn) -> None:
    gid, community = await _grid(conn, OTHER_GRID)
    lon, lat = await point_in_grid(conn, OTHER_GRID)
    r = await anon.post(
        f"/api/v1/grids/{gid}/checkpoints",
        json={"name": "只有打卡点", "lon": lon, "lat": lat, "crs": "wgs84"},
        headers=as_user("community"),
    )
    assert r.status_code == 201, r.text
    assert (
        await conn.execute(text("SELECT count(*) FROM patrols WHERE grid_id = :g"), {"g": gid})
    ).scalar_one() == 0
    # The coverage layer shows its cells (all unvisited) before anyone asked for its coverage.
    z = 16
    x = int((lon + 180) / 360 * 2**z)
    y = int((1 - math.asinh(math.tan(math.radians(lat))) / math.pi) / 2 * 2**z)
    tile = await anon.get(f"/tiles/coverage/{z}/{x}/{y}.mvt", headers=as_user("community"))
    assert tile.status_code == 200, tile.text
    import mapbox_vector_tile

    cells = [
        f
        for f in mapbox_vector_tile.decode(tile.content)["coverage"]["features"]
        if f["properties"]["grid_id"] == gid
    ]
    assert cells and not any(f["properties"]["visited"] for f in cells)
    fw = (
        await anon.get(
            "/api/v1/stats/fieldwork", params={"period": "week"}, headers=as_user("community")
        )
    ).json()
    [grid] = [g for g in fw["grids"] if g["grid_id"] == gid]
    assert grid["patrols"] == 0 and grid["visited"] == 0 and grid["cells"] > 0
    assert grid["coverage"] == 0.0 and grid["checkins_expected"] >= 0
    board = (
        await anon.get(f"/api/v1/areas/{community}/weekly-board", headers=as_user("community"))
    ).json()
    [bg] = [g for g in board["grids"] if g["grid_id"] == gid]
    assert bg["patrols"] == 0 and bg["cells"] == grid["cells"]
    cov = await anon.get(f"/api/v1/grids/{gid}/coverage", headers=as_user("community"))
    assert cov.status_code == 200 and cov.json()["cells"] == grid["cells"]


async def test_the_standard_applies_to_duty_days(anon, as_user, conn) -> None:
    """A week of March 2026 (five working days): the worker on the roster one day has a
    standard of one day's hours (`duty_roster`); the leader, on no roster, five working days."""
    gid, community = await _grid(conn)
    worker = await user_id(conn, "worker")
    leader = await user_id(conn, "leader")
    day = datetime(2026, 3, 3, 8, 30, tzinfo=SHANGHAI)
    r = await anon.post(
        f"/api/v1/areas/{community}/duty",
        json={"slots": [slot(worker, day, day + timedelta(hours=9), gid)]},
        headers=as_user("community"),
    )
    assert r.status_code == 201, r.text
    cov = await anon.get(
        f"/api/v1/grids/{gid}/coverage",
        params={"since": "2026-03-02T00:00:00", "until": "2026-03-09T00:00:00"},
        headers=as_user("community"),
    )
    assert cov.status_code == 200, cov.text
    by = {w["worker_id"]: w for w in cov.json()["workers"]}
    assert (by[worker]["standard_basis"], by[worker]["working_days"]) == ("duty_roster", 1)
    assert (by[leader]["standard_basis"], by[leader]["working_days"]) == ("working_days", 5)
    assert by[worker]["standard_hours"] * 5 == by[leader]["standard_hours"]
    fw = (
        await anon.get(
            "/api/v1/stats/fieldwork",
            params={"period": "week", "at": "2026-03-04", "area_id": community},
            headers=as_user("community"),
        )
    ).json()
    ws = {w["worker_id"]: w for w in fw["workers"]}
    assert (ws[worker]["standard_basis"], ws[worker]["standard_days"]) == ("duty_roster", 1)
    assert (ws[leader]["standard_basis"], ws[leader]["standard_days"]) == ("working_days", 5)
    assert {g["grid_id"] for g in fw["grids"]} >= {gid}  # area_id: every grid below it
    board = (
        await anon.get(
            f"/api/v1/areas/{community}/weekly-board",
            params={"week": "2026-W10"},
            headers=as_user("community"),
        )
    ).json()
    bw = {w["worker_id"]: w for w in board["workers"]}
    assert bw[worker]["standard_basis"] == "duty_roster"
    assert bw[worker]["standard_hours"] == ws[worker]["standard_hours"]


async def test_fieldwork_scope_and_bad_input(anon, as_user, conn) -> None:
    out_area = (
        await conn.execute(text("SELECT id FROM areas WHERE level = 'district' ORDER BY id DESC"))
    ).scalar()
    gid, community = await _grid(conn)
    # A grid worker sees the workers of their grids only (and themselves).
    mine = (
        await anon.get(
            "/api/v1/stats/fieldwork", params={"period": "month"}, headers=as_user("worker2")
        )
    ).json()
    assert gid not in {g["grid_id"] for g in mine["grids"]}
    problem(
        await anon.get(
            "/api/v1/stats/fieldwork",
            params={"area_id": community},
            headers=as_user("worker2"),
        ),
        404,
        "not_found",
    )
    r = await anon.get(
        "/api/v1/stats/export",
        params={"table": "fieldwork", "unit": "street"},
        headers=as_user("community"),
    )
    body = problem(r, 422, "validation_error")
    assert body["field"] == "unit" and "网格员" in body["detail"]
    r = await anon.get(
        "/api/v1/stats/fieldwork", params={"period": "fortnight"}, headers=as_user("community")
    )
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/problem")
    assert out_area is not None
    # Out of scope and nonexistent answer the same 404 (the policy's area_or_404), the admin too.
    outside = await anon.get(
        "/api/v1/stats/fieldwork", params={"area_id": community}, headers=as_user("worker2")
    )
    missing = await anon.get(
        "/api/v1/stats/fieldwork", params={"area_id": 10**9}, headers=as_user("worker2")
    )
    assert outside.status_code == missing.status_code == 404
    assert outside.json()["detail"] == missing.json()["detail"]
    problem(
        await anon.get(
            "/api/v1/stats/fieldwork", params={"area_id": 10**9}, headers=as_user("admin")
        ),
        404,
        "not_found",
    )


async def test_a_districts_figures_take_as_many_statements_as_a_grids(anon, as_user, conn) -> None:
    """Set-based: the field work of the whole district (273 grids and their workers) and the
    weekly board of a street take as many statements as those of one community of a few
    grids (coverage, check-ins and work logs are asked for all grids at once)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    _, community = await _grid(conn)
    street, district = (
        await conn.execute(
            text(
                "SELECT s.id, s.parent_id FROM areas c JOIN areas s ON s.id = c.parent_id "
                "WHERE c.id = :c"
            ),
            {"c": community},
        )
    ).one()
    seen: list[str] = []

    def count(conn, cursor, statement, *_):  # type: ignore[no-untyped-def]
        seen.append(statement)

    async def statements(path: str, params: dict) -> tuple[int, int]:
        seen.clear()
        r = await anon.get(path, params=params, headers=as_user("admin"))
        assert r.status_code == 200, r.text
        return len(seen), len(r.json()["grids"])

    event.listen(Engine, "before_cursor_execute", count)
    try:
        fw = "/api/v1/stats/fieldwork"
        at = {"period": "month", "at": "2026-11-15"}
        await statements(fw, {**at, "area_id": district})  # lattices made once
        one, few = await statements(fw, {**at, "area_id": community})
        everyone, many = await statements(fw, {**at, "area_id": district})
        week = {"week": "2026-W47"}
        await statements(f"/api/v1/areas/{street}/weekly-board", week)
        b_one, _ = await statements(f"/api/v1/areas/{community}/weekly-board", week)
        b_all, b_many = await statements(f"/api/v1/areas/{street}/weekly-board", week)
    finally:
        event.remove(Engine, "before_cursor_execute", count)
    assert many > 10 * few and b_many > few, (few, many, b_many)
    # equal but for a cache refreshed in between (the working calendar, the caller's posts)
    assert everyone <= one + 3, (one, everyone)
    assert b_all <= b_one + 3, (b_one, b_all)
