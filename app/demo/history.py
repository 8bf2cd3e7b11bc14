"""A year of synthetic cases for the demo district (and the evaluation benchmark), made in SQL.

Set-based (generate_series, seeded random()): `n` cases over the 365 days before `end`, spread
by a seasonal pattern (more in the rainy summer, fewer around the Spring Festival and National
Day, fewer at weekends), over the live grids in proportion to their households, most between
08:00 and 18:00. Each case runs the loop with times in working hours of the official calendar
(`stats_wh_add`, migration 0007): 2% rejected, 10% handled on the spot by the grid worker, the
rest dispatched to the category's lead department (4% returned and re-routed to the catch-all
owner), signed in, handled within the category's limits, verified (8% reworked), evaluated
(satisfied, basically satisfied, dissatisfied, or unreachable) and closed; 1% reopened and closed
again. Two departments are slow (ZJJ housing and SLJ water: later sign-ins and handlings, more
rework, less satisfaction), so rankings have something to show. A case whose next step would
lie after `end` is left in the state it has then (dispatched, handling, rework, feedback,
verified), so the present has open and overdue work.

Numbers are 'H' + 10 digits. With `events`, each case gets its timeline steps (report,
register, dispatch, return, sign in, feedback, verify, evaluate). The cases are marked for the
evaluation facts (`case_changes`, caught up by the next reader); with `fast` (the benchmark, a
superuser connection) triggers are skipped (session_replication_role = replica) and the facts
rebuilt once at the end.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import get_settings

SLOW_DEPARTMENTS = ("ZJJ", "SLJ")

_GRIDS = """
CREATE TEMP TABLE hist_grids ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY g.id) - 1)::int AS k, g.id AS grid_id,
       g.community_id, c.parent_id AS street_id, s.parent_id AS district_id, b.id AS boundary_id,
       ST_PointOnSurface(b.boundary) AS p,
       (SELECT pg.post_id FROM post_grids pg JOIN posts po ON po.id = pg.post_id
        WHERE pg.grid_id = g.id AND po.role = 'grid_worker' ORDER BY po.id LIMIT 1) AS post_id,
       sum(greatest(coalesce(g.households, 100), 1)) OVER (ORDER BY g.id) AS cum,
       sum(greatest(coalesce(g.households, 100), 1)) OVER () AS total
FROM grids g
JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id
JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
WHERE g.deleted_at IS NULL
"""
_CATS = """
CREATE TEMP TABLE hist_cats ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY c.code) - 1)::int AS k, c.code, c.name, c.limits,
       coalesce(d.id, (SELECT id FROM departments WHERE code = :catch_all)) AS lead_id,
       coalesce(d.code, :catch_all) = ANY(:slow) AS slow
FROM categories c LEFT JOIN departments d ON d.code = c.lead_department
WHERE c.active
"""
# Cases per day: seasonal weights, normalised to n.
_DAYS = """
CREATE TEMP TABLE hist_days ON COMMIT DROP AS
WITH d AS (
    SELECT g.d::date AS day,
           (1 + 0.45 * sin(2 * pi() * (extract(doy FROM g.d) - 100) / 365.0))
           * CASE WHEN extract(isodow FROM g.d) >= 6 THEN 0.6 ELSE 1 END
           * CASE WHEN wc.workday IS FALSE AND extract(isodow FROM g.d) < 6 THEN 0.5 ELSE 1 END
           AS w
    FROM generate_series((:end_day)::date - 364, (:end_day)::date, interval '1 day') g(d)
    LEFT JOIN work_calendar wc ON wc.day = g.d::date
)
SELECT day, floor(:n * sum(w) OVER (ORDER BY day) / sum(w) OVER ())
          - coalesce(floor(:n * sum(w) OVER (ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING
                                              AND 1 PRECEDING) / sum(w) OVER ()), 0) AS n
