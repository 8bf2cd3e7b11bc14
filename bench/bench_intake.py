"""Benchmark case intake from phones against the framework's ceiling on this machine.

One uvicorn server (1 worker, no access log) on the demo district, signed in as `worker` (a grid
worker, bearer token from POST /api/v1/auth/token), driven in turn by the same N (32) concurrent
keep-alive HTTP/1.1 clients:

* ``healthz``  GET /healthz: the app's trivial JSON endpoint, the ceiling of uvicorn + FastAPI +
  this client here;
* ``intake``   POST /api/v1/cases with a fresh Idempotency-Key (uuid4) per request: two
  statements on one pooled connection, each its own transaction: the intake statement (the key's
  claim, grid, places, off-patch distance, the case, its first timeline step and event,
  duplicate suggestions, the case read back), then the stored response.
  Realistic bodies: the categories of GET /api/v1/categories in turn, Chinese titles and
  descriptions from the category's name and keywords, seeded random points inside the grids'
  live boundaries (ST_GeneratePoints, and ST_PointOnSurface of each), GPS accuracy, urgency,
  sometimes an address, an occurred_at or a resident (name, phone);
* ``replay``   the same key and body again for cases made before (the idempotent replay: the
  statement's claim finds the key taken, inserts nothing, and the stored response comes back,
  byte for byte, no new case).

The server's database pool is sized to twice the concurrency (WANGGE_DB_POOL_SIZE, --pool-size),
as before (an intake request used to hold two pooled connections; it now holds one, so the
app's default pool, 10 + 10 overflow, also serves 32 clients: ``--pool-size 0``).

The machine is shared and noisy, so the variants run in short slices, interleaved round-robin with
rotating order. Reported per variant: req/s, p50/p99 latency, errors (any non-2xx, or a replay
answering other bytes), and the server's CPU per request; then intake's throughput as a share of
healthz's and its p99 against the targets (at least 0.40 of the ceiling, p99 under 50 ms), as
PASS/MISS: a measurement, never a failure of the script. Also: the server's memory (VmRSS, VmHWM
from /proc) when ready, after warm-up and after the load; how long a fresh case's event took
from its 201 to a listener's NOTIFY (the relay, ``bench/relay_lag.py``); the database CPU of
each part of an intake, quiet (``bench/intake_parts.py``); the intake statement
alone under EXPLAIN ANALYZE (rolled back); and the database afterwards must hold exactly one
case, one timeline step and one stored key per 201 to a fresh key (the script exits 1
otherwise, or on errors).

Needs BENCH_DATABASE_URL: an empty, throwaway database (the bench migrates it, loads the demo
district with its demo accounts, and when done truncates every table but the append-only audit
log, which keeps its login rows). It refuses a database holding grids, cases or non-demo accounts.
``scripts/bench.sh`` (``make bench``) provides one.
Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_intake.py [--quick]``.
Results also go to bench/out/intake.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cluster_cpu import cluster_cpu_s, postmasters
from common import (
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
    proc_memory_kb,
    ratios,
    reset,
    run_bench,
    start_server,
    stop_server,
    wait_ready,
)
from intake_parts import intake_parts, print_parts
from relay_lag import Lag

from app.cases import intake
from app.cases.schemas import CaseCreate
from app.config import get_settings
from app.schemas import SHANGHAI

SEED = 20261124
USERNAME = "worker"
CASES = "/api/v1/cases"
POINTS_PER_GRID = 12  # seeded random points in each live boundary, besides its PointOnSurface
N_BODIES = 4096
REPLAY_POOL = 1024  # keys (with their body and first answer) the replay variant cycles through
TARGET_RATIO = 0.40
TARGET_P99_MS = 50.0
TARGET_DB_MS = 1.0  # database CPU per intake (issue 18)
TARGET_APP_MS = 1.5  # app CPU per intake (issue 18)
PARTS_CALLS = 300  # quiet calls of each part (bench/intake_parts.py)

VARIANTS = ("healthz", "intake", "replay")
LABELS = {
    "healthz": "(a) GET /healthz (ceiling)",
    "intake": "(b) POST /cases, fresh key",
    "replay": "(c) POST /cases, replayed key",
}


# --- data ---------------------------------------------------------------------------------------


_POINTS = """
WITH live AS (
    SELECT g.code, a.name AS community, b.boundary
    FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id JOIN areas a ON a.id = g.community_id
    WHERE b.valid_to IS NULL
),
pts AS (
    SELECT code, community, boundary, ST_PointOnSurface(boundary) AS p FROM live
    UNION ALL
    SELECT code, community, boundary, (ST_Dump(ST_GeneratePoints(boundary, $1, $2))).geom
    FROM live
),
r AS (
    SELECT code, community, boundary,
           round(ST_X(p)::numeric, 7)::float8 AS lon, round(ST_Y(p)::numeric, 7)::float8 AS lat
    FROM pts
)
SELECT code, community, lon, lat FROM r
WHERE ST_Intersects(boundary, ST_SetSRID(ST_MakePoint(lon, lat), 4326))
ORDER BY code, lon, lat
"""


@dataclass
class Point:
    grid: str
    community: str
    lon: float
    lat: float


async def sample_points(conn: asyncpg.Connection) -> list[Point]:
    """Seeded points inside the live grid boundaries (still inside once rounded to 1e-7°)."""
    rows = await conn.fetch(_POINTS, POINTS_PER_GRID, SEED)
    return [Point(r["code"], r["community"], r["lon"], r["lat"]) for r in rows]


SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
TITLES = ("{kw}问题反映", "{community}附近{kw}", "发现{name}", "{kw}，请尽快处理", "{name}")
DESCRIPTIONS = (
    "巡查中发现{community}{n}号楼附近{kw}，已拍照留存，请相关部门尽快处理。",
    "居民反映{community}一带{name}，影响出行和日常生活，希望尽快解决。",
    "{community}{n}栋楼下{kw}，持续约{h}小时，现场已做提醒，需专业人员处置。",
    "网格走访时群众反映：{kw}。位置在{community}{n}号楼东侧，请核实。",
    "",
)


@dataclass
class Bodies:
    """N_BODIES request bodies (JSON bytes) and what they hold."""

    raw: list[bytes] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)  # for EXPLAIN ANALYZE
    stats: dict[str, Any] = field(default_factory=dict)


def make_bodies(points: list[Point], categories: list[dict[str, Any]], seed: int) -> Bodies:
    """Seeded, realistic reports: categories in turn, a random point, optional fields."""
    rng = np.random.default_rng(seed)
    now = datetime.now(SHANGHAI).replace(microsecond=0)
    out = Bodies()
    with_resident = with_phone = with_address = with_occurred = 0
    urgencies = {"normal": 0, "urgent": 0, "critical": 0}
    order = rng.permutation(len(points))
    for i in range(N_BODIES):
        pt = points[int(order[i % len(points)])]
        cat = categories[i % len(categories)]
        keywords = cat.get("keywords") or [cat["name"]]
        words = {
            "kw": keywords[int(rng.integers(len(keywords)))],
            "name": cat["name"],
            "community": pt.community,
            "n": int(rng.integers(1, 40)),
            "h": int(rng.integers(1, 12)),
        }
        urgency = str(rng.choice(["normal", "urgent", "critical"], p=[0.8, 0.15, 0.05]))
        urgencies[urgency] += 1
        body: dict[str, Any] = {
            "category": cat["code"],
            "title": TITLES[int(rng.integers(len(TITLES)))].format(**words)[:200],
            "description": DESCRIPTIONS[int(rng.integers(len(DESCRIPTIONS)))].format(**words),
            "location": {
                "lon": pt.lon,
                "lat": pt.lat,
                "crs": "wgs84",
                "accuracy_m": round(float(rng.uniform(3, 40)), 1),
            },
            "urgency": urgency,
        }
        if rng.random() < 0.5:
            body["address"] = f"{pt.community}{words['n']}号楼"
            with_address += 1
        if rng.random() < 0.3:
            occurred = now - timedelta(minutes=int(rng.integers(5, 600)))
            body["occurred_at"] = occurred.isoformat()
            with_occurred += 1
        if rng.random() < 0.35:
            surname = SURNAMES[int(rng.integers(len(SURNAMES)))]
            resident: dict[str, str] = {
                "name": surname + ("先生" if rng.random() < 0.5 else "女士")
            }
            if rng.random() < 0.8:
                resident["phone"] = f"1{int(rng.integers(3, 10))}{int(rng.integers(10**9)):09d}"
                with_phone += 1
            body["resident"] = resident
            with_resident += 1
        out.raw.append(json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode())
        out.params.append(body)
    out.stats = {
        "bodies": N_BODIES,
        "points": len(points),
        "grids": len({p.grid for p in points}),
        "categories": len(categories),
        "bytes_mean": round(sum(map(len, out.raw)) / N_BODIES),
        "with_address": round(with_address / N_BODIES, 3),
        "with_occurred_at": round(with_occurred / N_BODIES, 3),
        "with_resident": round(with_resident / N_BODIES, 3),
        "with_resident_phone": round(with_phone / N_BODIES, 3),
        "urgency": {k: round(v / N_BODIES, 3) for k, v in urgencies.items()},
    }
    return out


async def explain_intake(
    conn: asyncpg.Connection, bodies: Bodies, reporter_id: int, n: int
) -> dict[str, Any]:
    """The intake statement alone under EXPLAIN ANALYZE for n bodies, each rolled back (on the
    table as the load left it); the slowest nodes of the median run."""
    runs = []
    for i in range(n):
        # As app.cases.intake.report builds it (no Idempotency-Key; this process has no lookup
        # index, so the duplicate search takes the statement's own district).
        body = CaseCreate.model_validate(bodies.params[(i * 37) % len(bodies.params)])
        stmt, args = intake._params(body, reporter_id, "app", None)
        tr = conn.transaction()
        await tr.start()
        try:
            raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + stmt.sql, *args)
        finally:
            await tr.rollback()
        runs.append(json.loads(raw)[0])
    runs.sort(key=lambda r: r["Execution Time"])
    mid = runs[len(runs) // 2]
    ex = [r["Execution Time"] for r in runs]
    return {
        "runs": n,
        "execution_ms": {
            "min": round(ex[0], 3),
            "median": round(ex[len(ex) // 2], 3),
            "max": round(ex[-1], 3),
        },
        "planning_ms_median": round(sorted(r["Planning Time"] for r in runs)[n // 2], 3),
        "slowest_nodes": slowest_nodes(mid["Plan"]),
    }


def slowest_nodes(plan: dict[str, Any], k: int = 6) -> list[str]:
    """The k plan nodes with the most exclusive time: 'CTE Scan on dups: 0.42 ms'."""
    nodes: list[tuple[float, str]] = []

    def walk(node: dict[str, Any]) -> float:
        total = node.get("Actual Total Time", 0.0) * node.get("Actual Loops", 1)
        children = sum(walk(c) for c in node.get("Plans", []))
        name = node["Node Type"]
        if "Relation Name" in node:
            name += f" on {node['Relation Name']}"
        if "Index Name" in node:
            name += f" ({node['Index Name']})"
        if "CTE Name" in node:
            name += f" {node['CTE Name']}"
        if "Subplan Name" in node:
            name += f" [{node['Subplan Name']}]"
        nodes.append((max(total - children, 0.0), name))
        return total

    walk(plan)
    nodes.sort(reverse=True)
    return [f"{name}: {ms:.3f} ms" for ms, name in nodes[:k]]


_BACKENDS = """
SELECT pid FROM pg_stat_activity
WHERE datname = current_database() AND application_name = 'wangge' AND pid <> pg_backend_pid()
"""


# The floor: one statement that looks the point's grid up and inserts a case, nothing else (no
# key, no timeline, no event, no app): what an intake cannot go below.
_FLOOR = """
INSERT INTO cases (number, category_code, title, location, district_id, street_id, community_id,
                   grid_id)
