"""The worker's work log (工作日志): made from patrols, check-ins, visits and cases; JSON, HTML and
XLSX with the same figures."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

from openpyxl import load_workbook
from sqlalchemy import text

from app.schemas import SHANGHAI
from tests.factories import DEMO_GRID, report_body


async def test_a_days_log_counts_what_was_done_in_three_formats(anon, as_user, conn) -> None:
    h = as_user("worker")
    gid = (
        await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": DEMO_GRID})
    ).scalar_one()
    today = datetime.now(SHANGHAI).date()
    before = (await anon.get("/api/v1/me/worklog", headers=h)).json()
    assert before["first"] == before["last"] == today.isoformat()
    t0 = max(
        datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30),
        datetime.combine(today, datetime.min.time(), SHANGHAI),
    )
    p = (
        await anon.post(
            "/api/v1/patrols", json={"grid_id": gid, "started_at": t0.isoformat()}, headers=h
        )
    ).json()
    await anon.post(f"/api/v1/patrols/{p['id']}/end", json={}, headers=h)
    b = (
        await conn.execute(
            text("SELECT id FROM buildings WHERE grid_id = :g ORDER BY id LIMIT 1"), {"g": gid}
        )
    ).scalar_one()
    await anon.post(f"/api/v1/buildings/{b}/visits", json={"purpose": "policy"}, headers=h)
    await anon.post("/api/v1/cases", json=await report_body(conn, "日志测试"), headers=h)
    log = (await anon.get("/api/v1/me/worklog", headers=h)).json()
    day = log["days"][0]
    old = before["days"][0]
    assert day["patrols"] == old["patrols"] + 1
    assert day["visits"] == old["visits"] + 1 and day["cases"] == old["cases"] + 1
    assert log["total"]["patrols"] == day["patrols"]
    page = await anon.get("/api/v1/me/worklog", params={"format": "html"}, headers=h)
    assert page.headers["content-type"].startswith("text/html")
    assert "工作日志" in page.text and "巡查次数" in page.text and "<script" not in page.text
    x = await anon.get("/api/v1/me/worklog", params={"format": "xlsx"}, headers=h)
    ws = load_workbook(io.BytesIO(x.content)).active
    assert ws is not None
    rows = list(ws.iter_rows(values_only=True))
    assert rows[1][:2] == ("日期", "巡查次数")
    assert rows[2][0] == today.isoformat() and rows[2][1] == day["patrols"]
    assert rows[2][6] == day["visits"] and rows[-1][0] == "合计"


async def test_a_months_log_has_every_day(anon, as_user) -> None:
    log = (
        await anon.get(
            "/api/v1/me/worklog",
            params={"date": "2026-02-14", "span": "month"},
            headers=as_user("worker"),
        )
    ).json()
    assert log["first"] == "2026-02-01" and log["last"] == "2026-02-28"
    assert len(log["days"]) == 28
    r = await anon.get("/api/v1/me/worklog", headers=as_user("community"))
    assert r.status_code == 403