FROM d
"""
# One row per case with every random decision and every time of its loop.
_PLAN = """
CREATE TEMP TABLE hist_plan ON COMMIT DROP AS
WITH base AS (
    SELECT nextval(pg_get_serial_sequence('cases', 'id')) AS id, d.day,
           random() AS r1, random() AS r2, random() AS r3, random() AS r4, random() AS r5,
           random() AS r6, random() AS r7, random() AS r8, random() AS r9, random() AS r10
    FROM hist_days d CROSS JOIN LATERAL generate_series(1, d.n::int) i
),
placed AS (
    SELECT b.*, g.grid_id, g.community_id, g.street_id, g.district_id, g.boundary_id, g.p,
           g.post_id, cat.code AS category_code, cat.name AS category_name, cat.slow,
           cat.lead_id,
           CASE WHEN b.r9 < 0.85 THEN 'normal' WHEN b.r9 < 0.97 THEN 'urgent'
                ELSE 'critical' END AS urgency,
           cat.limits,
           (b.day + time '08:00' + interval '10 hours' * b.r2) AT TIME ZONE 'Asia/Shanghai'
               AS reported_at
    FROM base b
    JOIN hist_grids g ON g.k = width_bucket(
        b.r1, (SELECT array_agg(x.cum::float8 / x.total ORDER BY x.k) FROM hist_grids x))
    JOIN hist_cats cat ON cat.k = floor(b.r3 * (SELECT count(*) FROM hist_cats))::int
),
kind AS (
    SELECT p.*,
           CASE WHEN p.r4 < 0.02 THEN 'rejected' WHEN p.r4 < 0.12 THEN 'on_spot'
                ELSE 'dispatch' END AS path,
           p.r5 < 0.04 AS returned,
           p.r6 < CASE WHEN p.slow THEN 0.15 ELSE 0.08 END AS rework,
           (p.limits -> p.urgency) AS lim
    FROM placed p
)
SELECT k.*, (SELECT id FROM departments WHERE code = :catch_all) AS catch_all_id,
       (k.lim ->> 'sign_in_hours')::float8 AS sign_in_hours,
       CASE WHEN k.lim ->> 'handle_unit' = 'days' THEN (k.lim ->> 'handle')::float8 * 6.5
            ELSE (k.lim ->> 'handle')::float8 END AS handle_hours,
       CASE WHEN k.slow THEN 0.5 + 7.5 * k.r7 * k.r7 ELSE 0.1 + 2.6 * k.r7 * k.r7 END
           AS sign_in_delay,
       CASE WHEN k.slow THEN 0.5 + 1.5 * k.r8 ELSE 0.25 + 0.95 * k.r8 END AS handle_share,
       CASE WHEN k.r10 < CASE WHEN k.slow THEN 0.55 ELSE 0.72 END THEN 'satisfied'
            WHEN k.r10 < CASE WHEN k.slow THEN 0.75 ELSE 0.87 END THEN 'basically_satisfied'
            WHEN k.r10 < CASE WHEN k.slow THEN 0.92 ELSE 0.94 END THEN 'dissatisfied'
            ELSE 'unreachable' END AS satisfaction
FROM kind k
"""
# The calendar as arrays (one row): working hours are arithmetic plus an array lookup, so a
# million cases need no per-row function calls.
_CAL = """
CREATE TEMP TABLE hist_cal ON COMMIT DROP AS
SELECT (SELECT min(day) - date '1970-01-01' FROM work_calendar) AS d0e, h.morning_start AS ms, h.morning_end AS me, h.afternoon_start AS ast,
       h.afternoon_end AS ae,
       (h.morning_end - h.morning_start + h.afternoon_end - h.afternoon_start) / 3600.0 AS hd