SELECT $1, $2, $3, p.pt, s.parent_id, s.id, c.id, g.id
FROM (SELECT ST_SetSRID(ST_MakePoint($4, $5), 4326) AS pt) p
JOIN grid_boundaries b ON b.valid_to IS NULL AND ST_Intersects(b.boundary, p.pt)
JOIN grids g ON g.id = b.grid_id JOIN areas c ON c.id = g.community_id
JOIN areas s ON s.id = c.parent_id
LIMIT 1
"""


async def db_sample(conn: asyncpg.Connection, pids: list[int] | None) -> float | dict[int, float]:
    """On Citus (nodes on this machine): every process of every node (bench/cluster_cpu.py);
    else the app's backends."""
    return cluster_cpu_s(pids) if pids else await backends_cpu(conn)


def db_used(before: float | dict[int, float], after: float | dict[int, float]) -> float:
    if isinstance(before, float) and isinstance(after, float):
        return after - before
    assert isinstance(before, dict) and isinstance(after, dict)
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


async def bench_floor(
    url: str, conn: asyncpg.Connection, pids: list[int] | None, bodies: Bodies, args: Any
) -> dict[str, Any]:
    """The floor statement from `concurrency` connections of this process for `seconds`."""
    conns = [
        await asyncpg.connect(libpq_url(url), server_settings={"application_name": "wangge"})
        for _ in range(args.concurrency)
    ]
    try:
        for c in conns:
            await c.execute("SELECT 1")

        def call(c: asyncpg.Connection) -> Call:
            async def one(i: int) -> None:
                b = bodies.params[i]
                await c.execute(
                    _FLOOR, f"F{uuid.uuid4().hex[:23]}", b["category"], b["title"],
                    b["location"]["lon"], b["location"]["lat"],
                )  # fmt: skip

            return one

        tally = Tally()
        db0 = await db_sample(conn, pids)
        await drive(tally, len(bodies.params), [call(c) for c in conns], args.seconds)
        db1 = await db_sample(conn, pids)
    finally:
        for c in conns:
            await c.close()
    res = tally.result()
    n = res["requests"]
    return {
        "statements": n,
        "rps": res["rps"],
        "errors": res["errors"],
        "error_samples": res["error_samples"],
        "db_ms_per_statement": round(1000 * db_used(db0, db1) / n, 4) if n else None,
    }


