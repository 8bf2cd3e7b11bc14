"""The synthetic year (app.demo.history): a realistic, consistent loop for every case, kept by the
evaluation triggers like any other change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from app.demo.history import SLOW_DEPARTMENTS, generate_history
from app.schemas import SHANGHAI
from tests.helpers import assert_stats_facts_exact


async def test_a_year_of_history(conn, client) -> None:
    end = datetime(2026, 11, 30, 12, 0, tzinfo=SHANGHAI)
    report = await generate_history(conn, 3000, end=end, events=True)
    assert report["cases"] == 3000 and sum(report["status"].values()) == 3000
    assert report["status"]["closed"] > 2500 and report["status"]["rejected"] > 20
    assert {"handling", "dispatched"} & set(report["status"])
    row = (
        await conn.execute(
            text(
                "SELECT count(*) AS n, min(reported_at) AS lo, max(reported_at) AS hi, "
                "count(*) FILTER (WHERE grid_id IS NULL) AS nowhere, "
                "count(*) FILTER (WHERE status = 'closed' AND closed_at IS NULL) AS bad_close, "
                "count(*) FILTER (WHERE reported_at > closed_at) AS backwards "
                "FROM cases WHERE number LIKE 'H%'"
            )
        )
    ).one()
    assert row.n == 3000 and row.nowhere == 0 and row.bad_close == 0 and row.backwards == 0
    assert (end - row.hi).days < 2 and 360 <= (end - row.lo).days <= 366
    # Seasons: the rainy summer has more cases than the winter.
    by_month = dict(
        (
            await conn.execute(
                text(
                    "SELECT extract(month FROM reported_at AT TIME ZONE 'Asia/Shanghai')::int, "
                    "count(*) FROM cases WHERE number LIKE 'H%' GROUP BY 1"
                )
            )
        ).all()
    )
    assert by_month[7] > 1.5 * by_month[1]
    # Assignments agree with the cases: one per dispatched lead, a returned one before re-routing.
    bad = (
        await conn.execute(
            text(
                # correlated on the district too (Citus: "complex joins" without it)
                "SELECT count(*) FROM cases c WHERE c.number LIKE 'H%' AND c.lead_department_id "
                "IS NOT NULL AND NOT EXISTS (SELECT 1 FROM case_assignments a WHERE "
                "a.district_id = c.district_id AND a.case_id = c.id AND (a.department_id = "
                "c.lead_department_id AND a.state <> 'returned' OR c.status = 'returned'))"
            )
        )
    ).scalar_one()
    assert bad == 0
    # Timelines: every case starts with its report, closed ones end with the evaluation.
    steps = (
        await conn.execute(
            text(
                "SELECT count(*) FILTER (WHERE action = 'reported'), "
                "count(*) FILTER (WHERE action = 'evaluate') FROM case_events e "
                "JOIN cases c ON c.id = e.case_id AND c.district_id = e.district_id "
                "WHERE c.number LIKE 'H%'"
            )
        )
    ).one()
    assert steps[0] == 3000 and steps[1] == report["status"]["closed"]
    # The triggers kept the facts exact.
    await assert_stats_facts_exact(conn)
    # The slow departments rank below the others on on-time sign-in.
    r = await client.get(
        "/api/v1/stats/indicators",
        params={"unit": "department", "period": "custom", "since": "2025-11-01",
                "until": "2026-12-01"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    rates = {
        x["unit"]["code"]: x["figures"]["sign_in_on_time_rate"]["value"]
        for x in r.json()["items"]
        if x["figures"]["sign_in_counted"]["value"] >= 30
    }
    slow = [v for k, v in rates.items() if k in SLOW_DEPARTMENTS]
    fast = [v for k, v in rates.items() if k not in SLOW_DEPARTMENTS]
    assert slow and fast and max(slow) < min(fast)