FROM work_hours h
"""


# The calendar as in-memory arrays (a materialised CTE, one row): a subscript is O(1). Read from
# a table column they would be de-TOASTed at every use.
_WHB, _WD, _DAYS_ARR = "cal.whb", "cal.wd", "cal.days"


def _whv(t: str) -> str:
    """SQL: office hours from the calendar's start to the instant `t` (as stats_wh_at), in plain
    arithmetic: Asia/Shanghai has kept UTC+8 all year since 1991."""
    loc = f"(extract(epoch FROM {t}) + 28800)"
    i = f"(floor({loc} / 86400)::int - k.d0e + 1)"
    sec = f"({loc} - floor({loc} / 86400) * 86400)"
    return (
        f"({_WHB}[{i}] + CASE WHEN {_WD}[{i}] THEN (greatest(0, least({sec}, k.me) - k.ms) "
        f"+ greatest(0, least({sec}, k.ae) - k.ast)) / 3600.0 ELSE 0 END)"
    )


def _inst(v: str) -> str:
    """SQL: the instant at office-hour coordinate `v` (as stats_wh_add)."""
    n = f"ceil(({v}) / k.hd)::int"
    r = f"((({v}) - ({n} - 1) * k.hd) * 3600)"
    return (
        f"to_timestamp({_DAYS_ARR}[{n}] - 28800 + CASE WHEN {r} <= k.me - k.ms THEN k.ms + {r} "
        f"ELSE k.ast + {r} - (k.me - k.ms) END)"
    )


# The steps in office-hour coordinates (working hours after the previous step), then instants.
_V = {
    "registered_at": "v_rep + 0.1 + 0.9 * r5",
    "on_spot_at": "v_rep + 0.5 + 3 * r6",
    "dispatched_at": "v_rep + 0.3 + 0.9 * r5 + 0.8 * r8",
    "returned_at": "CASE WHEN returned THEN v_rep + 0.6 + 0.9 * r5 + 0.8 * r8 + r9 END",
    "lead_dispatched_at": "v_rep + 0.3 + 0.9 * r5 + 0.8 * r8 "
    "+ CASE WHEN returned THEN 0.8 + r9 ELSE 0 END",
    "first_sign_in_due": "v_rep + 0.3 + 0.9 * r5 + 0.8 * r8 + sign_in_hours",
}
_TIMES = (
    """
CREATE TEMP TABLE hist_times ON COMMIT DROP AS
WITH cal AS MATERIALIZED (
    SELECT (SELECT array_agg(wh_before ORDER BY day) FROM work_calendar) AS whb,
           (SELECT array_agg(workday ORDER BY day) FROM work_calendar) AS wd,
           (SELECT array_agg(extract(epoch FROM day::timestamp)::float8 ORDER BY day)
            FROM work_calendar WHERE workday) AS days
),
v1 AS MATERIALIZED (
    SELECT p.*, """
    + _whv("p.reported_at")
    + """ AS v_rep FROM hist_plan p CROSS JOIN hist_cal k CROSS JOIN cal
),
v2 AS MATERIALIZED (
    SELECT v1.*, """
    + ", ".join(f"{e} AS v_{n}" for n, e in _V.items())
    + """ FROM v1
),
v3 AS MATERIALIZED (
    SELECT v2.*, v_lead_dispatched_at + sign_in_hours AS v_sign_in_due,
           v_lead_dispatched_at + sign_in_delay AS v_signed_in_at
    FROM v2
),
v4 AS MATERIALIZED (
    SELECT v3.*, v_signed_in_at + handle_hours AS v_first_due,
           v_signed_in_at + handle_hours * handle_share AS v_first_feedback
    FROM v3
),
v5 AS MATERIALIZED (
    SELECT v4.*, CASE WHEN rework THEN v_first_feedback + 1 + 2 * r10 END AS v_rework_at
    FROM v4
),
v6 AS MATERIALIZED (
    SELECT v5.*, v_rework_at + handle_hours AS v_rework_due,
           v_rework_at + handle_hours * handle_share * 0.6 AS v_second_feedback
    FROM v5
),
v7 AS MATERIALIZED (
    SELECT v6.*, CASE WHEN path = 'on_spot' THEN v_on_spot_at
                      ELSE coalesce(v_second_feedback, v_first_feedback) END AS v_feedback_at
    FROM v6
)
SELECT v7.*, """
    + ", ".join(
        f"{_inst('v_' + n)} AS {n}"
        for n in (
            *_V,
            "sign_in_due",
            "signed_in_at",
            "first_due",
            "first_feedback",
            "rework_at",
            "rework_due",
            "second_feedback",
            "feedback_at",
        )
    )
    + """,
       """
    + _inst("v_feedback_at + 0.5 + 2 * r2")
    + """ AS verified_at,
       """
    + _inst("v_feedback_at + 1 + 3 * r2")
    + """ AS closed_at