async def backends_cpu(conn: asyncpg.Connection) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the app's pool (its connections say
    application_name 'wangge'); none when the server's processes are not visible here."""
    out = {}
    for r in await conn.fetch(_BACKENDS):
        with contextlib.suppress(OSError):  # exited meanwhile, or another PID namespace
            out[r["pid"]] = proc_cpu_s(r["pid"])
    return out


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Made:
    """What the fresh-key requests made: the 201s, and a pool of them to replay."""

    created: int = 0
    pool: list[tuple[str, int, bytes]] = field(default_factory=list)  # key, body index, answer


def healthz_call(h: HttpConn) -> Call:
    async def call(i: int) -> None:
        status, body = await h.fetch("/healthz")
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:200]!r}")

    return call


def intake_call(h: HttpConn, bodies: list[bytes], made: Made, lag: Lag) -> Call:
    async def call(i: int) -> bool:
        key = str(uuid.uuid4())
        status, answer = await h.post(CASES, bodies[i], {"Idempotency-Key": key})
        if status != 201:
            raise RuntimeError(f"HTTP {status}: {answer[:300]!r}")
        lag.answer(answer)
        made.created += 1
        if len(made.pool) < REPLAY_POOL:
            made.pool.append((key, i, answer))
        return b'"unlocated":false' in answer

    return call


