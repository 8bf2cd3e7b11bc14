"""Benchmark the evaluation figures (考评) at 1,000,000 cases for a year.

The database gets the demo district, then a year of synthetic cases (app.demo.history, set-based
SQL: seasonal, two slow departments, returns, rework, open and overdue work at the end) with the
triggers skipped (session_replication_role = replica, a superuser connection) and the evaluation
facts rebuilt once (`stats_rebuild()`), then VACUUM (ANALYZE).

Then, one request at a time, in interleaved rounds, side by side:
* ``api``   the endpoint through HTTP (one uvicorn worker, scheduler off), as the console calls it;
* ``facts`` the same service call in this process (the statement over the fact tables, no HTTP);
* ``raw``   the straightforward SQL: the same aggregate over the views that compute every fact
            from the raw tables (cases, case_assignments) and the working hours per row at query
            time (`stats_case_facts_v`, `stats_dept_facts_v`): what one would write without the
            rollup. It is slow, so it runs fewer times (``--raw-runs``).
Before timing, each query's API answer must equal the raw recomputation (the rollup is exact).

Queries: the centre's year by street and by department, the centre's month ranking of
departments (two periods), a street's quarter by community, a department's own year, the
centre's year of hot spots. p50 and p95 in ms; the target is p95 < 500 ms through the API.

Needs BENCH_DATABASE_URL: an empty, throwaway database (migrated here; every table is emptied at
the end, the append-only audit log keeps its login rows). ``scripts/bench.sh`` (``make bench``)
provides one. Run: ``BENCH_DATABASE_URL=... .venv/bin/python bench/bench_stats.py [--quick]``.
Results also go to bench/out/stats.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import numpy as np
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
    ROOT,
    HttpConn,
    exit_on_sigterm,
    fmt_ms,
    load_demo_district,
    login,
    reset,
    run_loop,
    start_server,
    stop_all_servers,
    stop_server,
    wait_ready,
)

from app import migrate
from app.auth.policy import load_principal
from app.config import async_url, get_settings
from app.demo.history import generate_history
from app.stats import periods, service
from app.stats.worktime import sync_calendar

ACCOUNTS = ("centre", "street", "dept")


@dataclass
class Query:
    name: str
    user: str
    path: str
    params: dict[str, Any]
    unit: str | None = None
    """For the in-process variants: indicator_rows(unit, period)."""


def queries(today: str) -> list[Query]:
    return [
        Query("centre_year_streets", "centre", "/api/v1/stats/indicators",
              {"unit": "street", "period": "year", "at": today}, "street"),
        Query("centre_year_departments", "centre", "/api/v1/stats/indicators",
              {"unit": "department", "period": "year", "at": today}, "department"),
        Query("street_quarter_communities", "street", "/api/v1/stats/indicators",
              {"unit": "community", "period": "quarter", "at": today}, "community"),
        Query("dept_year_own", "dept", "/api/v1/stats/indicators",
              {"unit": "department", "period": "year", "at": today}, "department"),
        Query("centre_month_ranking", "centre", "/api/v1/stats/rankings",
              {"unit": "department", "period": "month", "at": today}),
        Query("centre_year_hotspots", "centre", "/api/v1/stats/hotspots",
              {"period": "year", "at": today}),
    ]  # fmt: skip


def pct(ms: list[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(ms), q)), 2) if ms else None


async def principal(conn: AsyncConnection, username: str) -> Any:
    """The user's principal on a fresh session row (as a login would make)."""
    uid = (
        await conn.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username})
    ).scalar_one()
    sid = uuid.uuid4()
    await conn.execute(
        text(
            "INSERT INTO auth_sessions (id, user_id, expires_at) "
            "VALUES (:s, :u, now() + interval '1 hour')"
        ),
        {"s": sid, "u": uid},
    )
    await conn.commit()
    return await load_principal(AsyncSession(bind=conn), uid, sid)


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    engine = create_async_engine(
        async_url(url), connect_args={"server_settings": {"jit": "off", "timezone": "UTC"}}
    )
    out: dict[str, Any] = {}
    try:
        async with engine.connect() as conn:
            found = (
                await conn.execute(
                    text("SELECT (SELECT count(*) FROM grids) + (SELECT count(*) FROM cases)")
                )
            ).scalar_one()
            if found:
                raise SystemExit("bench_stats: BENCH_DATABASE_URL must be an empty database")
            raw = await conn.get_raw_connection()
            await reset(raw.driver_connection)
            await conn.commit()
        try:
            await load_demo_district(url)
            async with engine.begin() as conn:  # reset() emptied the working calendar too
                await sync_calendar(conn)
            t0 = time.perf_counter()
            async with engine.begin() as conn:
                superuser = (
                    await conn.execute(
                        text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                    )
                ).scalar_one()
                gen = await generate_history(conn, args.cases, events=False, fast=superuser)
            async with engine.connect() as conn:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
                await conn.execute(text("SET statement_timeout = 0"))
                await conn.execute(
                    text(
                        "VACUUM (ANALYZE) cases, case_assignments, stats_case_facts, stats_dept_facts"
                    )
                )
                sizes = (
                    await conn.execute(
                        text(
                            "SELECT pg_total_relation_size('stats_case_facts') AS case_facts, "
                            "pg_total_relation_size('stats_dept_facts') AS dept_facts, "
                            "pg_total_relation_size('cases') AS cases"
                        )
                    )
                ).one()
            gen["fill_s"] = round(time.perf_counter() - t0, 1)
            gen["mb"] = {k: round(v / 2**20) for k, v in sizes._mapping.items()}
            out["data"] = gen
            print(f"data: {json.dumps(gen, ensure_ascii=False)}", flush=True)
            out["queries"] = await time_queries(url, engine, args)
        finally:
            async with engine.connect() as conn:
                raw = await conn.get_raw_connection()
                await reset(raw.driver_connection)
                await conn.commit()
    finally:
        await engine.dispose()
    return out