FROM v7 CROSS JOIN hist_cal k CROSS JOIN cal
"""
)
# Where each case stands at `end`.
_STATE = """
CREATE TEMP TABLE hist_cases ON COMMIT DROP AS
SELECT h.*,
       CASE WHEN h.path = 'rejected' THEN
                CASE WHEN h.registered_at <= :end THEN 'rejected' ELSE 'reported' END
            WHEN h.path = 'on_spot' THEN
                CASE WHEN h.on_spot_at > :end THEN 'reported'
                     WHEN h.verified_at > :end THEN 'feedback'
                     WHEN h.closed_at > :end THEN 'verified' ELSE 'closed' END
            WHEN h.registered_at > :end THEN 'reported'
            WHEN h.dispatched_at > :end THEN 'registered'
            WHEN h.returned_at IS NOT NULL AND h.lead_dispatched_at > :end THEN
                CASE WHEN h.returned_at > :end THEN 'dispatched' ELSE 'returned' END
            WHEN h.signed_in_at > :end THEN 'dispatched'
            WHEN h.first_feedback > :end THEN 'handling'
            WHEN h.rework AND h.rework_at > :end THEN 'feedback'
            WHEN h.rework AND h.second_feedback > :end THEN 'rework'
            WHEN h.verified_at > :end THEN 'feedback'
            WHEN h.closed_at > :end THEN 'verified'
            ELSE 'closed' END AS status,
       CASE WHEN h.returned AND h.lead_dispatched_at <= :end THEN h.catch_all_id
            ELSE h.lead_id END AS main_dept,
       CASE WHEN h.returned AND h.lead_dispatched_at <= :end THEN h.lead_dispatched_at
            ELSE h.dispatched_at END AS main_dispatched_at,
       CASE WHEN h.returned AND h.lead_dispatched_at > :end
            THEN h.first_sign_in_due ELSE h.sign_in_due END
           AS main_sign_in_due,
       h.path = 'dispatch' AND h.rework AND h.rework_at <= :end AS reworked
FROM hist_times h
"""
_INSERT_CASES = """
INSERT INTO cases (id, number, category_code, title, description, location, accuracy_m,
    reported_at, urgency, channel, reporter_id, grid_id, community_id, street_id, district_id,
    boundary_id, status, version, created_at, updated_at, closed_at, lead_department_id,
    first_unit, satisfaction, on_spot, rework_count, reopen_count)
SELECT h.id, 'H' || lpad(h.id::text, 10, '0'), h.category_code, h.category_name || '问题反映',
       '群众反映' || h.category_name || '，请及时处理。',
       ST_SetSRID(ST_MakePoint(ST_X(h.p) + (h.r7 - 0.5) * 0.0006,
                               ST_Y(h.p) + (h.r8 - 0.5) * 0.0006), 4326),
       round((3 + h.r9 * 25)::numeric, 1), h.reported_at, h.urgency,
       CASE WHEN h.r10 < 0.62 THEN 'app' WHEN h.r10 < 0.86 THEN 'hotline'
            WHEN h.r10 < 0.95 THEN 'qr' ELSE 'console' END,
       (SELECT user_id FROM posts WHERE id = h.post_id),
       h.grid_id, h.community_id, h.street_id, h.district_id, h.boundary_id, h.status, 1,
       h.reported_at, h.reported_at,
       CASE WHEN h.status = 'closed' THEN h.closed_at
            WHEN h.status = 'rejected' THEN h.registered_at END,
       CASE WHEN h.path = 'dispatch' AND h.status NOT IN ('reported', 'registered')
            THEN h.main_dept END,
       CASE WHEN h.status <> 'reported' THEN '社区' END,
       CASE WHEN h.status = 'closed' THEN h.satisfaction END,
       h.path = 'on_spot' AND h.status <> 'reported',
       CASE WHEN h.reworked THEN 1 ELSE 0 END,
       CASE WHEN h.status = 'closed' AND h.r1 * 1000 - floor(h.r1 * 1000) < 0.01 THEN 1
            ELSE 0 END