def replay_call(h: HttpConn, bodies: list[bytes], made: Made) -> Call:
    async def call(i: int) -> bool:
        key, b, first = made.pool[i]
        status, answer = await h.post(CASES, bodies[b], {"Idempotency-Key": key})
        if status != 201:
            raise RuntimeError(f"HTTP {status}: {answer[:300]!r}")
        if answer != first:
            raise RuntimeError(f"replay answered other bytes than the first time for key {key}")
        return b'"unlocated":false' in answer

    return call


async def bench_intake(
    url: str, conn: asyncpg.Connection, args: argparse.Namespace
) -> dict[str, Any]:
    c = args.concurrency
    log_path = OUT / "intake-uvicorn.log"
    env: dict[str, str | None] = {"WANGGE_AUTH_CACHE_SECONDS": None}
    if args.pool_size:
        env["WANGGE_DB_POOL_SIZE"] = str(args.pool_size)
        env["WANGGE_DB_HOT_POOL_SIZE"] = str(args.pool_size)
    pids = await postmasters(conn, await conn.fetchval("SELECT current_user"))
    last_before = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM cases"))
    proc, port = start_server(url, log_path, env=env)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False)
    conns: list[HttpConn] = []
    lag = Lag()
    await lag.start(libpq_url(url))
    try:
        await wait_ready(proc, client, log_path)
        memory = {"ready": proc_memory_kb(proc.pid)}

        token = await login(client, USERNAME, get_settings().demo_password)
        bearer = {"Authorization": f"Bearer {token}"}
        r = await client.get("/api/v1/categories", headers=bearer)
        if r.status_code != 200:
            raise RuntimeError(f"GET /api/v1/categories: HTTP {r.status_code}: {r.text[:300]}")
        categories = r.json()
        if not categories:
            raise RuntimeError("the category catalogue is empty")
        points = await sample_points(conn)
        if not points:
            raise RuntimeError("no points inside the demo district's grids")
        bodies = make_bodies(points, categories, SEED)
        reporter_id = int(await conn.fetchval("SELECT id FROM users WHERE username = $1", USERNAME))
        print(
            f"{len(categories)} categories, {len(points):,} seeded points in "
            f"{bodies.stats['grids']} grids, {N_BODIES:,} bodies of {bodies.stats['bytes_mean']} "
            f"bytes on average; signed in as {USERNAME}",
            flush=True,
        )

        conns = [HttpConn(port, bearer) for _ in range(c)]
        made = Made()
        calls = {
            "healthz": [healthz_call(h) for h in conns],
            "intake": [intake_call(h, bodies.raw, made, lag) for h in conns],
            "replay": [replay_call(h, bodies.raw, made) for h in conns],
        }
        cpu: dict[str, dict[str, float]] = {}

        async def run_variant(v: str, tally: Tally, seconds: float) -> None:
            for h in conns:  # fresh connections, outside the clock
                await h.connect()
            n = len(made.pool) if v == "replay" else N_BODIES
            app0, db0, client0 = (
                proc_cpu_s(proc.pid),
                await db_sample(conn, pids),
                time.process_time(),
            )
            await drive(tally, n, calls[v], seconds)
            app1, db1, client1 = (
                proc_cpu_s(proc.pid),
                await db_sample(conn, pids),
                time.process_time(),
            )
            acc = cpu.setdefault(v, {"app": 0.0, "db": 0.0, "client": 0.0})
            acc["app"] += app1 - app0
            acc["db"] += db_used(db0, db1)
            acc["client"] += client1 - client0

        for v in VARIANTS:  # warm-up: the pool, caches, statements; fills the replay pool
            if v == "replay" and not made.pool:
                raise RuntimeError("no case was made during the warm-up, nothing to replay")
            warm = Tally()
            await run_variant(v, warm, args.warmup)
            if warm.errors:
                raise RuntimeError(f"{v} fails during warm-up: {warm.error_samples}")
        memory["warm"] = proc_memory_kb(proc.pid)
        cpu.clear()

        tallies = {v: Tally() for v in VARIANTS}
        slice_rps: dict[str, list[float]] = {v: [] for v in VARIANTS}
        slice_s = args.seconds / args.rounds
        for rnd in range(args.rounds):
            order = VARIANTS[rnd % len(VARIANTS) :] + VARIANTS[: rnd % len(VARIANTS)]
            for v in order:
                t = tallies[v]
                n0, s0 = len(t.latencies_ns), t.elapsed_s
                await run_variant(v, t, slice_s)
                slice_rps[v].append((len(t.latencies_ns) - n0) / (t.elapsed_s - s0))
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited during the run:\n{log_path.read_text()[-2000:]}")
        memory["after"] = proc_memory_kb(proc.pid)
    finally:
        for h in conns:
            h.close()
        await client.aclose()
        stop_server(proc)
        await lag.stop()

    # Only what the run made: the demo's disputes come with cases of their own (migration 0033).
    counts = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM cases WHERE id > $1) AS cases,"
        " (SELECT count(*) FROM case_events WHERE action = 'reported' AND case_id > $1)"
        " AS reported_events,"
        " (SELECT count(*) FROM idempotency_keys WHERE state = 'done') AS keys_done,"
        " (SELECT count(*) FROM idempotency_keys WHERE state <> 'done') AS keys_other,"
        " (SELECT count(*) FROM cases WHERE id > $1 AND unlocated) AS unlocated,"
        " (SELECT count(*) FROM cases WHERE id > $1 AND off_patch_m IS NOT NULL) AS off_patch",
        last_before,
    )
    db = dict(counts) | {"created_201": made.created}
    db["consistent"] = (
        db["cases"] == db["reported_events"] == db["keys_done"] == made.created
        and db["keys_other"] == 0
    )
    relay = await lag.summary(conn)
    await conn.execute("ANALYZE cases, case_events, idempotency_keys")
    # Citus: "EXPLAIN ANALYZE is currently not supported for INSERT ... SELECT commands via
    # coordinator" (the intake's CTEs).
    statement = (
        await explain_intake(conn, bodies, reporter_id, args.explain) if pids is None else None
    )
    floor = await bench_floor(url, conn, pids, bodies, args)
    parts = (
        await intake_parts(libpq_url(url), _FLOOR, bodies.params, reporter_id, PARTS_CALLS)
        if pids is None
        else None
    )

    results = {}
    for v, t in tallies.items():
        res = t.result()
        res["located_share"] = res.pop("inside_share") if v != "healthz" else None
        n = res["requests"]
        res["cpu_ms_per_request"] = {
            k: round(1000 * x / n, 4) if n else None for k, x in cpu[v].items()
        }
        res["cpu_busy"] = {k: round(x / t.elapsed_s, 3) for k, x in cpu[v].items()}
        q = sorted(slice_rps[v])
        res["rps_per_slice"] = {"min": round(q[0], 1), "median": round(q[len(q) // 2], 1)}
        res["rps_per_slice"]["max"] = round(q[-1], 1)
        results[v] = res
    ceiling, intake = results["healthz"], results["intake"]
    ratio = ratios(intake, ceiling)
    per_round = sorted(
        x / y for x, y in zip(slice_rps["intake"], slice_rps["healthz"], strict=True) if y
    )
    targets = {
        "throughput_ratio": {
            "value": ratio["throughput"],
            "min": TARGET_RATIO,
            "pass": ratio["throughput"] is not None and ratio["throughput"] >= TARGET_RATIO,
            "per_round_median": round(per_round[len(per_round) // 2], 4) if per_round else None,
        },
        "p99_ms": {
            "value": intake["p99_ms"],
            "max": TARGET_P99_MS,
            "pass": intake["p99_ms"] is not None and intake["p99_ms"] < TARGET_P99_MS,
        },
    }
    return {
        "user": USERNAME,
        "data": bodies.stats,
        "variants": results,
        "ratios": {
            "intake_vs_healthz": ratio,
            "replay_vs_healthz": ratios(results["replay"], ceiling),
        },
        "targets": targets,
        "server_memory_kb": memory,
        "database": db,
        "relay_lag": relay,
        "intake_statement": statement,
        "floor": floor,
        "database_parts": parts,
        "db_cpu_counted": (
            f"every process of the {len(pids)} Citus nodes" if pids else "the app's backends"
        ),
    }


# --- report -------------------------------------------------------------------------------------


def cpu_line(r: dict[str, Any]) -> str:
    c, b = r["cpu_ms_per_request"], r["cpu_busy"]
    parts = " + ".join(fmt_ms(c[k]) for k in ("app", "db", "client"))
    return f"{parts} ({sum(b.values()):.2f})"


def mb(kb: int) -> str:
    return f"{kb / 1024:.1f} MB"


async def time_rate_limit(url: str, n: int = 2000) -> dict[str, Any]:
    """In this process, the intake's rate-limit check as the policy calls it (an account key and
    an address key, limits far away), counted in PostgreSQL on every call (exact) and in batches
    (`batched=True`, one `flush` per 0.5 s of calls, as the server's loop does): CPU per call
    (`time.process_time`, best of 5 batches) and the upserts each sent."""
    from contextlib import asynccontextmanager

    from sqlalchemy.ext.asyncio import create_async_engine

    from app import ratelimit
    from app.config import async_url

    engine = create_async_engine(async_url(url), isolation_level="AUTOCOMMIT", pool_size=2)
    limits = {"intake:account:bench": 10**6, "intake:ip:192.0.2.1": 10**6}

    @asynccontextmanager
    async def connect():  # type: ignore[no-untyped-def]
        async with engine.connect() as c:
            yield c

    async def per_call(batched: bool) -> tuple[float, int]:
        best, writes = math.inf, 0
        for _ in range(5):
            ratelimit.forget()
            writes = 0
            t0 = time.process_time()
            last = time.monotonic()
            for _ in range(n):
                await ratelimit.check(connect, limits, batched=batched)
                writes += 0 if batched else 1
                if batched and time.monotonic() - last >= ratelimit.FLUSH_SECONDS:
                    async with connect() as c:
                        writes += 1 if await ratelimit.flush(c) else 0
                    last = time.monotonic()
            if batched:
                async with connect() as c:
                    writes += 1 if await ratelimit.flush(c) else 0
            best = min(best, (time.process_time() - t0) / n * 1e6)
        return round(best, 1), writes

    try:
        async with connect() as c:
            await c.exec_driver_sql("DELETE FROM rate_counters WHERE key LIKE 'intake:%'")
        exact_us, exact_writes = await per_call(False)
        batched_us, batched_writes = await per_call(True)
        async with connect() as c:
            await c.exec_driver_sql("DELETE FROM rate_counters WHERE key LIKE 'intake:%'")
    finally:
        ratelimit.forget()
        await engine.dispose()
    return {
        "calls": n,
        "exact_us": exact_us,
        "exact_upserts": exact_writes,
        "batched_us": batched_us,
        "batched_upserts": batched_writes,
    }


def print_report(res: dict[str, Any], conc: int) -> None:
    print(
        f"\n  {'variant':<32}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}"
        f"{'errors':>8}   CPU ms/req: app + db + client (busy CPUs)"
    )
    for v in VARIANTS:
        r = res["variants"][v]
        print(
            f"  {LABELS[v]:<32}{r['rps']:>9,.0f}{fmt_ms(r['p50_ms']):>9}{fmt_ms(r['p99_ms']):>9}"
            f"{r['requests']:>10,}{r['errors']:>8}   {cpu_line(r)}"
        )
    for v in VARIANTS:
        for sample in res["variants"][v]["error_samples"]:
            print(f"  error in {v}: {sample}")
    t = res["targets"]
    q, p = t["throughput_ratio"], t["p99_ms"]
    rq = res["ratios"]["replay_vs_healthz"]["throughput"]
    print(
        f"  intake / ceiling throughput {q['value']:.3f} (round by round median "
        f"{q['per_round_median']:.3f}; target >= {q['min']:.2f}): "
        f"{'PASS' if q['pass'] else 'MISS'}"
    )
    print(
        f"  intake p99 {fmt_ms(p['value'])} ms (target < {p['max']:g} ms): "
        f"{'PASS' if p['pass'] else 'MISS'}"
    )
    print(f"  replay / ceiling throughput {rq:.3f}" if rq is not None else "  replay: -")
    # What the CPUs allow at best: every intake needs its app + database + client CPU time, and
    # this machine has os.cpu_count() CPUs in all (the ceiling endpoint needs no database).
    cpus = os.cpu_count() or 1
    ci = res["variants"]["intake"]["cpu_ms_per_request"]
    per = sum(ci.values())
    if per > 0:
        best = cpus * 1000 / per
        ceiling = res["variants"]["healthz"]["rps"]
        print(
            f"  CPU bound: {per:.2f} ms of CPU per intake on {cpus} CPUs allows at most "
            f"{best:,.0f} intakes/s even with nothing else running: a ratio of at most "
            f"{best / ceiling:.2f} to this run's ceiling; p99 < {p['max']:g} ms at "
            f"{conc} clients needs more than {conc * 1000 / p['max']:,.0f}"
            f"/s (Little's law)"
        )
    f, ci = res["floor"], res["variants"]["intake"]["cpu_ms_per_request"]
    print(
        f"  per intake: app {fmt_ms(ci['app'])} ms (target <= {TARGET_APP_MS:g}: "
        f"{'PASS' if ci['app'] is not None and ci['app'] <= TARGET_APP_MS else 'MISS'}), "
        f"database {fmt_ms(ci['db'])} ms (target <= {TARGET_DB_MS:g}: "
        f"{'PASS' if ci['db'] is not None and ci['db'] <= TARGET_DB_MS else 'MISS'}); floor "
        f"(one INSERT ... SELECT with the grid lookup, {f['statements']:,} from {conc} "
        f"connections, no app): database {fmt_ms(f['db_ms_per_statement'])} ms, {f['rps']:,.0f}/s"
        f"; database CPU counted: {res['db_cpu_counted']}"
    )
    rl = res.get("rate_limit_in_process")
    if rl:
        print(
            f"rate-limit check in process ({rl['calls']:,} calls, two keys): counted in the "
            f"database on every call {rl['exact_us']} us of CPU ({rl['exact_upserts']:,} upserts), "
            f"in batches {rl['batched_us']} us ({rl['batched_upserts']:,} upserts): "
            f"{rl['batched_us'] / rl['exact_us']:.2f}"
        )
    m = res["server_memory_kb"]
    print(
        f"server memory: VmRSS {mb(m['ready']['VmRSS'])} ready, {mb(m['warm']['VmRSS'])} "
        f"after warm-up, {mb(m['after']['VmRSS'])} after the load; peak VmHWM "
        f"{mb(m['ready']['VmHWM'])} by ready (start-up), {mb(m['after']['VmHWM'])} at the end"
    )
    d = res["database"]
    print(
        f"database: {d['cases']:,} cases, {d['reported_events']:,} 'reported' steps, "
        f"{d['keys_done']:,} stored keys for {d['created_201']:,} fresh-key 201s: "
        f"{'consistent' if d['consistent'] else 'MISMATCH'} ({d['unlocated']} unlocated, "
        f"{d['off_patch']:,} off the worker's patch)"
    )
    print_parts(res["database_parts"], TARGET_DB_MS)
    r = res["relay_lag"]
    print(
        f"event relay: {r['events']:,} case.reported events of the fresh-key 201s reached a "
        f"listener ({r['missing']} did not), from the 201 to the NOTIFY p50 "
        f"{r.get('p50_ms', '-')} ms, p99 {r.get('p99_ms', '-')} ms, max {r.get('max_ms', '-')} ms"
    )
    s = res["intake_statement"]
    if s is None:
        print("intake statement alone: not on Citus (no EXPLAIN ANALYZE of INSERT ... SELECT)")
        return
    e = s["execution_ms"]
    print(
        f"intake statement alone (EXPLAIN ANALYZE, {s['runs']} bodies, rolled back): execution "
        f"median {e['median']} ms (min {e['min']}, max {e['max']}), planning "
        f"{s['planning_ms_median']} ms; slowest nodes: {'; '.join(s['slowest_nodes'][:4])}"
    )


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="6 s per variant instead of 15")
    p.add_argument("--seconds", type=float, help="measured seconds per variant")
    p.add_argument("--rounds", type=int, help="interleaved slices per variant")
    p.add_argument("--concurrency", type=int, default=32, help="concurrent clients (32)")
    p.add_argument(
        "--pool-size",
        type=int,
        help="the server's WANGGE_DB_POOL_SIZE (default: twice the concurrency, see the module "
        "docstring; 0: the app's default, 10 + 10 overflow, which stalls at 32 clients)",
    )
    p.add_argument("--explain", type=int, default=15, help="EXPLAIN ANALYZE runs (15)")
    a = p.parse_args(argv)
    a.seconds = a.seconds or (6.0 if a.quick else 15.0)
    a.rounds = a.rounds or (4 if a.quick else 10)
    a.warmup = 0.5 if a.quick else 1.0
    if not (0 < a.seconds <= 120 and 1 <= a.rounds <= 100 and 1 <= a.concurrency <= 64):
        p.error("--seconds in (0, 120], --rounds in [1, 100], --concurrency in [1, 64]")
    if a.pool_size is None:
        a.pool_size = 2 * a.concurrency
    if not (a.pool_size == 0 or 2 <= a.pool_size <= 100):
        p.error("--pool-size 0 or in [2, 100]")
    if not 1 <= a.explain <= 200:
        p.error("--explain in [1, 200]")
    return a


async def amain(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        found = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM grids) AS grids, (SELECT count(*) FROM cases) AS cases,"
            " (SELECT count(*) FROM users WHERE NOT is_demo) AS accounts"
        )
        if any(found.values()):
            raise SystemExit(
                f"bench_intake: the database already holds {found['grids']} grids, "
                f"{found['cases']} cases and {found['accounts']} non-demo accounts; "
                "BENCH_DATABASE_URL must be an empty throwaway database (it gets truncated)"
            )
        versions = await conn.fetchrow(
            "SELECT current_setting('server_version') AS pg, postgis_lib_version() AS postgis"
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
            result = await bench_intake(url, conn, args)
            result["rate_limit_in_process"] = await time_rate_limit(url)
        finally:
            await reset(conn)
    finally:
        await conn.close()
    print_report(result, args.concurrency)
    s = get_settings()
    return {
        "benchmark": "intake",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": versions["pg"],
            "postgis": versions["postgis"],
        },
        "settings": {
            "concurrency": args.concurrency,
            "seconds_per_variant": args.seconds,
            "rounds": args.rounds,
            "warmup_s": args.warmup,
            "seed": SEED,
            "db_pool_size": args.pool_size or s.db_pool_size,
            "db_max_overflow": s.db_max_overflow,
            "targets": {"throughput_ratio_min": TARGET_RATIO, "p99_ms_max": TARGET_P99_MS},
        },
        **result,
    }


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    report = run_bench(
        "intake",
        (
            f"intake benchmark: {args.concurrency} concurrent clients, {args.seconds:g} s per variant"
            f" in {args.rounds} interleaved slices; server DB pool "
            f"{args.pool_size or 'default'}; {os.cpu_count()} CPUs"
        ),
        lambda url: amain(url, args),
    )
    errors = sum(v["errors"] for v in report["variants"].values()) + report["floor"]["errors"]
    if errors or not report["database"]["consistent"]:
        raise SystemExit(
            f"bench_intake: {errors} errors; database consistent: "
            f"{report['database']['consistent']}"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
