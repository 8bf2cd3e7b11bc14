"""Benchmark the closed loop end to end, and the dispatch console's queue at 1,000,000 cases.

One uvicorn server (1 worker, no access log) on the demo district, the loop's clock and the
webhook runner off (WANGGE_SCHEDULER_ENABLED=false: not part of any request, and at scale the
clock would escalate the synthetic overdue assignments, writing while the queue is timed).

Part 1, full loops through the API. N (8) concurrent loop drivers, each repeatedly: `worker`
reports a case at a seeded point inside one of its grids in 立新社区 (POST /api/v1/cases with a
fresh Idempotency-Key; categories the catalogue leads to CGJ alone: no co-departments, no routing
rule) → `community` register → `street` dispatch (empty body: routing by the catalogue, lead CGJ)
→ `dept` sign_in → `dept` feedback → `worker` verify {"passed": true} → `worker` evaluate
{"satisfaction": "satisfied"}; every action is POST /api/v1/cases/{id}/actions/{action} with
If-Match: the version (ETag) the previous answer gave. ``--whistle`` adds `community` whistle after
register (the loop of tests/api/test_loop.py). Each account logs in once. Every driver does one
loop to warm up, then loops until the deadline (a loop started before it is finished). Reported:
closed cases per second, p50/p99 of a whole loop and of each step, errors (any other status than
201/200 or an unexpected case status: must be 0), the server's and the database's CPU per loop;
then the database must hold exactly one closed case per completed loop, each with the expected
timeline (reported + one step per action: 7, or 8 with --whistle) and one CGJ assignment, done.

Part 2, the dispatch console's queue at scale. 1,000,000 synthetic cases (200,000 with --quick)
are generated in SQL (INSERT ... SELECT from generate_series, seeded): spread over the demo grids
(their community, street and district, a point near the grid's PointOnSurface, the grid's roster
worker as reporter for app reports), categories with CGJ as lead for ~30%, 93% closed and 2%
rejected over the past year, 5% open from the last 30 days (reported, registered, dispatched,
handling, rework, suspended, feedback, verified); every dispatched case gets an assignment to its
lead department and one per co-department of its catalogue entry ('done' once verified/closed),
with sign-in and handling deadlines for the running ones spread around now (~30% of the
sign-ins, ~25% of the handlings overdue). No timeline steps (the queue does not read them). It is
loaded the way pg_restore does: in one transaction, the two tables' non-constraint indexes dropped,
the rows inserted (foreign-key triggers skipped with session_replication_role = replica when the
role may), the indexes rebuilt; then VACUUM (ANALYZE), so autovacuum does not start mid-timing.

Then, side by side in interleaved slices with rotating order, one request at a time:
* ``dept_api``    GET /api/v1/cases?department_id=<CGJ>&overdue=true&limit=50 as `dept` (城管局);
* ``dept_sql``    the statement that endpoint runs, as a prepared asyncpg statement;
* ``centre_api``  GET /api/v1/cases?status=dispatched&limit=50 as `centre` (区综治中心);
* ``centre_sql``  likewise.
The raw statements are the endpoint's own: app.cases.service.list_cases is called in this process
with the caller's principal (loaded from its token) and SQLAlchemy's before_cursor_execute event
captures the statement and its parameters. Before timing, each endpoint must return the ids the
raw statement returns. Then EXPLAIN (ANALYZE, BUFFERS) of each raw statement once: the plan's top
lines and its scans of cases and case_assignments, what the plan says makes it slow, and (when a
raw p50 is over 50 ms, or with --what-if always) what-ifs, each in a transaction rolled back, on a
statement prepared afresh, custom plans unless said: JIT off, an index on cases (reported_at DESC,
id DESC), with it the overdue filter as a plain EXISTS (a change to
app.cases.service.OVERDUE_SQL, not made here), the same as a generic plan with and without JIT,
and that change without the index. Nothing in app/ or migrations/ is changed. The timed raw
variants run with plan_cache_mode = force_custom_plan, the plan EXPLAIN shows. The endpoint's
statement is prepared on each of the server's pooled connections: its first five runs there get
custom plans, later ones the generic plan when the planner estimates it cheaper (left to itself,
one connection running the dept queue over and over does switch, and is slower: the raw variant
would then time another plan than the endpoint, spread over its pool, mostly gets here).

Needs BENCH_DATABASE_URL: an empty, throwaway database (the bench migrates it, loads the demo
district with its demo accounts, and when done truncates every table but the append-only audit
log, which keeps its login rows). It refuses a database holding grids, cases or non-demo accounts.
``scripts/bench.sh`` (``make bench``) provides one.
Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_loop.py [--quick]``.
Results also go to bench/out/loop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import orjson
from asyncpg.prepared_stmt import PreparedStatement
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    MAX_CALLS,
    OUT,
    Call,
    HttpConn,
    Tally,
    drive,
    fmt_ms,
    libpq_url,
    load_demo_district,
    login,
    proc_cpu_s,
    reset,
    run_bench,
    start_server,
    stop_server,
    wait_ready,
)

from app.auth.policy import decode_access_token, load_principal
from app.cases import service as case_service
from app.config import async_url, get_settings
from app.demo.accounts import COMMUNITY
from app.schemas import page_limit

SEED = 20261124
CASES = "/api/v1/cases"
ACCOUNTS = ("worker", "community", "street", "dept", "centre")
LEAD = "CGJ"
POINTS_PER_GRID = 24
QUEUE_LIMIT = 50
SLOW_P50_MS = 50.0
CGJ_SHARE = 0.30
WHAT_IF_RUNS = 3
BENCH_APP = "wangge-bench"  # this process's own connections (the server's say 'wangge')


# --- database -------------------------------------------------------------------------------------


async def connect(url: str) -> asyncpg.Connection:
    """A connection with the session settings the app's pool uses (app.db.make_engine)."""
    return await asyncpg.connect(
        libpq_url(url),
        server_settings={
            "statement_timeout": str(get_settings().statement_timeout_ms),
            "timezone": "UTC",
            "application_name": BENCH_APP,
        },
    )


_BACKENDS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'wangge' AND pid <> pg_backend_pid()
"""


async def backends_cpu(conn: asyncpg.Connection) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend of the app's pool (application_name
    'wangge'); none when the server's processes are not visible here."""
    out = {}
    for r in await conn.fetch(_BACKENDS):
        with contextlib.suppress(OSError):  # exited meanwhile, or another PID namespace
            out[r["pid"]] = proc_cpu_s(r["pid"])
    return out


def pct(values_ns: list[int], q: float) -> float | None:
    if not values_ns:
        return None
    return round(float(np.percentile(np.asarray(values_ns, dtype=np.float64), q)) / 1e6, 3)


# --- part 1: full loops ---------------------------------------------------------------------------

