"""The community's weekly board (周工作看板): per grid the coverage of the week, per worker the
patrol hours against the standard and the personal tasks, the missed check-ins; the same figures
as the coverage and missed check-ins endpoints for the same week; scope and bad weeks."""

from __future__ import annotations

import io
import math
from datetime import datetime, time, timedelta

from openpyxl import load_workbook
from sqlalchemy import text

from app.patrols.board import week_of
from app.schemas import SHANGHAI
from tests.factories import DEMO_GRID, point_in_grid
from tests.helpers import problem


async def test_the_weekly_board_has_the_figures_of_the_week(anon, as_user, conn) -> None:
    gid, community = (
        await conn.execute(
            text("SELECT id, community_id FROM grids WHERE code = :c"), {"c": DEMO_GRID}
        )
    ).one()
    worker = (
        await conn.execute(text("SELECT id FROM users WHERE username = 'worker'"))
    ).scalar_one()
    # A week two weeks back (whatever today is): an hour's patrol on its Monday at 09:00.
    monday, week = week_of(datetime.now(SHANGHAI).date() - timedelta(days=14))
    start = datetime.combine(monday, time(9), SHANGHAI)
    lon, lat = await point_in_grid(conn)
    r = await anon.post(
        "/api/v1/patrols",
        json={"grid_id": gid, "started_at": start.isoformat()},
        headers=as_user("worker"),
    )
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    k = 1 / (111_320 * math.cos(math.radians(lat)))
    points = [
        {
            "at": (start + timedelta(minutes=i)).isoformat(),
            "lon": lon + 10 * i * k,
            "lat": lat,
            "accuracy_m": 5,
        }
        for i in range(61)
    ]
    r = await anon.post(
        f"/api/v1/patrols/{pid}/points",
        json={"crs": "wgs84", "points": points},
        headers=as_user("worker"),
    )
    assert r.status_code == 200 and r.json()["stored"] == 61, r.text
    r = await anon.post(
        f"/api/v1/patrols/{pid}/end",
        json={"at": (start + timedelta(hours=1)).isoformat()},
        headers=as_user("worker"),
    )
    assert r.status_code == 200, r.text
    r = await anon.post(
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
    assert r.status_code == 201, r.text

    r = await anon.get(
        f"/api/v1/areas/{community}/weekly-board",
        params={"week": week},
        headers=as_user("community"),
    )
    assert r.status_code == 200, r.text
    b = r.json()
    assert (b["week"], b["since"], b["until"]) == (
        week,
        monday.isoformat(),
        (monday + timedelta(days=6)).isoformat(),
    )
    [grid] = [g for g in b["grids"] if g["grid_id"] == gid]
    cov = await anon.get(
        f"/api/v1/grids/{gid}/coverage",
        params={
            "since": start.replace(hour=0).isoformat(),
            "until": (start.replace(hour=0) + timedelta(days=7)).isoformat(),
        },
        headers=as_user("community"),
    )
    assert cov.status_code == 200, cov.text
    for key in ("cells", "visited", "share", "stale", "patrols", "distance_m"):
        assert grid[key] == cov.json()[key], key
    assert grid["patrols"] >= 1 and grid["visited"] >= 1
    [me] = [w for w in b["workers"] if w["worker_id"] == worker]
    assert me["hours"] >= 1.0 and me["open_tasks"] >= 1
    assert me["met"] == (me["hours"] >= me["standard_hours"])
    missed = await anon.get(
        f"/api/v1/areas/{community}/missed-checkins",
        params={"since": b["since"], "until": b["until"]},
        headers=as_user("community"),
    )
    assert b["checkins"] == missed.json()
    assert b["open_tasks"] == sum(w["open_tasks"] for w in b["workers"])

    # The same figures printable (HTML) and as a workbook (a sheet per section).
    page = await anon.get(
        f"/api/v1/areas/{community}/weekly-board",
        params={"week": week, "format": "html"},
        headers=as_user("community"),
    )
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f"周工作看板 {week}" in page.text and "网格覆盖" in page.text
    assert me["worker"] in page.text and grid["name"] in page.text
    x = await anon.get(
        f"/api/v1/areas/{community}/weekly-board",
        params={"week": week, "format": "xlsx"},
        headers=as_user("community"),
    )
    assert x.status_code == 200, x.text
    assert f"weekly-board-{community}-{week}.xlsx" in x.headers["content-disposition"]
    wb = load_workbook(io.BytesIO(x.content))
    assert wb.sheetnames == ["网格员", "网格覆盖", "漏打卡"]
    rows = list(wb["网格员"].iter_rows(min_row=3, values_only=True))
    mine = [r for r in rows if r[0] == me["worker"]]
    assert mine and mine[0][1] == me["hours"] and mine[0][5] == me["open_tasks"]
    assert rows[-1][0] == "合计" and rows[-1][5] == b["open_tasks"]
    cov_rows = {r[1]: r for r in wb["网格覆盖"].iter_rows(min_row=3, values_only=True)}
    assert cov_rows[grid["code"]][2:5] == (grid["cells"], grid["visited"], grid["share"])
    assert len(list(wb["漏打卡"].iter_rows(min_row=3))) == len(b["checkins"]["missed"])

    # The street reads it; a grid worker does not; bad weeks are problem+json.
    st = await anon.get(f"/api/v1/areas/{community}/weekly-board", headers=as_user("street"))
    assert st.status_code == 200, st.text
    assert st.json()["week"] == week_of(datetime.now(SHANGHAI).date())[1]
    problem(
        await anon.get(f"/api/v1/areas/{community}/weekly-board", headers=as_user("worker")),
        403,
        "forbidden",
    )
    for bad in ("2026-W60", "1999-W01", "2026-49"):
        r = await anon.get(
            f"/api/v1/areas/{community}/weekly-board",
            params={"week": bad},
            headers=as_user("community"),
        )
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["field"] in ("week", "query.week"), r.json()