async def time_queries(url: str, engine: Any, args: argparse.Namespace) -> dict[str, Any]:
    log = OUT / "stats-uvicorn.log"
    proc, port = start_server(
        url, log, env={"WANGGE_SCHEDULER_ENABLED": "false", "WANGGE_AUTH_CACHE_SECONDS": "60"}
    )
    results: dict[str, Any] = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            await wait_ready(proc, client, log)
            pw = get_settings().demo_password
            tokens = {a: await login(client, a, pw) for a in ACCOUNTS}
        conns = {a: HttpConn(port, {"Authorization": f"Bearer {tokens[a]}"}) for a in ACCOUNTS}
        async with engine.connect() as conn:
            await conn.execute(text("SET statement_timeout = 0"))
            who = {a: await principal(conn, a) for a in ACCOUNTS}
            today = (
                await conn.execute(text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date"))
            ).scalar_one()
            qs = queries(today.isoformat())
            for q in qs:
                r: dict[str, Any] = {"api_ms": [], "facts_ms": [], "raw_ms": []}
                path = f"{q.path}?{urlencode(q.params)}"
                status, body = await conns[q.user].fetch(path)
                if status != 200:
                    raise RuntimeError(f"{q.name}: HTTP {status}: {body[:300]!r}")
                period = periods.resolve(q.params["period"], today, None, None, today)
                if q.unit:
                    # In one transaction: the same now() for both (the raw run takes minutes,
                    # and deadlines pass meanwhile).
                    await conn.commit()
                    fast = await service.indicator_rows(conn, who[q.user], q.unit, period, "zh")
                    t = time.perf_counter()
                    slow = await service.indicator_rows(
                        conn, who[q.user], q.unit, period, "zh", raw=True
                    )
                    r["raw_ms"].append((time.perf_counter() - t) * 1000)  # the first raw run
                    await conn.commit()
                    r["rows"] = len(json.loads(body)["items"])
                    r["agrees_with_raw"] = fast == slow
                    if not r["agrees_with_raw"]:
                        raise RuntimeError(
                            f"{q.name}: the rollup disagrees with the raw recomputation"
                        )
                for k in range(args.runs):
                    t = time.perf_counter()
                    status, _ = await conns[q.user].fetch(path)
                    r["api_ms"].append((time.perf_counter() - t) * 1000)
                    if status != 200:
                        raise RuntimeError(f"{q.name}: HTTP {status}")
                    if q.unit:
                        t = time.perf_counter()
                        await service.indicator_rows(conn, who[q.user], q.unit, period, "zh")
                        r["facts_ms"].append((time.perf_counter() - t) * 1000)
                        if k < args.raw_runs - 1:
                            t = time.perf_counter()
                            await service.indicator_rows(
                                conn, who[q.user], q.unit, period, "zh", raw=True
                            )
                            r["raw_ms"].append((time.perf_counter() - t) * 1000)
                summary = {
                    f"{v}_{p}": pct(r[f"{v}_ms"], q_)
                    for v in ("api", "facts", "raw")
                    for p, q_ in (("p50", 50), ("p95", 95))
                }
                summary.update(
                    runs=len(r["api_ms"]),
                    raw_runs=len(r["raw_ms"]),
                    rows=r.get("rows"),
                    agrees_with_raw=r.get("agrees_with_raw"),
                )
                results[q.name] = summary
                print(
                    f"{q.name:28} api p50 {fmt_ms(summary['api_p50']):>7} p95 "
                    f"{fmt_ms(summary['api_p95']):>7} | facts p50 {fmt_ms(summary['facts_p50']):>7} | "
                    f"raw p50 {fmt_ms(summary['raw_p50']):>8} p95 {fmt_ms(summary['raw_p95']):>8}",
                    flush=True,
                )
            for c in conns.values():
                c.close()
    finally:
        stop_server(proc)
    return results


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="200,000 cases, fewer runs")
    p.add_argument("--cases", type=int, help="synthetic cases (1,000,000)")
    p.add_argument("--runs", type=int, help="timed requests per query (30)")
    p.add_argument("--raw-runs", type=int, help="timed raw recomputations per query (3)")
    args = p.parse_args(argv)
    args.cases = args.cases or (200_000 if args.quick else 1_000_000)
    args.runs = args.runs or (12 if args.quick else 30)
    args.raw_runs = args.raw_runs or (2 if args.quick else 3)
    if not (1_000 <= args.cases <= 5_000_000 and 1 <= args.runs <= 1000):
        p.error("--cases in [1000, 5000000], --runs in [1, 1000]")
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        raise SystemExit("bench_stats: set BENCH_DATABASE_URL (or run scripts/bench.sh)")
    exit_on_sigterm()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"stats benchmark: {args.cases:,} cases over a year; {os.cpu_count()} CPUs", flush=True)
    migrate.upgrade(url)
    t0 = time.perf_counter()
    try:
        result = run_loop(bench(url, args))
    finally:
        stop_all_servers()
    report = {
        "benchmark": "stats",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "settings": {"cases": args.cases, "runs": args.runs, "raw_runs": args.raw_runs},
        **result,
        "total_s": round(time.perf_counter() - t0, 1),
    }
    (OUT / "stats.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\ntotal {report['total_s']} s; results in {(OUT / 'stats.json').relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