# Categories the catalogue routes to CGJ alone: dispatched with an empty body, one assignment.
_CATEGORIES = """
SELECT c.code, c.name, c.keywords
FROM categories c
WHERE c.active AND c.lead_department = $1 AND cardinality(c.co_departments) = 0
  AND NOT EXISTS (SELECT 1 FROM routing_rules r WHERE r.category_code = c.code)
ORDER BY c.code
"""

# Seeded points inside the worker's grids (立新社区), still inside once rounded to 1e-7°.
_POINTS = """
WITH live AS (
    SELECT g.code, b.boundary
    FROM users u
    JOIN posts p ON p.user_id = u.id AND p.role = 'grid_worker'
    JOIN post_grids pg ON pg.post_id = p.id
    JOIN grids g ON g.id = pg.grid_id
    JOIN areas a ON a.id = g.community_id AND a.code = $3
    JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
    WHERE u.username = 'worker'
),
pts AS (
    SELECT code, boundary, (ST_Dump(ST_GeneratePoints(boundary, $1, $2))).geom AS p FROM live
),
r AS (
    SELECT code, boundary,
           round(ST_X(p)::numeric, 7)::float8 AS lon, round(ST_Y(p)::numeric, 7)::float8 AS lat
    FROM pts
)
SELECT code, lon, lat FROM r
WHERE ST_Intersects(boundary, ST_SetSRID(ST_MakePoint(lon, lat), 4326))
ORDER BY code, lon, lat
"""

TITLES = ("{kw}问题反映", "发现{name}", "{kw}，请尽快处理", "{name}")
DESCRIPTIONS = (
    "巡查中发现{n}号楼附近{kw}，已拍照留存，请相关部门尽快处理。",
    "居民反映小区一带{name}，影响出行和日常生活，希望尽快解决。",
    "网格走访时发现：{kw}。位置在{n}号楼东侧，请核实。",
)


async def make_bodies(conn: asyncpg.Connection) -> tuple[list[bytes], dict[str, Any]]:
    cats = await conn.fetch(_CATEGORIES, LEAD)
    if not cats:
        raise RuntimeError(f"no category the catalogue leads to {LEAD} alone")
    points = await conn.fetch(_POINTS, POINTS_PER_GRID, SEED, COMMUNITY)
    if not points:
        raise RuntimeError("no point inside the worker's grids in 立新社区")
    rng = np.random.default_rng(SEED)
    bodies = []
    for i in range(len(points) * 2):
        pt = points[int(rng.integers(len(points)))]
        cat = cats[i % len(cats)]
        keywords = list(cat["keywords"] or []) or [cat["name"]]
        words = {
            "kw": keywords[int(rng.integers(len(keywords)))],
            "name": cat["name"],
            "n": int(rng.integers(1, 40)),
        }
        body = {
            "category": cat["code"],
            "title": TITLES[int(rng.integers(len(TITLES)))].format(**words)[:200],
            "description": DESCRIPTIONS[int(rng.integers(len(DESCRIPTIONS)))].format(**words),
            "location": {
                "lon": pt["lon"],
                "lat": pt["lat"],
                "crs": "wgs84",
                "accuracy_m": round(float(rng.uniform(3, 30)), 1),
            },
        }
        bodies.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
    stats = {
        "categories": [c["code"] for c in cats],
        "points": len(points),
        "grids": sorted({p["code"] for p in points}),
        "bodies": len(bodies),
    }
    return bodies, stats


@dataclass(frozen=True)
class Step:
    who: str
    action: str
    body: bytes
    to_status: str


def loop_steps(whistle: bool) -> list[Step]:
    def step(who: str, action: str, body: dict[str, Any], to_status: str) -> Step:
        return Step(who, action, orjson.dumps(body), to_status)

    steps = [step("community", "register", {}, "registered")]
    if whistle:
        steps.append(step("community", "whistle", {"reason": "需要城管局协调处理"}, "whistled"))
    steps += [
        step("street", "dispatch", {}, "dispatched"),
        step("dept", "sign_in", {}, "handling"),
        step("dept", "feedback", {"note": "已清理完毕，现场恢复"}, "feedback"),
        step("worker", "verify", {"passed": True, "note": "现场核查通过"}, "verified"),
        step("worker", "evaluate", {"satisfaction": "satisfied"}, "closed"),
    ]
    return steps


@dataclass
class LoopStats:
    loops_ns: list[int] = field(default_factory=list)
    steps_ns: dict[str, list[int]] = field(default_factory=dict)
    started: int = 0
    completed: int = 0
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def fail(self, e: BaseException) -> None:
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(f"{type(e).__name__}: {e}"[:300])


async def one_loop(conns: dict[str, HttpConn], body: bytes, steps: list[Step]) -> dict[str, int]:
    """Report a case and take it through every step to closed; the time of each, in ns."""
    times: dict[str, int] = {}
    t0 = time.perf_counter_ns()
    status, answer = await conns["worker"].post(CASES, body, {"Idempotency-Key": str(uuid.uuid4())})
    times["report"] = time.perf_counter_ns() - t0
    if status != 201:
        raise RuntimeError(f"report: HTTP {status}: {answer[:300]!r}")
    case = orjson.loads(answer)
    case_id, version = int(case["id"]), int(case["version"])
    for s in steps:
        t = time.perf_counter_ns()
        status, answer = await conns[s.who].post(
            f"{CASES}/{case_id}/actions/{s.action}", s.body, {"If-Match": f'"{version}"'}
        )
        times[s.action] = time.perf_counter_ns() - t
        if status != 200:
            raise RuntimeError(f"{s.action} of case {case_id}: HTTP {status}: {answer[:300]!r}")
        case = orjson.loads(answer)
        if case["status"] != s.to_status:
            raise RuntimeError(f"{s.action} of case {case_id}: status {case['status']}")
        if s.action == "dispatch" and (case.get("lead_department") or {}).get("code") != LEAD:
            raise RuntimeError(f"case {case_id} dispatched to {case.get('lead_department')}")
        version = int(case["version"])
    times["loop"] = time.perf_counter_ns() - t0
    return times


async def run_drivers(
    drivers: list[dict[str, HttpConn]],
    bodies: list[bytes],
    steps: list[Step],
    stats: LoopStats,
    seconds: float,
    max_loops: int,
    record: bool,
) -> None:
    start = time.perf_counter_ns()
    deadline = start + int(seconds * 1e9)
    cursor = 0

    async def driver(conns: dict[str, HttpConn]) -> None:
        nonlocal cursor
        for _ in range(max_loops):
            if time.perf_counter_ns() >= deadline:
                return
            body = bodies[cursor % len(bodies)]
            cursor += 1
            stats.started += 1
            try:
                times = await one_loop(conns, body, steps)
            except Exception as e:
                stats.fail(e)
                continue
            stats.completed += 1
            if record:
                stats.loops_ns.append(times.pop("loop"))
                for k, v in times.items():
                    stats.steps_ns.setdefault(k, []).append(v)

    async with asyncio.timeout(seconds + 120):  # a stuck server cannot hang the bench
        await asyncio.gather(*(driver(d) for d in drivers))
    stats.elapsed_s += (time.perf_counter_ns() - start) / 1e9