FROM hist_cases h
"""
_INSERT_ASSIGNMENTS = """
INSERT INTO case_assignments (case_id, district_id, department_id, role, state, dispatched_at,
    limits, sign_in_due, signed_in_at, handle_due, feedback_at, rework_count, note)
SELECT h.id, h.district_id, h.lead_id, 'lead', 'returned', h.dispatched_at, h.limits,
       h.first_sign_in_due, NULL, NULL, NULL, 0, '不属于本部门职责'
FROM hist_cases h
WHERE h.path = 'dispatch' AND h.returned AND h.returned_at <= :end
UNION ALL
SELECT h.id, h.district_id, h.main_dept, 'lead',
       CASE h.status WHEN 'dispatched' THEN 'dispatched' WHEN 'handling' THEN 'handling'
                     WHEN 'rework' THEN 'rework' WHEN 'feedback' THEN 'feedback'
                     ELSE 'done' END,
       h.main_dispatched_at, h.limits, h.main_sign_in_due,
       CASE WHEN h.status <> 'dispatched' THEN h.signed_in_at END,
       CASE WHEN h.status = 'dispatched' THEN NULL
            WHEN h.reworked THEN h.rework_due ELSE h.first_due END,
       CASE WHEN h.status IN ('dispatched', 'handling') THEN NULL
            WHEN h.status = 'rework' THEN h.first_feedback
            WHEN h.reworked AND h.second_feedback <= :end THEN h.second_feedback
            ELSE h.first_feedback END,
       CASE WHEN h.reworked THEN 1 ELSE 0 END, ''
FROM hist_cases h
WHERE h.path = 'dispatch' AND h.status NOT IN ('reported', 'registered', 'returned')
"""
_INSERT_EVENTS = """
INSERT INTO case_events (case_id, district_id, at, action, from_status, to_status, detail)
SELECT e.id, h.district_id, e.at, e.action, e.f, e.t, '{"synthetic": true}'::jsonb FROM (
    SELECT id, reported_at AS at, 'reported' AS action, NULL AS f, 'reported' AS t
    FROM hist_cases
    UNION ALL SELECT id, registered_at, 'reject', 'reported', 'rejected' FROM hist_cases
        WHERE status = 'rejected'
    UNION ALL SELECT id, on_spot_at, 'on_spot', 'reported', 'feedback' FROM hist_cases
        WHERE path = 'on_spot' AND status <> 'reported'
    UNION ALL SELECT id, registered_at, 'register', 'reported', 'registered' FROM hist_cases
        WHERE path = 'dispatch' AND status <> 'reported'
    UNION ALL SELECT id, dispatched_at, 'dispatch', 'registered', 'dispatched' FROM hist_cases
        WHERE path = 'dispatch' AND status NOT IN ('reported', 'registered')
    UNION ALL SELECT id, returned_at, 'return', 'dispatched', 'returned' FROM hist_cases
        WHERE path = 'dispatch' AND returned AND returned_at <= :end
    UNION ALL SELECT id, lead_dispatched_at, 'dispatch', 'returned', 'dispatched' FROM hist_cases
        WHERE path = 'dispatch' AND returned AND lead_dispatched_at <= :end
    UNION ALL SELECT id, signed_in_at, 'sign_in', 'dispatched', 'handling' FROM hist_cases
        WHERE path = 'dispatch' AND signed_in_at <= :end
          AND status NOT IN ('reported', 'registered', 'returned', 'dispatched')
    UNION ALL SELECT id, first_feedback, 'feedback', 'handling', 'feedback' FROM hist_cases
        WHERE path = 'dispatch' AND first_feedback <= :end
          AND status IN ('feedback', 'verified', 'closed', 'rework')
    UNION ALL SELECT id, rework_at, 'verify', 'feedback', 'rework' FROM hist_cases
        WHERE rework AND path = 'dispatch' AND rework_at <= :end
          AND status IN ('feedback', 'verified', 'closed', 'rework')
    UNION ALL SELECT id, second_feedback, 'feedback', 'rework', 'feedback' FROM hist_cases
        WHERE rework AND path = 'dispatch' AND second_feedback <= :end
          AND status IN ('feedback', 'verified', 'closed')
    UNION ALL SELECT id, verified_at, 'verify', 'feedback', 'verified' FROM hist_cases
        WHERE status IN ('verified', 'closed')
    UNION ALL SELECT id, closed_at, 'evaluate', 'verified', 'closed' FROM hist_cases
        WHERE status = 'closed'
) e JOIN hist_cases h ON h.id = e.id
"""


_FACT_INDEXES = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def_
FROM pg_index i
WHERE i.indrelid IN ('stats_case_facts'::regclass, 'stats_dept_facts'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY 1
"""


