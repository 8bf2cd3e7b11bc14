"""Bug 14 of issue 16: a 不满意 (dissatisfied) rating disappeared from the figures when the case
was reopened (the reopen clears the case's rating). It stays counted, whatever the case is rated
later, and the reopen shows. The report date is fixed (June 2025): nothing depends on today."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tests.api.test_loop import GRID, Loop, _report

JUNE = {"period": "month", "at": "2025-06-15"}


async def _figures(anon, as_user, grid_id: int) -> dict:
    r = await anon.get(
        "/api/v1/stats/indicators",
        params={"unit": "grid", "unit_id": grid_id, **JUNE},
        headers=as_user("admin"),
    )
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    if not items:  # no case of the grid in the month: every count is 0
        return {m: {"value": 0} for m in ("evaluated", "satisfied", "reopened")}
    [row] = items
    return row["figures"]


async def _fact(conn, case_id: int) -> str | None:
    await conn.execute(text("SELECT stats_catch_up(NULL)"))  # as every reader of the facts
    return (
        await conn.execute(
            text("SELECT satisfaction FROM stats_case_facts WHERE id = :id"), {"id": case_id}
        )
    ).scalar_one()


async def test_a_dissatisfied_rating_survives_the_reopen(anon, as_user, conn, demo) -> None:
    grid = demo[GRID]
    before = await _figures(anon, as_user, grid)
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await conn.execute(
        text("UPDATE cases SET reported_at = :t WHERE id = :id"),
        {"t": datetime(2025, 6, 10, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai")), "id": loop.id},
    )
    await loop.do("worker", "on_spot", {"note": "当场处理"})
    await loop.do("worker", "verify", {"passed": True})
    await loop.do("worker", "evaluate", {"satisfaction": "dissatisfied"})
    rated = await _figures(anon, as_user, grid)
    assert rated["evaluated"]["value"] == before["evaluated"]["value"] + 1
    assert rated["satisfied"]["value"] == before["satisfied"]["value"]

    c = await loop.do("community", "reopen", {"reason": "居民反映仍未解决"})
    assert c["status"] == "registered" and c["satisfaction"] is None
    assert await _fact(conn, loop.id) == "dissatisfied"
    reopened = await _figures(anon, as_user, grid)
    assert reopened["evaluated"]["value"] == rated["evaluated"]["value"]
    assert reopened["satisfied"]["value"] == rated["satisfied"]["value"]
    assert reopened["reopened"]["value"] == before["reopened"]["value"] + 1
    # the figure opens into the case behind it
    listed = await anon.get(
        reopened["evaluated"]["cases_url"] + "&limit=500", headers=as_user("admin")
    )
    assert loop.id in {x["id"] for x in listed.json()["items"]}

    # handled again and rated 满意: the earlier complaint is not washed away
    await loop.do("worker", "on_spot", {"note": "再次处理"})
    await loop.do("worker", "verify", {"passed": True})
    await loop.do("worker", "evaluate", {"satisfaction": "satisfied"})
    assert await _fact(conn, loop.id) == "dissatisfied"
    again = await _figures(anon, as_user, grid)
    assert again["evaluated"]["value"] == rated["evaluated"]["value"]
    assert again["satisfied"]["value"] == rated["satisfied"]["value"]

    # the facts kept by the triggers are those a rebuild from scratch gives
    kept = (
        await conn.execute(text("SELECT * FROM stats_case_facts WHERE id = :id"), {"id": loop.id})
    ).one()
    await conn.execute(text("SELECT stats_rebuild()"))
    rebuilt = (
        await conn.execute(text("SELECT * FROM stats_case_facts WHERE id = :id"), {"id": loop.id})
    ).one()
    assert tuple(kept) == tuple(rebuilt)


async def test_a_reopened_case_keeps_its_last_rating_until_rated_again(anon, as_user, conn) -> None:
    loop = Loop(anon, as_user, await _report(anon, as_user, conn))
    await loop.do("worker", "on_spot")
    await loop.do("worker", "verify", {"passed": True})
    await loop.do("worker", "evaluate", {"satisfaction": "basically_satisfied"})
    await loop.do("community", "reopen", {"reason": "复查"})
    assert await _fact(conn, loop.id) == "basically_satisfied"