_CHECK_LOOPS = """
WITH t AS (
    SELECT c.id, c.status, array_agg(e.action::text ORDER BY e.id) FILTER (WHERE e.id IS NOT NULL) AS steps
    FROM cases c LEFT JOIN case_events e ON e.case_id = c.id
    GROUP BY c.id, c.status
),
a AS (
    SELECT case_id, count(*) AS n,
           bool_and(state = 'done' AND role = 'lead' AND department_id = $2) AS ok
    FROM case_assignments GROUP BY case_id
)
SELECT count(*) AS cases,
       count(*) FILTER (WHERE t.status = 'closed') AS closed,
       count(*) FILTER (WHERE t.status = 'closed' AND t.steps = $1::text[]) AS closed_with_timeline,
       count(*) FILTER (WHERE t.status = 'closed' AND a.n = 1 AND a.ok) AS closed_with_assignment,
       min(cardinality(t.steps)) AS min_steps, max(cardinality(t.steps)) AS max_steps
FROM t LEFT JOIN a ON a.case_id = t.id
"""


async def bench_loops(
    conn: asyncpg.Connection,
    port: int,
    pid: int,
    tokens: dict[str, str],
    cgj_id: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    bodies, data = await make_bodies(conn)
    steps = loop_steps(args.whistle)
    timeline = ["reported", *(s.action for s in steps)]
    print(
        f"\npart 1: {args.drivers} loop drivers, {args.loop_seconds:g} s; {len(data['categories'])}"
        f" {LEAD} categories, {data['points']} points in grids {', '.join(data['grids'])}; "
        f"loop: report → {' → '.join(s.action for s in steps)}",
        flush=True,
    )
    drivers = [
        {a: HttpConn(port, {"Authorization": f"Bearer {tokens[a]}"}) for a in ACCOUNTS}
        for _ in range(args.drivers)
    ]
    warm, stats = LoopStats(), LoopStats()
    try:
        await run_drivers(drivers, bodies, steps, warm, 60.0, 1, record=False)
        if warm.errors:
            raise RuntimeError(f"the loop fails during warm-up: {warm.error_samples}")
        app0, db0, cl0 = proc_cpu_s(pid), await backends_cpu(conn), time.process_time()
        await run_drivers(drivers, bodies, steps, stats, args.loop_seconds, MAX_CALLS, True)
        app1, db1, cl1 = proc_cpu_s(pid), await backends_cpu(conn), time.process_time()
    finally:
        for d in drivers:
            for h in d.values():
                h.close()

    row = await conn.fetchrow(_CHECK_LOOPS, timeline, cgj_id)
    db = dict(row)
    completed = warm.completed + stats.completed
    db["loops_completed"] = completed
    db["loops_started"] = warm.started + stats.started
    db["expected_timeline"] = timeline
    db["consistent"] = (
        db["closed"] == completed
        and db["closed_with_timeline"] == db["closed"]
        and db["closed_with_assignment"] == db["closed"]
        and (stats.errors > 0 or db["cases"] == db["closed"])
    )
    n = stats.completed
    cpu = {
        "app": app1 - app0,
        "db": sum(t - db0.get(p, 0.0) for p, t in db1.items()),
        "client": cl1 - cl0,
    }
    step_names = ["report", *(s.action for s in steps)]
    return {
        "drivers": args.drivers,
        "seconds": round(stats.elapsed_s, 3),
        "loops": n,
        "loops_per_s": round(n / stats.elapsed_s, 2) if stats.elapsed_s else 0.0,
        "requests_per_s": round(n * len(step_names) / stats.elapsed_s, 1)
        if stats.elapsed_s
        else 0.0,
        "loop_ms": {"p50": pct(stats.loops_ns, 50), "p99": pct(stats.loops_ns, 99)},
        "steps_ms": {
            k: {
                "p50": pct(stats.steps_ns.get(k, []), 50),
                "p99": pct(stats.steps_ns.get(k, []), 99),
            }
            for k in step_names
        },
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "warmup_loops": warm.completed,
        "cpu_ms_per_loop": {k: round(1000 * v / n, 2) if n else None for k, v in cpu.items()},
        "cpu_busy": {k: round(v / stats.elapsed_s, 3) for k, v in cpu.items()},
        "data": data,
        "database": db,
    }


# --- part 2: a million cases ----------------------------------------------------------------------

_GEN_GRIDS = """
CREATE TEMP TABLE bench_grids ON COMMIT DROP AS
SELECT (row_number() OVER (ORDER BY g.id) - 1)::int AS k, g.id AS grid_id, g.community_id,
       s.id AS street_id, s.parent_id AS district_id, b.id AS boundary_id,
       ST_PointOnSurface(b.boundary) AS p,
       (SELECT min(po.user_id) FROM post_grids pg JOIN posts po ON po.id = pg.post_id
        WHERE pg.grid_id = g.id AND po.role = 'grid_worker') AS reporter_id
FROM grids g
JOIN areas c ON c.id = g.community_id
JOIN areas s ON s.id = c.parent_id
JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
WHERE g.deleted_at IS NULL
"""
_GEN_CATEGORIES = """
CREATE TEMP TABLE bench_cats ON COMMIT DROP AS
SELECT (row_number() OVER (PARTITION BY c.lead_department IS NOT DISTINCT FROM 'CGJ'
                           ORDER BY c.code) - 1)::int AS k,
       c.lead_department IS NOT DISTINCT FROM 'CGJ' AS cgj, c.code, c.name, c.limits,
       coalesce(d.id, (SELECT id FROM departments WHERE code = $1)) AS lead_id,
       array(SELECT x.id FROM departments x WHERE x.code = ANY(c.co_departments)
             ORDER BY x.id) AS co_ids
FROM categories c LEFT JOIN departments d ON d.code = c.lead_department
WHERE c.active
"""
# $1 cases, $2 grids, $3 CGJ share, $4 CGJ categories, $5 other categories.
_GEN_CASES = """
INSERT INTO cases (id, number, category_code, title, description, location, accuracy_m,
    occurred_at, reported_at, urgency, channel, reporter_id, grid_id, community_id, street_id,
    district_id, boundary_id, status, version, created_at, updated_at, closed_at,
    lead_department_id, first_unit, satisfaction, on_spot)
SELECT r.id, 'S' || lpad(r.id::text, 10, '0'), cat.code, cat.name || '问题反映',
       '巡查中发现' || cat.name || '，请相关部门尽快处理。',
       ST_SetSRID(ST_MakePoint(ST_X(g.p) + (r.r9 - 0.5) * 0.0004,
                               ST_Y(g.p) + (r.r10 - 0.5) * 0.0004), 4326),
       round((3 + r.r9 * 30)::numeric, 1), r.rep - interval '40 minutes' * r.r10, r.rep,
       r.urgency, r.channel, CASE WHEN r.channel = 'app' THEN g.reporter_id END,
       g.grid_id, g.community_id, g.street_id, g.district_id, g.boundary_id, r.status,
       CASE r.status WHEN 'closed' THEN 7 WHEN 'rejected' THEN 2 WHEN 'reported' THEN 1
                     WHEN 'registered' THEN 2 WHEN 'dispatched' THEN 3 WHEN 'handling' THEN 4
                     WHEN 'verified' THEN 6 ELSE 5 END,
       r.rep,
       CASE WHEN r.status IN ('closed', 'rejected') THEN cl.at ELSE r.rep + interval '1 hour' END,
       CASE WHEN r.status IN ('closed', 'rejected') THEN cl.at END,
       CASE WHEN r.status IN ('reported', 'registered', 'rejected') OR r.on_spot THEN NULL
            ELSE cat.lead_id END,
       CASE WHEN r.status <> 'reported' THEN '社区' END,
       CASE WHEN r.status = 'closed'
            THEN CASE WHEN r.r10 < 0.9 THEN 'satisfied' ELSE 'basically_satisfied' END END,
       r.on_spot
FROM (
    SELECT nextval(pg_get_serial_sequence('cases', 'id')) AS id, x.*,
           CASE WHEN x.r1 < 0.93 THEN 'closed' WHEN x.r1 < 0.95 THEN 'rejected'
                WHEN x.r3 < 0.10 THEN 'reported' WHEN x.r3 < 0.20 THEN 'registered'
                WHEN x.r3 < 0.45 THEN 'dispatched' WHEN x.r3 < 0.80 THEN 'handling'
                WHEN x.r3 < 0.85 THEN 'rework' WHEN x.r3 < 0.88 THEN 'suspended'
                WHEN x.r3 < 0.96 THEN 'feedback' ELSE 'verified' END AS status,
           now() - CASE WHEN x.r1 < 0.95 THEN interval '365 days' ELSE interval '30 days' END
                   * x.r4 AS rep,
           x.r1 < 0.93 AND x.r6 < 0.12 AS on_spot,
           CASE WHEN x.r7 < 0.80 THEN 'normal' WHEN x.r7 < 0.95 THEN 'urgent'
                ELSE 'critical' END AS urgency,
           CASE WHEN x.r8 < 0.60 THEN 'app' WHEN x.r8 < 0.85 THEN 'hotline'
                WHEN x.r8 < 0.95 THEN 'qr' ELSE 'console' END AS channel
    FROM (SELECT i, random() AS r1, random() AS r2, random() AS r3, random() AS r4,
                 random() AS r5, random() AS r6, random() AS r7, random() AS r8, random() AS r9,
                 random() AS r10, random() AS r11
          FROM generate_series(1, $1::int) i) x
) r
CROSS JOIN LATERAL (
    SELECT least(r.rep + interval '6 days' * r.r5 + interval '2 hours', now()) AS at
) cl
JOIN bench_grids g ON g.k = floor(r.r11 * $2::int)::int
JOIN bench_cats cat ON cat.cgj = (r.r2 < $3::float8)
 AND cat.k = floor(CASE WHEN r.r2 < $3::float8 THEN r.r2 / $3::float8 * $4::int
                        ELSE (r.r2 - $3::float8) / (1 - $3::float8) * $5::int END)::int
"""
# Lead and catalogue co-departments of every dispatched synthetic case ('S' numbers).
_GEN_ASSIGNMENTS = """
INSERT INTO case_assignments (case_id, district_id, department_id, role, state, dispatched_at,
    limits, sign_in_due, signed_in_at, handle_due, feedback_at)
SELECT c.id, c.district_id, d.dept, CASE WHEN d.n = 1 THEN 'lead' ELSE 'co' END, st.state,
       c.reported_at + interval '20 minutes', cat.limits,
       CASE WHEN st.state = 'dispatched' THEN now() + interval '1 day' * (random() - 0.3)
            ELSE c.reported_at + interval '2 hours' END,
       CASE WHEN st.state <> 'dispatched' THEN c.reported_at + interval '1 hour' END,
       CASE WHEN st.state IN ('handling', 'rework')
                 THEN now() + interval '5 days' * (random() - 0.25)
            WHEN st.state <> 'dispatched' THEN c.reported_at + interval '5 days' END,
       CASE WHEN st.state IN ('feedback', 'done')
                 THEN coalesce(c.closed_at, c.updated_at) - interval '1 hour' END
FROM cases c
JOIN bench_cats cat ON cat.code = c.category_code
CROSS JOIN LATERAL unnest(c.lead_department_id
                          || array_remove(cat.co_ids, c.lead_department_id)) WITH ORDINALITY
    AS d(dept, n)
CROSS JOIN LATERAL (
    SELECT CASE WHEN c.status IN ('closed', 'verified') THEN 'done' ELSE c.status END AS state
) st
WHERE c.lead_department_id IS NOT NULL AND c.number LIKE 'S%'
"""
_INDEXES = """
SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def
FROM pg_index i
WHERE i.indrelid IN ('cases'::regclass, 'case_assignments'::regclass)
  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid)
ORDER BY 1
"""
_OVERDUE_NOW = """
SELECT count(DISTINCT case_id) FROM case_assignments
WHERE department_id = $1 AND ((state = 'dispatched' AND sign_in_due < now())
                              OR (state IN ('handling', 'rework') AND handle_due < now()))
"""


async def generate(conn: asyncpg.Connection, n: int, cgj_id: int) -> dict[str, Any]:
    """n synthetic cases and their assignments in a few set-based statements (see the module
    docstring), then VACUUM (ANALYZE)."""
    superuser = bool(
        await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    )
    times: dict[str, float] = {}
    await conn.execute("SET statement_timeout = 0")  # the app's 15 s is for requests
    try:
        return await _generate(conn, n, cgj_id, superuser, times)
    finally:
        await conn.execute("RESET statement_timeout")


async def _generate(
    conn: asyncpg.Connection, n: int, cgj_id: int, superuser: bool, times: dict[str, float]
) -> dict[str, Any]:
    t0 = time.perf_counter()
    async with conn.transaction():
        await conn.execute("SET LOCAL lock_timeout = '30s'")
        if superuser:  # skips the foreign-key triggers: the rows are consistent by construction
            await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("SELECT setseed($1)", (SEED % 1000) / 1000)
        await conn.execute(_GEN_GRIDS)
        await conn.execute(_GEN_CATEGORIES, get_settings().catch_all_department)
        grids = await conn.fetchval("SELECT count(*) FROM bench_grids")
        cgj = await conn.fetchval("SELECT count(*) FROM bench_cats WHERE cgj")
        other = await conn.fetchval("SELECT count(*) FROM bench_cats WHERE NOT cgj")
        if not (grids and cgj and other):
            raise RuntimeError(f"{grids} grids, {cgj} CGJ and {other} other categories")
        indexes = await conn.fetch(_INDEXES)
        for ix in indexes:
            await conn.execute(f"DROP INDEX {ix['name']}")
        t = time.perf_counter()
        await conn.execute(_GEN_CASES, n, grids, CGJ_SHARE, cgj, other)
        times["cases_s"] = time.perf_counter() - t
        t = time.perf_counter()
        assignments = int((await conn.execute(_GEN_ASSIGNMENTS)).split()[-1])
        times["assignments_s"] = time.perf_counter() - t
        t = time.perf_counter()
        for ix in indexes:
            await conn.execute(ix["def"])
        times["indexes_s"] = time.perf_counter() - t
    times["generation_s"] = time.perf_counter() - t0
    t = time.perf_counter()
    await conn.execute("VACUUM (ANALYZE) cases, case_assignments")
    times["vacuum_analyze_s"] = time.perf_counter() - t
    status = {
        r["status"]: r["n"]
        for r in await conn.fetch(
            "SELECT status, count(*) AS n FROM cases WHERE number LIKE 'S%' "
            "GROUP BY 1 ORDER BY 2 DESC"
        )
    }
    sizes = await conn.fetchrow(
        "SELECT pg_total_relation_size('cases') AS cases,"
        " pg_total_relation_size('case_assignments') AS case_assignments"
    )
    return {
        "cases": n,
        "assignments": assignments,
        "status": status,
        "open": sum(v for k, v in status.items() if k not in ("closed", "rejected")),
        "cgj_overdue_cases": await conn.fetchval(_OVERDUE_NOW, cgj_id),
        "dispatched_cases": status.get("dispatched", 0),
        "grids": grids,
        "indexes_rebuilt": [ix["name"] for ix in indexes],
        "fk_triggers_skipped": superuser,
        "table_mb": {k: round(v / 2**20) for k, v in sizes.items()},
        **{k: round(v, 1) for k, v in times.items()},
    }


# --- part 2: the queue query ----------------------------------------------------------------------

ROUTER_FILTERS = (
    "status",
    "category",
    "grid_id",
    "community_id",
    "street_id",
    "district_id",
    "reporter_id",
    "since",
    "until",
    "unlocated",
    "department_id",
    "overdue",
    "bbox",
    "q",
)


@dataclass
class Queue:
    name: str
    user: str
    path: str
    filters: dict[str, Any]
    sql: str = ""
    params: tuple[Any, ...] = ()


def queues(cgj_id: int) -> list[Queue]:
    def filters(**given: Any) -> dict[str, Any]:
        """The dict app.cases.router.list_cases hands to the service."""
        return {k: given.get(k) for k in ROUTER_FILTERS}

    return [
        Queue(
            "dept",
            "dept",
            f"{CASES}?department_id={cgj_id}&overdue=true&limit={QUEUE_LIMIT}",
            filters(department_id=cgj_id, overdue=True),
        ),
        Queue(
            "centre",
            "centre",
            f"{CASES}?status=dispatched&limit={QUEUE_LIMIT}",
            filters(status=["dispatched"]),
        ),
    ]


async def capture_sql(url: str, tokens: dict[str, str], qs: list[Queue]) -> None:
    """Run app.cases.service.list_cases here as each queue's caller (the principal its token
    names) and keep the statement it sends and its parameters ($1, $2, ... for asyncpg)."""
    engine = create_async_engine(
        async_url(url),
        connect_args={"server_settings": {"timezone": "UTC", "application_name": BENCH_APP}},
    )
    seen: list[tuple[str, Any]] = []

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        seen.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", before)
    try:
        for q in qs:
            uid, sid = decode_access_token(tokens[q.user])
            async with AsyncSession(engine) as session:
                who = await load_principal(session, uid, sid)
            seen.clear()
            async with engine.connect() as conn:
                await case_service.list_cases(
                    conn, who, filters=q.filters, cursor=None, limit=page_limit(QUEUE_LIMIT)
                )
            found = [(s, p) for s, p in seen if "ORDER BY c.reported_at DESC" in s]
            if not found:
                raise RuntimeError(f"no list statement captured for {q.name}: {seen}")
            q.sql, q.params = found[-1][0], tuple(found[-1][1] or ())
    finally:
        await engine.dispose()


async def check_agreement(h: HttpConn, stmt: PreparedStatement, q: Queue) -> int:
    """The endpoint must list the ids the raw statement returns (twice: now() moves)."""
    api: list[int] = []
    raw: list[int] = []
    for _ in range(2):
        status, body = await h.fetch(q.path)
        if status != 200:
            raise RuntimeError(f"{q.path} as {q.user}: HTTP {status}: {body[:300]!r}")
        api = [int(x["id"]) for x in orjson.loads(body)["items"]]
        raw = [int(r["id"]) for r in await stmt.fetch(*q.params)][:QUEUE_LIMIT]
        if api == raw:
            return len(api)
    raise RuntimeError(f"{q.name}: the endpoint lists {api[:5]}…, the raw statement {raw[:5]}…")


def walk(node: dict[str, Any], depth: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
    yield depth, node
    for child in node.get("Plans", []):
        yield from walk(child, depth + 1)


def slowest_nodes(plan: dict[str, Any], k: int = 5) -> list[str]:
    """The k plan nodes with the most exclusive time: 'Index Scan on cases (ix): 812.4 ms'."""
    nodes: list[tuple[float, str]] = []

    def visit(node: dict[str, Any]) -> float:
        total = node.get("Actual Total Time", 0.0) * node.get("Actual Loops", 1)
        children = sum(visit(c) for c in node.get("Plans", []))
        name = node["Node Type"]
        if "Relation Name" in node:
            name += f" on {node['Relation Name']}"
        if "Index Name" in node:
            name += f" ({node['Index Name']})"
        if "Subplan Name" in node:
            name += f" [{node['Subplan Name']}]"
        nodes.append((max(total - children, 0.0), name))
        return total

    visit(plan)
    nodes.sort(reverse=True)
    return [f"{name}: {ms:.1f} ms" for ms, name in nodes[:k]]


def findings(explained: dict[str, Any], jit_above_cost: float) -> list[str]:
    """What the plan says the time goes to: how cases is read, the sort, the subplans, JIT."""
    out = []
    root = explained["Plan"]
    nodes = list(walk(root))
    for _, n in nodes:
        if n.get("Relation Name") != "cases":
            continue
        loops = n.get("Actual Loops", 1)
        rows = n.get("Actual Rows", 0) * loops
        removed = n.get("Rows Removed by Filter", 0) * loops
        how = n["Node Type"] + (f" using {n['Index Name']}" if "Index Name" in n else "")
        out.append(
            f"cases read by {how}: {rows + removed:,.0f} rows examined, {removed:,.0f} removed by "
            f"the filter, {rows:,.0f} kept ({n.get('Actual Total Time', 0.0):.0f} ms)"
        )
    for _, n in nodes:
        if n["Node Type"] == "Sort" and any("reported_at" in k for k in n.get("Sort Key", [])):
            child = n.get("Plans", [{}])[0]
            out.append(
                f"then a {n.get('Sort Method', 'sort')} of {child.get('Actual Rows', 0):,} "
                f"matches for ORDER BY reported_at DESC, id DESC LIMIT: no index serves that "
                f"order, so every match is found before the first {QUEUE_LIMIT} come out"
            )
            break
    filters = " ".join(str(n.get("Filter", "")) for _, n in nodes)
    for _, n in nodes:
        name = n.get("Subplan Name")
        if not name or n.get("Parent Relationship") != "SubPlan":
            continue
        rels = sorted({c.get("Relation Name", "") for _, c in walk(n)} - {""})
        hashed = f"hashed {name}" in filters
        rows = n.get("Actual Rows", 0) * n.get("Actual Loops", 1)
        out.append(
            f"{name} on {', '.join(rels)}: "
            + (
                f"hashed: all {rows:,} qualifying rows read up front"
                if hashed
                else f"probed {n.get('Actual Loops', 1):,} times, {rows:,} rows"
            )
            + f" ({n.get('Actual Total Time', 0.0) * n.get('Actual Loops', 1):.0f} ms)"
        )
    jit = explained.get("JIT")
    if jit:
        total = jit.get("Timing", {}).get("Total", 0.0)
        if isinstance(total, dict):  # PostgreSQL 17 splits it
            total = total.get("Total", 0.0)
        out.append(
            f"JIT: {jit.get('Functions', 0)} functions compiled in {total:.0f} ms of "
            f"{explained.get('Execution Time', 0.0):.0f} ms: the estimated cost "
            f"{root.get('Total Cost', 0.0):,.0f} is over jit_above_cost ({jit_above_cost:,.0f})"
        )
    return out


def plan_excerpt(lines: list[str], head: int = 6, width: int = 180) -> list[str]:
    """The plan's first lines, then every scan of cases/case_assignments with its filter lines,
    then the timing lines; indentation halved (the plan is deep)."""
    keep = set(range(min(head, len(lines))))
    for i, line in enumerate(lines):
        s = line.strip().removeprefix("->  ")
        if ("on cases " in s or "on case_assignments " in s) and "Scan" in s:
            keep.add(i)
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("->"):
                if lines[j].strip().startswith(("Filter", "Rows Removed", "Index Cond")):
                    keep.add(j)
                j += 1
        if s.startswith(("Planning Time", "Execution Time", "JIT", "Timing:", "Functions:")):
            keep.add(i)
    out = []
    last = -1
    for i in sorted(keep):
        if i != last + 1:
            out.append("…")
        text = lines[i].lstrip()
        line = " " * ((len(lines[i]) - len(text)) // 2) + text
        out.append(line if len(line) <= width else line[: width - 1] + "…")
        last = i
    return out


IDX_REPORTED = "CREATE INDEX bench_whatif_cases_reported ON cases (reported_at DESC, id DESC)"
_OVERDUE_EQ = re.compile(r"\((\$\d+) = EXISTS \(SELECT 1 FROM case_assignments oa ")


def plain_exists(sql: str) -> str | None:
    """The overdue filter as `$n AND EXISTS (...)` (valid for overdue=true): the planner then
    flattens it into a semi-join it can probe per case, instead of a hashed SubPlan."""
    new, k = _OVERDUE_EQ.subn(r"(\1 AND EXISTS (SELECT 1 FROM case_assignments oa ", sql)
    return new if k == 1 else None


JIT_OFF = "SET LOCAL jit = off"
GENERIC = "SET LOCAL plan_cache_mode = force_generic_plan"
WHAT_IFS: list[tuple[str, list[str], bool, int]] = [
    # label, setup statements, overdue as plain EXISTS, runs; custom plans unless GENERIC
    ("as is", [], False, 2),
    ("jit = off", [JIT_OFF], False, WHAT_IF_RUNS),
    ("index cases (reported_at DESC, id DESC)", [IDX_REPORTED], False, WHAT_IF_RUNS),
    ("index + overdue as plain EXISTS (SQL change)", [IDX_REPORTED], True, WHAT_IF_RUNS),
    ("  the same, generic plan", [IDX_REPORTED, GENERIC], True, WHAT_IF_RUNS),
    ("  the same, generic plan, jit = off", [IDX_REPORTED, GENERIC, JIT_OFF], True, WHAT_IF_RUNS),
    ("overdue as plain EXISTS without the index", [], True, 1),
]


async def what_ifs(conn: asyncpg.Connection, qs: list[Queue]) -> list[dict[str, Any]]:
    """Each what-if in a transaction rolled back, on a statement prepared afresh and run with a
    custom plan (what EXPLAIN shows) unless it asks for the generic one (what a prepared statement
    may switch to after five runs): the median ms per queue, and whether it lists the same ids
    as the statement as is."""
    base: dict[str, list[int]] = {}
    out = []
    for label, setup, rewrite, runs in WHAT_IFS:
        res: dict[str, Any] = {"what": label, "setup": setup, "rewrite": rewrite, "runs": runs}
        tr = conn.transaction()
        await tr.start()
        try:
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            t = time.perf_counter()
            for sql in setup:
                await conn.execute(sql)
            res["setup_s"] = round(time.perf_counter() - t, 2)
            for q in qs:
                stmt = await conn.prepare((plain_exists(q.sql) if rewrite else None) or q.sql)
                ms = []
                ids: list[int] = []
                for _ in range(runs):
                    t = time.perf_counter()
                    rows = await stmt.fetch(*q.params)
                    ms.append((time.perf_counter() - t) * 1000)
                    ids = [int(r["id"]) for r in rows]
                base.setdefault(q.name, ids)
                res[q.name] = {
                    "ms": round(statistics.median(ms), 2),
                    "same_ids": ids == base[q.name],
                }
        finally:
            await tr.rollback()
        out.append(res)
    return out


SUGGESTIONS = [
    "CREATE INDEX ix_cases_reported ON cases (reported_at DESC, id DESC);  -- the lists' keyset "
    "order (ORDER BY reported_at DESC, id DESC LIMIT n): walk newest first and stop after n "
    "matches instead of finding and sorting every match",
    "then, and only together with that index (see the what-ifs), app.cases.service.OVERDUE_SQL "
    "as `EXISTS (...)` for overdue=true and `NOT EXISTS (...)` for false instead of "
    "`:overdue = EXISTS (...)`: the comparison hides the semi-join, so the planner first reads "
    "every running assignment of every department into a hashed SubPlan",
    "jit = off for the app's connections (server_settings in app.db.make_engine) or the "
    "database: JIT compiles a plan with a high estimated cost for hundreds of ms before it runs, "
    "and a generic plan (prepared statements, as the app's are, may switch to one after five "
    "runs) keeps a high estimate even with the index (see the generic-plan what-ifs)",
]


async def bench_queue(
    url: str,
    conn: asyncpg.Connection,
    port: int,
    tokens: dict[str, str],
    cgj_id: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    print(
        f"\npart 2: generating {args.cases:,} cases"
        + (" (--quick: 200,000, not 1,000,000)" if args.quick and args.cases == 200_000 else ""),
        flush=True,
    )
    gen = await generate(conn, args.cases, cgj_id)
    print(
        f"  {gen['cases']:,} cases ({gen['open']:,} open, {gen['dispatched_cases']:,} dispatched)"
        f" and {gen['assignments']:,} assignments in {gen['generation_s']} s (cases "
        f"{gen['cases_s']} s, assignments {gen['assignments_s']} s, {len(gen['indexes_rebuilt'])}"
        f" indexes rebuilt {gen['indexes_s']} s; FK triggers "
        f"{'skipped' if gen['fk_triggers_skipped'] else 'run'}), VACUUM (ANALYZE) "
        f"{gen['vacuum_analyze_s']} s; {gen['table_mb']['cases']} MB cases, "
        f"{gen['table_mb']['case_assignments']} MB case_assignments; {gen['cgj_overdue_cases']:,}"
        f" CGJ cases overdue",
        flush=True,
    )

    qs = queues(cgj_id)
    await capture_sql(url, tokens, qs)
    raw = await connect(url)
    # Custom plans, as EXPLAIN shows (see the module docstring; generic plans: the what-ifs).
    await raw.execute("SET plan_cache_mode = force_custom_plan")
    conns = {q.name: HttpConn(port, {"Authorization": f"Bearer {tokens[q.user]}"}) for q in qs}
    try:
        stmts = {q.name: await raw.prepare(q.sql) for q in qs}
        listed = {q.name: await check_agreement(conns[q.name], stmts[q.name], q) for q in qs}

        def api_call(q: Queue) -> Call:
            h = conns[q.name]

            async def call(i: int) -> None:
                status, body = await h.fetch(q.path)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:200]!r}")

            return call

        def sql_call(q: Queue) -> Call:
            stmt = stmts[q.name]

            async def call(i: int) -> None:
                await stmt.fetch(*q.params)

            return call

        calls: dict[str, Call] = {}
        for q in qs:
            calls[f"{q.name}_api"] = api_call(q)
            calls[f"{q.name}_sql"] = sql_call(q)
        variants = list(calls)
        for v in variants:  # warm-up: plans, caches, the server's prepared statements
            await calls[v](0)
        tallies = {v: Tally() for v in variants}
        slice_s = args.queue_seconds / len(variants) / args.rounds
        for r in range(args.rounds):
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for v in order:
                await drive(tallies[v], 1, [calls[v]], slice_s)

        jit_cost = float(await raw.fetchval("SELECT current_setting('jit_above_cost')"))
        plans: dict[str, Any] = {}
        for q in qs:
            lines = [
                r[0] for r in await raw.fetch("EXPLAIN (ANALYZE, BUFFERS) " + q.sql, *q.params)
            ]
            js = json.loads(
                await raw.fetchval("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + q.sql, *q.params)
            )[0]
            plans[q.name] = {
                "execution_ms": round(js.get("Execution Time", 0.0), 2),
                "planning_ms": round(js.get("Planning Time", 0.0), 2),
                "findings": findings(js, jit_cost),
                "slowest_nodes": slowest_nodes(js["Plan"]),
                "excerpt": plan_excerpt(lines),
                "text": lines,
            }
    finally:
        for h in conns.values():
            h.close()

    results: dict[str, Any] = {}
    for v, t in tallies.items():
        res = t.result()
        res.pop("inside_share", None)
        results[v] = res
    ratios = {}
    for q in qs:
        a, s = results[f"{q.name}_api"], results[f"{q.name}_sql"]
        ratios[q.name] = {
            k: round(a[f"{k}_ms"] / s[f"{k}_ms"], 2) if a[f"{k}_ms"] and s[f"{k}_ms"] else None
            for k in ("p50", "p99")
        }
    slow = [q.name for q in qs if (results[f"{q.name}_sql"]["p50_ms"] or 0) > SLOW_P50_MS]
    whatif: list[dict[str, Any]] = []
    if args.what_if == "always" or (args.what_if == "auto" and slow):
        try:
            whatif = await what_ifs(raw, qs)
        finally:
            await raw.close()
    else:
        await raw.close()
    return {
        "generated": gen,
        "queues": {
            q.name: {"user": q.user, "path": q.path, "listed": listed[q.name], "sql": q.sql}
            | {"params": [str(p) for p in q.params]}
            for q in qs
        },
        "variants": results,
        "api_vs_sql": ratios,
        "plans": plans,
        "slow": slow,
        "what_if": whatif,
        "suggestions": SUGGESTIONS if slow else [],
    }


# --- report ---------------------------------------------------------------------------------------


def print_loops(lp: dict[str, Any]) -> None:
    print(
        f"\npart 1: full loops, {lp['drivers']} drivers, one uvicorn worker: "
        f"{lp['loops_per_s']:.1f} loops/s (closed cases per second; {lp['requests_per_s']:.0f} "
        f"req/s), {lp['loops']:,} loops in {lp['seconds']:.1f} s, {lp['errors']} errors"
    )
    print(f"  {'step':<12}{'p50 ms':>9}{'p99 ms':>9}")
    print(f"  {'whole loop':<12}{fmt_ms(lp['loop_ms']['p50']):>9}{fmt_ms(lp['loop_ms']['p99']):>9}")
    for k, v in lp["steps_ms"].items():
        print(f"  {k:<12}{fmt_ms(v['p50']):>9}{fmt_ms(v['p99']):>9}")
    c, b = lp["cpu_ms_per_loop"], lp["cpu_busy"]
    print(
        f"  CPU per loop: app {fmt_ms(c['app'])} ms + db {fmt_ms(c['db'])} ms + client "
        f"{fmt_ms(c['client'])} ms (busy CPUs {b['app']:.2f} + {b['db']:.2f} + {b['client']:.2f})"
    )
    for s in lp["error_samples"]:
        print(f"  error: {s}")
    d = lp["database"]
    print(
        f"  database: {d['cases']:,} cases, {d['closed']:,} closed for {d['loops_completed']:,} "
        f"loops completed (warm-up included), {d['closed_with_timeline']:,} with exactly the "
        f"{len(d['expected_timeline'])} timeline steps, {d['closed_with_assignment']:,} with one "
        f"{LEAD} assignment done: {'consistent' if d['consistent'] else 'MISMATCH'}"
    )


def print_queue(q: dict[str, Any]) -> None:
    g = q["generated"]
    print(
        f"\npart 2: the dispatch console's queue at {g['cases']:,} cases "
        f"({g['assignments']:,} assignments), one request at a time, interleaved"
    )
    print(f"  {'variant':<14}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>8}{'requests':>10}{'errors':>8}")
    for v, r in q["variants"].items():
        print(
            f"  {v:<14}{fmt_ms(r['p50_ms']):>9}{fmt_ms(r['p99_ms']):>9}{r['rps']:>8.1f}"
            f"{r['requests']:>10,}{r['errors']:>8}"
        )
        for s in r["error_samples"]:
            print(f"    error: {s}")
    for name, r in q["api_vs_sql"].items():
        info = q["queues"][name]
        print(
            f"  {name}: endpoint / raw SQL p50 {r['p50']}x, p99 {r['p99']}x "
            f"({info['listed']} cases listed; GET {info['path']} as {info['user']})"
        )
    for name, p in q["plans"].items():
        print(
            f"\n  EXPLAIN (ANALYZE, BUFFERS) {name}: execution {p['execution_ms']} ms, planning "
            f"{p['planning_ms']} ms"
        )
        for line in p["excerpt"]:
            print(f"    {line}")
        print("  findings:")
        for f in p["findings"]:
            print(f"    - {f}")
        print(f"  slowest nodes: {'; '.join(p['slowest_nodes'][:4])}")
    if q["slow"]:
        print(f"\n  slow (raw p50 > {SLOW_P50_MS:g} ms): {', '.join(q['slow'])}")
    if q["what_if"]:
        names = list(q["queues"])
        print(
            "  what-ifs on the raw SQL, each in a transaction rolled back (median ms; ≠: other ids"
            " than as is):"
        )
        print(f"    {'':<48}{'runs':>5}" + "".join(f"{n:>12}" for n in names))
        for w in q["what_if"]:
            cells = "".join(
                f"{fmt_ms(w[n]['ms']) + ('' if w[n]['same_ids'] else ' ≠'):>12}" for n in names
            )
            print(f"    {w['what']:<48}{w['runs']:>5}{cells}")
    if q["suggestions"]:
        print("  suggested (not applied: app/ and migrations/ are untouched):")
        for s in q["suggestions"]:
            print(f"    - {s}")


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument(
        "--quick", action="store_true", help="10 s of loops, 200,000 cases, 16 s of queue timing"
    )
    p.add_argument("--drivers", type=int, default=8, help="concurrent loop drivers (8)")
    p.add_argument("--loop-seconds", type=float, help="measured seconds of loops (20)")
    p.add_argument("--cases", type=int, help="synthetic cases (1,000,000)")
    p.add_argument("--queue-seconds", type=float, help="seconds of queue timing, all variants (30)")
    p.add_argument("--rounds", type=int, help="interleaved slices per queue variant (6)")
    p.add_argument("--whistle", action="store_true", help="the community whistles after register")
    p.add_argument(
        "--what-if",
        choices=("auto", "always", "never"),
        default="auto",
        help="run the rolled-back what-ifs: when a raw p50 is over 50 ms (auto), always, never",
    )
    a = p.parse_args(argv)
    a.loop_seconds = a.loop_seconds or (10.0 if a.quick else 20.0)
    a.cases = a.cases or (200_000 if a.quick else 1_000_000)
    a.queue_seconds = a.queue_seconds or (16.0 if a.quick else 30.0)
    a.rounds = a.rounds or (4 if a.quick else 6)
    if not (1 <= a.drivers <= 64 and 0 < a.loop_seconds <= 300):
        p.error("--drivers in [1, 64], --loop-seconds in (0, 300]")
    if not (1_000 <= a.cases <= 5_000_000):
        p.error("--cases in [1000, 5000000]")
    if not (0 < a.queue_seconds <= 600 and 1 <= a.rounds <= 50):
        p.error("--queue-seconds in (0, 600], --rounds in [1, 50]")
    return a


async def amain(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await connect(url)
    try:
        found = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM grids) AS grids, (SELECT count(*) FROM cases) AS cases,"
            " (SELECT count(*) FROM users WHERE NOT is_demo) AS accounts"
        )
        if any(found.values()):
            raise SystemExit(
                f"bench_loop: the database already holds {found['grids']} grids, "
                f"{found['cases']} cases and {found['accounts']} non-demo accounts; "
                "BENCH_DATABASE_URL must be an empty throwaway database (it gets truncated)"
            )
        versions = await conn.fetchrow(
            "SELECT current_setting('server_version') AS pg, postgis_lib_version() AS postgis,"
            " current_setting('shared_buffers') AS shared_buffers, current_setting('jit') AS jit,"
            " current_setting('work_mem') AS work_mem"
        )
        try:
            await reset(conn)  # e.g. demo accounts bench_lookup leaves without their posts
            t0 = time.perf_counter()
            loaded = await load_demo_district(url)
            await conn.execute("ANALYZE")
            print(
                f"demo district loaded in {time.perf_counter() - t0:.1f} s: {loaded.grids} grids,"
                f" {loaded.categories} categories, {loaded.accounts} demo accounts",
                flush=True,
            )
            cgj_id = int(await conn.fetchval("SELECT id FROM departments WHERE code = $1", LEAD))
            log_path = OUT / "loop-uvicorn.log"
            env: dict[str, str | None] = {
                "WANGGE_SCHEDULER_ENABLED": "false",
                "WANGGE_AUTH_CACHE_SECONDS": None,
            }
            proc, port = start_server(url, log_path, env=env)
            client = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{port}", timeout=60, trust_env=False
            )
            try:
                await wait_ready(proc, client, log_path)
                pw = get_settings().demo_password
                tokens = {a: await login(client, a, pw) for a in ACCOUNTS}
                loops = await bench_loops(conn, port, proc.pid, tokens, cgj_id, args)
                print_loops(loops)
                queue = await bench_queue(url, conn, port, tokens, cgj_id, args)
                print_queue(queue)
                if proc.poll() is not None:
                    raise RuntimeError(f"uvicorn exited:\n{log_path.read_text()[-2000:]}")
            finally:
                await client.aclose()
                stop_server(proc)
        finally:
            await reset(conn)
    finally:
        await conn.close()
    result = {"loops": loops, "queue": queue}
    return {
        "benchmark": "loop",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": versions["pg"],
            "postgis": versions["postgis"],
            "shared_buffers": versions["shared_buffers"],
            "work_mem": versions["work_mem"],
            "jit": versions["jit"],
        },
        "settings": {
            "quick": args.quick,
            "drivers": args.drivers,
            "loop_seconds": args.loop_seconds,
            "whistle": args.whistle,
            "cases": args.cases,
            "queue_seconds": args.queue_seconds,
            "rounds": args.rounds,
            "seed": SEED,
            "scheduler": "off",
        },
        **result,
    }


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    report = run_bench(
        "loop",
        (
            f"loop benchmark: {args.drivers} loop drivers for {args.loop_seconds:g} s, then the queue "
            f"at {args.cases:,} cases for {args.queue_seconds:g} s; {os.cpu_count()} CPUs"
        ),
        lambda url: amain(url, args),
    )
    errors = report["loops"]["errors"] + sum(
        v["errors"] for v in report["queue"]["variants"].values()
    )
    if errors or not report["loops"]["database"]["consistent"]:
        raise SystemExit(
            f"bench_loop: {errors} errors; database consistent: "
            f"{report['loops']['database']['consistent']}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