async def generate_history(
    conn: AsyncConnection,
    n: int,
    *,
    end: datetime | None = None,
    seed: float = 0.20261130,
    events: bool = True,
    fast: bool = False,
) -> dict[str, Any]:
    """Add `n` synthetic cases over the year before `end` (default now) in the caller's
    transaction. Returns counts and timings."""
    if not 0 < n <= 5_000_000:
        raise ValueError("n must be in 1..5,000,000")
    s = get_settings()
    times: dict[str, float] = {}
    t0 = time.perf_counter()
    if end is None:
        end = (await conn.execute(text("SELECT now()"))).scalar_one()
    await conn.execute(text("SET LOCAL statement_timeout = 0"))
    if fast:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
    await conn.execute(text("SELECT setseed(:s)"), {"s": seed})
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("grids", _GRIDS, {}),
        (
            "cats",
            _CATS,
            {"catch_all": s.catch_all_department, "slow": list(SLOW_DEPARTMENTS)},
        ),
        ("days", _DAYS, {"end_day": end.astimezone(_shanghai()).date(), "n": n}),
        ("plan", _PLAN, {"catch_all": s.catch_all_department}),
        ("cal", _CAL, {}),
        ("times", _TIMES, {}),
        ("cases", _STATE, {"end": end}),
    ]
    for name, sql, params in steps:
        t = time.perf_counter()
        await conn.execute(text(sql), params)
        await conn.execute(text(f"ANALYZE hist_{name}"))
        times[f"{name}_s"] = time.perf_counter() - t
    times["plan_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    await conn.execute(text(_INSERT_CASES), {"end": end})
    assignments = (await conn.execute(text(_INSERT_ASSIGNMENTS), {"end": end})).rowcount
    times["insert_s"] = time.perf_counter() - t
    n_events = 0
    if events:
        t = time.perf_counter()
        n_events = (await conn.execute(text(_INSERT_EVENTS), {"end": end})).rowcount
        times["events_s"] = time.perf_counter() - t
    if not fast:
        # A writer marks its cases for the evaluation facts (migration 0025).
        await conn.execute(
            text(
                "INSERT INTO case_changes (district_id, case_id) SELECT district_id, id FROM hist_cases"
            )
        )
    if fast:
        # Rebuild the facts like a restore: without their secondary indexes, rebuilt after.
        t = time.perf_counter()
        await conn.execute(text("SET LOCAL session_replication_role = origin"))
        # Fresh statistics: the views join the new rows; without them the planner takes the
        # just-filled tables for empty ones (nested loops over seq scans).
        await conn.execute(text("ANALYZE cases, case_assignments"))
        indexes = list(await conn.execute(text(_FACT_INDEXES)))
        for ix in indexes:
            await conn.execute(text(f"DROP INDEX {ix.name}"))
        await conn.execute(text("SELECT stats_rebuild()"))
        times["facts_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for ix in indexes:
            await conn.execute(text(ix.def_))
        times["fact_indexes_s"] = time.perf_counter() - t
    status = {
        r.status: r.n
        for r in await conn.execute(
            text("SELECT status, count(*) AS n FROM hist_cases GROUP BY 1 ORDER BY 2 DESC")
        )
    }
    return {
        "cases": sum(status.values()),
        "assignments": assignments,
        "events": n_events,
        "status": status,
        **{k: round(v, 1) for k, v in times.items()},
    }


def _shanghai() -> Any:
    from app.schemas import SHANGHAI

    return SHANGHAI
