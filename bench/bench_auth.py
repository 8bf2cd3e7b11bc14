"""Benchmark what auth costs a request: a scoped list endpoint with and without auth, side by side.

``GET /api/v1/grids?area_id=<江边街道>&limit=20`` (the demo district's street 江边街道, one SQL
statement) on three uvicorn servers (1 worker each, same code, same database), driven in turn by
the same N concurrent keep-alive HTTP/1.1 clients:

* ``noauth``   bench/_noauth_app.py: app.main.app with the registry:read policy of the route
  swapped for a fixed principal (no token, no principal lookup). Not through
  ``app.dependency_overrides`` unless ``--noauth overrides``: a non-empty overrides dict makes
  FastAPI rebuild every dependency's dependant on every request, slower than auth itself;
* ``cached``   app.main.app, default settings, ``Authorization: Bearer`` from a `worker` login:
  a JWT check and the per-process principal cache (auth_cache_seconds, 30 s by default);
* ``nocache``  app.main.app with WANGGE_AUTH_CACHE_SECONDS=0: a JWT check and the principal
  query (one indexed statement) on every request.

Before timing, all three must return the same body (and both auth servers 401 without a token).
Also timed: the login itself, POST /api/v1/auth/token as `worker`, sequentially (argon2id is
slow on purpose), beside one bare argon2 verification in this process; the principal query under
EXPLAIN ANALYZE; and the policy dependency called in this process (a cache hit, a cache miss),
which is steadier than end-to-end differences of a fraction of a millisecond. The machine is
shared and noisy, so the variants run in short slices, interleaved round-robin with rotating
order, and the table prints ratios to ``noauth`` with their spread round by round.

Needs BENCH_DATABASE_URL: an empty, throwaway database (the bench migrates it, loads the demo
district with its demo accounts, and when done truncates every table but the append-only audit
log, which keeps its login rows). It refuses a database holding grids or non-demo accounts.
``scripts/bench.sh`` (``make bench``) provides one.
Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_auth.py [--quick]``.
Results also go to bench/out/auth.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from starlette.requests import Request

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
    Call,
    HttpConn,
    Tally,
    drive,
    fmt_ms,
    fmt_ratio,
    libpq_url,
    load_demo_district,
    login,
    ratios,
    reset,
    run_bench,
    start_server,
    stop_server,
    wait_ready,
)

from app.auth.passwords import verify_password
from app.auth.policy import _PRINCIPAL, decode_access_token, principal_cache, require
from app.auth.tokens import _VERIFIED
from app.config import Settings, async_url, get_settings
from app.demo.accounts import STREET

USERNAME = "worker"
PAGE = 20
VARIANTS = ("noauth", "cached", "nocache")
LABELS = {
    "noauth": "(a) no auth (fixed principal)",
    "cached": "(b) auth, principal cache",
    "nocache": "(c) auth, no cache (1 query)",
}

# The policy's statement, bind parameters renamed for asyncpg ($1 = user id, $2 = session id).
PRINCIPAL_SQL = re.sub(
    r"(?<![:\w]):(uid|sid)\b", lambda m: "$1" if m[1] == "uid" else "$2", _PRINCIPAL.text
)
assert "$1" in PRINCIPAL_SQL and "$2" in PRINCIPAL_SQL and ":uid" not in PRINCIPAL_SQL


# --- data ---------------------------------------------------------------------------------------


def plan_scans(node: dict[str, Any]) -> list[str]:
    """The scans of an EXPLAIN (FORMAT JSON) plan: 'Index Scan on users (pk_users)', ..."""
    out = []
    if "Relation Name" in node:
        index = f" ({node['Index Name']})" if "Index Name" in node else ""
        out.append(f"{node['Node Type']} on {node['Relation Name']}{index}")
    for child in node.get("Plans", []):
        out.extend(plan_scans(child))
    return out


async def explain_principal(conn: asyncpg.Connection, token: str) -> dict[str, Any]:
    """The policy's principal query for the worker's session under EXPLAIN ANALYZE: best of 5,
    and once with enable_seqscan off (on these small tables seq scans are cheaper; that plan
    shows every access has an index)."""
    uid, sid = decode_access_token(token)
    runs = []
    for _ in range(5):
        raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + PRINCIPAL_SQL, uid, sid)
        runs.append(json.loads(raw)[0])
    best = min(runs, key=lambda r: r["Execution Time"])
    async with conn.transaction():  # the plan once the tables outgrow a page or two
        await conn.execute("SET LOCAL enable_seqscan = off")
        raw = await conn.fetchval("EXPLAIN (ANALYZE, FORMAT JSON) " + PRINCIPAL_SQL, uid, sid)
    big = json.loads(raw)[0]
    return {
        "execution_ms": round(best["Execution Time"], 3),
        "planning_ms": round(best["Planning Time"], 3),
        "rows": best["Plan"].get("Actual Rows"),
        "scans": plan_scans(best["Plan"]),
        "scans_without_seqscan": plan_scans(big["Plan"]),
        "execution_ms_without_seqscan": round(big["Execution Time"], 3),
        "table_rows": dict(
            await conn.fetch(
                "SELECT relname, n_live_tup FROM pg_stat_user_tables"
                " WHERE relname IN ('users', 'auth_sessions', 'posts', 'post_grids')"
                " ORDER BY relname"
            )
        ),
    }


async def time_policy(url: str, token: str) -> dict[str, Any]:
    """In this process, the registry:read policy exactly as a route calls it, on a session that
    already holds its connection (the route needs one anyway): a principal cache hit, and a miss
    (cache emptied before every call, so the principal query runs); best of 5 batches."""
    policy = require("registry:read")
    request = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "state": {}})
    engine = create_async_engine(async_url(url))

    async def per_call_us(session: AsyncSession, n: int, miss: bool) -> float:
        batches = []
        for _ in range(5):
            t0 = time.perf_counter_ns()
            for _ in range(n):
                if miss:
                    principal_cache.clear()
                await policy(request, session, token)
            batches.append((time.perf_counter_ns() - t0) / n / 1000)
        return round(min(batches), 1)

    try:
        async with AsyncSession(engine) as session:
            await (await session.connection()).exec_driver_sql("SELECT 1")
            await per_call_us(session, 200, miss=True)  # warm-up
            miss_us = await per_call_us(session, 300, miss=True)
            await per_call_us(session, 200, miss=False)
            hit_us = await per_call_us(session, 2000, miss=False)
    finally:
        principal_cache.clear()
        await engine.dispose()

    def jwt_us(first_sight: bool) -> float:
        """The token checked as on every request: seen before (its expiry only, from
        tokens._VERIFIED), or at first sight (signature and claims: PyJWT)."""
        batches = []
        for _ in range(5):
            t0 = time.perf_counter_ns()
            for _ in range(2000):
                if first_sight:
                    _VERIFIED.clear()
                decode_access_token(token)
            batches.append((time.perf_counter_ns() - t0) / 2000 / 1000)
        return round(min(batches), 1)

    return {
        "cache_hit_us": hit_us,
        "cache_miss_us": miss_us,
        "jwt_decode_us": jwt_us(False),
        "jwt_first_sight_us": jwt_us(True),
    }


# --- login --------------------------------------------------------------------------------------


def summary_ms(samples_ns: list[int]) -> dict[str, Any]:
    ms = [v / 1e6 for v in samples_ns]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "mean_ms": round(statistics.fmean(ms), 2),
        "min_ms": round(min(ms), 2),
        "max_ms": round(max(ms), 2),
    }


async def time_logins(
    client: httpx.AsyncClient, conn: asyncpg.Connection, password: str, n: int
) -> dict[str, Any]:
    """n sequential logins through HTTP, then n bare argon2 verifications of the same hash here."""
    http_ns = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        await login(client, USERNAME, password)
        http_ns.append(time.perf_counter_ns() - t0)
    stored = await conn.fetchval("SELECT password_hash FROM users WHERE username = $1", USERNAME)
    argon_ns = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        ok = verify_password(stored, password)
        argon_ns.append(time.perf_counter_ns() - t0)
        assert ok
    params = stored.split("$")[3] if stored.count("$") >= 4 else "?"  # m=...,t=...,p=...
    return {
        "endpoint": summary_ms(http_ns),
        "argon2_verify": summary_ms(argon_ns) | {"params": params},
    }


# --- the three variants -------------------------------------------------------------------------


async def check_same_body(
    clients: dict[str, httpx.AsyncClient], headers: dict[str, dict[str, str]], path: str
) -> dict[str, Any]:
    """All three variants answer 200 with the same bytes; the auth servers 401 without a token."""
    bodies = {}
    for v in VARIANTS:
        r = await clients[v].get(path, headers=headers[v])
        if r.status_code != 200:
            raise RuntimeError(f"{v}: GET {path}: HTTP {r.status_code}: {r.text[:300]}")
        bodies[v] = r.content
    if len(set(bodies.values())) != 1:
        sizes = {v: len(b) for v, b in bodies.items()}
        raise RuntimeError(f"the variants answer different bodies (bytes: {sizes})")
    without = {v: (await clients[v].get(path)).status_code for v in VARIANTS}
    if without["cached"] != 401 or without["nocache"] != 401 or without["noauth"] != 200:
        raise RuntimeError(f"without a token: {without} (want 200, 401, 401)")
    page = json.loads(bodies["noauth"])
    return {
        "same_body": True,
        "bytes": len(bodies["noauth"]),
        "items": len(page["items"]),
        "total": page["total"],
        "status_without_token": without,
    }


async def bench_auth(
    url: str, conn: asyncpg.Connection, area_id: int, args: argparse.Namespace
) -> dict[str, Any]:
    path = f"/api/v1/grids?area_id={area_id}&limit={PAGE}"
    password = get_settings().demo_password
    c = args.concurrency
    specs: dict[str, dict[str, Any]] = {
        "noauth": {
            "app": "_noauth_app:app",
            "app_dir": "bench",
            "env": {"WANGGE_AUTH_CACHE_SECONDS": None, "WANGGE_BENCH_NOAUTH": args.noauth},
        },
        "cached": {"env": {"WANGGE_AUTH_CACHE_SECONDS": None}},
        "nocache": {"env": {"WANGGE_AUTH_CACHE_SECONDS": "0"}},
    }
    logs = {v: OUT / f"auth-uvicorn-{v}.log" for v in VARIANTS}
    procs, ports = {}, {}
    clients: dict[str, httpx.AsyncClient] = {}
    conns: dict[str, list[HttpConn]] = {}
    try:
        for v in VARIANTS:
            procs[v], ports[v] = start_server(url, logs[v], **specs[v])
            clients[v] = httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{ports[v]}", timeout=30, trust_env=False
            )
        for v in VARIANTS:
            await wait_ready(procs[v], clients[v], logs[v])

        token = await login(clients["cached"], USERNAME, password)
        bearer = {"Authorization": f"Bearer {token}"}
        headers = {"noauth": {}, "cached": bearer, "nocache": bearer}
        conns = {v: [HttpConn(ports[v], headers[v]) for _ in range(c)] for v in VARIANTS}

        logins = await time_logins(clients["cached"], conn, password, args.logins)
        await conn.execute("ANALYZE users, auth_sessions, posts, post_grids")
        principal = await explain_principal(conn, token)
        principal["policy_in_process"] = await time_policy(url, token)
        endpoint = await check_same_body(clients, headers, path)

        def http_call(h: HttpConn) -> Call:
            async def call(i: int) -> None:
                status = await h.get(path)
                if status != 200:
                    raise RuntimeError(f"HTTP {status}")

            return call

        async def run_variant(v: str, tally: Tally, seconds: float) -> None:
            for h in conns[v]:  # fresh connections, outside the clock
                await h.connect()
            await drive(tally, 1, [http_call(h) for h in conns[v]], seconds)

        for v in VARIANTS:  # warm-up: pools, caches, the principal cache of (b)
            warm = Tally()
            await run_variant(v, warm, args.warmup)
            if warm.errors:
                raise RuntimeError(f"{v} fails during warm-up: {warm.error_samples}")

        tallies = {v: Tally() for v in VARIANTS}
        slice_rps: dict[str, list[float]] = {v: [] for v in VARIANTS}
        slice_s = args.seconds / args.rounds
        for r in range(args.rounds):
            order = VARIANTS[r % len(VARIANTS) :] + VARIANTS[: r % len(VARIANTS)]
            for v in order:
                t = tallies[v]
                n0, s0 = len(t.latencies_ns), t.elapsed_s
                await run_variant(v, t, slice_s)
                slice_rps[v].append((len(t.latencies_ns) - n0) / (t.elapsed_s - s0))
        for v in VARIANTS:
            if procs[v].poll() is not None:
                raise RuntimeError(
                    f"{v} server exited during the run:\n{logs[v].read_text()[-2000:]}"
                )
    finally:
        for hs in conns.values():
            for h in hs:
                h.close()
        for client in clients.values():
            await client.aclose()
        for proc in procs.values():
            stop_server(proc)

    results = {}
    for v, t in tallies.items():
        res = t.result()
        res.pop("inside_share")
        res["ms_per_request"] = round(1000 / res["rps"], 4) if res["rps"] else None
        results[v] = res
    a = results["noauth"]

    def added(b: dict[str, Any]) -> dict[str, float | None]:
        def sub(x: float | None, y: float | None) -> float | None:
            return round(x - y, 4) if x is not None and y is not None else None

        return {
            "p50_ms": sub(b["p50_ms"], a["p50_ms"]),
            "p99_ms": sub(b["p99_ms"], a["p99_ms"]),
            "ms_per_request": sub(b["ms_per_request"], a["ms_per_request"]),
        }

    def spread(v: str) -> dict[str, float]:
        """Throughput ratio to noauth round by round (slices next to each other in time)."""
        q = [x / y for x, y in zip(slice_rps[v], slice_rps["noauth"], strict=True) if y]
        lo, mid, hi = (float(f"{x:.4g}") for x in quantiles(q))
        return {"q1": lo, "median": mid, "q3": hi, "min": round(min(q), 4), "max": round(max(q), 4)}

    return {
        "path": path,
        "endpoint": endpoint,
        "principal_query": principal,
        "login": logins,
        "variants": results,
        "ratios": {
            "cached_vs_noauth": ratios(results["cached"], a),
            "nocache_vs_noauth": ratios(results["nocache"], a),
        },
        "added": {"cached": added(results["cached"]), "nocache": added(results["nocache"])},
        "throughput_ratio_per_round": {"cached": spread("cached"), "nocache": spread("nocache")},
    }


def quantiles(q: list[float]) -> tuple[float, float, float]:
    if len(q) < 2:
        return q[0], q[0], q[0]
    lo, mid, hi = statistics.quantiles(q, n=4)
    return lo, mid, hi


# --- report -------------------------------------------------------------------------------------


def print_report(res: dict[str, Any], cache_s: int, noauth: str) -> None:
    e, q, lg = res["endpoint"], res["principal_query"], res["login"]
    print(
        f"\nGET {res['path']} (江边街道: {e['total']} grids, {e['items']} per page): the same "
        f"{e['bytes']:,}-byte body from all three; without a token {e['status_without_token']}"
    )
    print(
        f"principal query (EXPLAIN ANALYZE, best of 5): {q['execution_ms']} ms execution + "
        f"{q['planning_ms']} ms planning, {q['rows']} row; {', '.join(q['scans'])}; "
        f"table rows {q['table_rows']}"
    )
    print(
        f"  with enable_seqscan off: {q['execution_ms_without_seqscan']} ms; "
        f"{', '.join(q['scans_without_seqscan'])}"
    )
    t = q["policy_in_process"]
    print(
        f"the registry:read policy called in process: {t['cache_hit_us']} µs with a principal "
        f"cache hit (the JWT check alone {t['jwt_decode_us']} µs; a token's first check "
        f"{t['jwt_first_sight_us']} µs), {t['cache_miss_us']} µs with "
        "the principal query"
    )
    print(
        f"\n  {'variant':<34}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}{'ms/req':>9}"
        f"{'requests':>11}{'errors':>8}"
    )
    for v in VARIANTS:
        r = res["variants"][v]
        label = LABELS[v] + (f" {cache_s} s" if v == "cached" else "")
        if v == "noauth" and noauth == "overrides":
            label = "(a) no auth (dependency_overrides)"
        print(
            f"  {label:<34}{r['rps']:>10,.0f}{fmt_ms(r['p50_ms']):>10}{fmt_ms(r['p99_ms']):>10}"
            f"{fmt_ms(r['ms_per_request']):>9}{r['requests']:>11,}{r['errors']:>8}"
        )
    for v in VARIANTS:
        for sample in res["variants"][v]["error_samples"]:
            print(f"  error in {v}: {sample}")
    for key, label in (("cached", "(b)/(a)"), ("nocache", "(c)/(a)")):
        q = res["ratios"][f"{key}_vs_noauth"]
        d = res["added"][key]
        print(
            f"  {label} throughput {fmt_ratio(q['throughput']):>7}   p50 latency "
            f"{fmt_ratio(q['p50']):>7}   p99 latency {fmt_ratio(q['p99']):>7}   "
            f"(p50 {d['p50_ms']:+.3f} ms, 1/throughput {d['ms_per_request']:+.3f} ms)"
        )
        k = res["throughput_ratio_per_round"][key]
        print(
            f"          throughput round by round: median {k['median']:.3f}, quartiles "
            f"{k['q1']:.3f}-{k['q3']:.3f}, range {k['min']:.3f}-{k['max']:.3f}"
        )
    h, g = lg["endpoint"], lg["argon2_verify"]
    print(
        f"\nlogin POST /api/v1/auth/token as {USERNAME}, {h['n']} sequential: p50 "
        f"{h['p50_ms']} ms (min {h['min_ms']}, max {h['max_ms']}); argon2id verify alone "
        f"({g['params']}) p50 {g['p50_ms']} ms"
    )


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="6 s per variant instead of 15")
    p.add_argument("--seconds", type=float, help="measured seconds per variant")
    p.add_argument("--rounds", type=int, help="interleaved slices per variant")
    p.add_argument("--concurrency", type=int, default=16, help="concurrent clients (16)")
    p.add_argument("--logins", type=int, help="sequential logins timed (20; --quick 10)")
    p.add_argument(
        "--noauth",
        choices=("annotation", "overrides"),
        default="annotation",
        help="how (a) drops the policy: rebinding RegistryReader (default) or through "
        "app.dependency_overrides (which slows every request down; see bench/_noauth_app.py)",
    )
    a = p.parse_args(argv)
    a.seconds = a.seconds or (6.0 if a.quick else 15.0)
    a.rounds = a.rounds or (6 if a.quick else 15)
    a.logins = a.logins or (10 if a.quick else 20)
    a.warmup = 0.3 if a.quick else 0.5
    if not (0 < a.seconds <= 120 and 1 <= a.rounds <= 100 and 1 <= a.concurrency <= 64):
        p.error("--seconds in (0, 120], --rounds in [1, 100], --concurrency in [1, 64]")
    if not 1 <= a.logins <= 200:
        p.error("--logins in [1, 200]")
    return a


async def amain(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        grids = await conn.fetchval("SELECT count(*) FROM grids")
        accounts = await conn.fetchval("SELECT count(*) FROM users WHERE NOT is_demo")
        if grids or accounts:
            raise SystemExit(
                f"bench_auth: the database already holds {grids} grids and {accounts} non-demo "
                "accounts; BENCH_DATABASE_URL must be an empty throwaway database (it gets "
                "truncated)"
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
                f" {loaded.accounts} demo accounts, {loaded.roster} roster staff",
                flush=True,
            )
            area_id = await conn.fetchval("SELECT id FROM areas WHERE code = $1", STREET)
            if area_id is None:
                raise RuntimeError(f"the demo district has no area {STREET}")
            result = await bench_auth(url, conn, int(area_id), args)
        finally:
            await reset(conn)
    finally:
        await conn.close()
    cache_s = Settings.model_fields["auth_cache_seconds"].default
    print_report(result, cache_s, args.noauth)
    return {
        "benchmark": "auth",
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
            "logins": args.logins,
            "auth_cache_seconds": {"noauth": None, "cached": cache_s, "nocache": 0},
            "noauth_via": args.noauth,
            "user": USERNAME,
        },
        **result,
    }


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    run_bench(
        "auth",
        (
            f"auth benchmark: {args.concurrency} concurrent clients, {args.seconds:g} s per variant"
            f" in {args.rounds} interleaved slices, {args.logins} logins; {os.cpu_count()} CPUs"
        ),
        lambda url: amain(url, args),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
