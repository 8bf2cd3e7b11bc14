"""Open-loop benchmark: a district's realistic mix at fixed arrival rates, p50/p99 per route.

Closed-loop clients (the other benches) wait for each answer before sending the next request, so
a slow server slows its own load down and the latencies look better than a real district would
see them. Here every request has a scheduled time (Poisson arrivals per route at a fixed rate),
it is sent at that time whatever the server is doing (a fresh keep-alive connection when every
open one is busy), and its latency is counted from the scheduled time (no coordinated
omission). Three levels: 1x, 5x and 20x a big district's peak hour.

The peak (docs/benchmarks.md, "Open loop", says the same): the biggest district in the seeds is
Tianjin's Heping district (002_5c3f13529a4d7153.txt, DOMAIN.md §1): 63 communities, 629 grids,
661 grid managers and 1,561 informants. At its peak hour (the morning patrol) about half of the
661 full-time workers are out: **300 workers**, each reporting 3 cases an hour (one every 20
minutes of walking), syncing every 2 minutes while the app is open (30 an hour) and looking up 6
points an hour (a report's place, a QR poster); **40 console users** (the centre, 6 streets, the
communities' and departments' desks; DOMAIN.md §2), each opening a page every 20 s that costs a
case list and a case; residents opening 0.5 service cards a second (629 grids' QR posters); the
12345 hotline forwarding ~1,000 calls a day through Open311 (15% of them in the peak hour:
0.04/s) while its integrator polls the open requests every 10 s. So at 1x, per second:

    report 0.25, sync 2.5, lookup 0.5, card 0.5, console list 2.0, console case 2.0,
    open311 post 0.05, open311 poll 0.1  (7.9 requests/s)

The server runs as `make run` runs it by default (scripts/run.sh): uvicorn with as many workers
as the machine has cores (WEB_CONCURRENCY, here ``--workers``), the default pools, on the demo
district; the 300 workers share the demo's two grid-worker accounts (their per-account intake
limit is raised, as `make bench` does for every bench). Prints per level and route: requests,
p50, p99, max, errors (any unexpected status or a transport error), and the phone routes' p99
against the target (< 100 ms at 5x, 0 errors) as PASS/MISS: a measurement, never a failure.

Needs BENCH_DATABASE_URL: an empty throwaway database (`make bench` provides one).
Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_openloop.py [--quick]``.
Results also go to bench/out/openloop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
    HttpConn,
    fmt_ms,
    libpq_url,
    load_demo_district,
    login,
    reset,
    run_bench,
    start_server,
    stop_server,
    wait_ready,
)

from app.config import get_settings

PEAK_RATES = {  # requests per second at 1x a big district's peak hour (module docstring)
    "report": 300 * 3 / 3600,
    "sync": 300 * 30 / 3600,
    "lookup": 300 * 6 / 3600,
    "card": 0.5,
    "console_list": 40 * 2 / 20 / 2,
    "console_case": 40 * 2 / 20 / 2,
    "open311_post": 0.05,
    "open311_poll": 0.1,
}
PHONE = ("report", "sync", "lookup", "card")
LEVELS = (1, 5, 20)
P99_TARGET_MS = 100.0
SEED = 20261202
MAX_CONNS = 512

_POINTS = """
SELECT g.id, c.code, ST_X(ST_PointOnSurface(b.boundary)) AS lon,
       ST_Y(ST_PointOnSurface(b.boundary)) AS lat
FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id
JOIN LATERAL (SELECT code FROM categories WHERE active ORDER BY md5(g.code || code) LIMIT 1) c
  ON true
WHERE b.valid_to IS NULL ORDER BY g.code
"""


@dataclass
class Req:
    method: str
    path: str
    ok: tuple[int, ...]
    body: bytes = b""
    ctype: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    after: Callable[[bytes], None] | None = None  # reads the answer (a sync's next cursor)


@dataclass
class RouteTally:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    samples: list[str] = field(default_factory=list)

    def result(self) -> dict[str, Any]:
        lat = np.asarray(self.latencies_ms)
        n = len(lat)
        return {
            "requests": n + self.errors,
            "errors": self.errors,
            "p50_ms": round(float(np.percentile(lat, 50)), 2) if n else None,
            "p99_ms": round(float(np.percentile(lat, 99)), 2) if n else None,
            "max_ms": round(float(lat.max()), 2) if n else None,
            "error_samples": self.samples,
        }


class Conns:
    """Idle keep-alive connections; a request takes one or opens a new one (open loop)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[HttpConn] = []
        self.opened = 0

    def take(self) -> HttpConn:
        if self.idle:
            return self.idle.pop()
        self.opened += 1
        return HttpConn(self.port)

    def give(self, conn: HttpConn) -> None:
        if len(self.idle) < MAX_CONNS:
            self.idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        for c in self.idle:
            c.close()
        self.idle.clear()


async def send(conns: Conns, req: Req) -> tuple[int, bytes]:
    conn = conns.take()
    try:
        if req.method == "GET":
            extra = "".join(f"{k}: {v}\r\n" for k, v in req.headers.items())
            head = f"GET {req.path} HTTP/1.1\r\n{extra}".encode()
            status, body = await conn._send(head + conn.host)
        else:
            status, body = await conn.post(req.path, req.body, req.headers, content_type=req.ctype)
    except BaseException:
        conn.close()
        raise
    conns.give(conn)
    return status, body


def schedule(
    rates: dict[str, float], seconds: float, rng: random.Random
) -> list[tuple[float, str]]:
    """Poisson arrivals per route over `seconds`, merged in time order."""
    out: list[tuple[float, str]] = []
    for route, rate in rates.items():
        t = rng.expovariate(rate)
        while t < seconds:
            out.append((t, route))
            t += rng.expovariate(rate)
    return sorted(out)


async def run_level(
    conns: Conns, make: dict[str, Callable[[int], Req]], rates: dict[str, float], seconds: float
) -> dict[str, Any]:
    rng = random.Random(SEED + int(sum(rates.values()) * 1000))
    arrivals = schedule(rates, seconds, rng)
    tallies = {r: RouteTally() for r in rates}
    late = 0
    tasks: list[asyncio.Task[None]] = []

    async def one(route: str, i: int, due: float) -> None:
        req = make[route](i)
        tally = tallies[route]
        try:
            status, body = await send(conns, req)
            if status not in req.ok:
                raise RuntimeError(f"HTTP {status}: {body[:160]!r}")
            if req.after is not None:
                req.after(body)
        except Exception as e:
            tally.errors += 1
            if len(tally.samples) < 3:
                tally.samples.append(f"{type(e).__name__}: {e}"[:240])
            return
        tally.latencies_ms.append((time.perf_counter() - due) * 1000)

    start = time.perf_counter() + 0.05
    for i, (t, route) in enumerate(arrivals):
        due = start + t
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -0.01:
            late += 1  # the client itself fell behind by > 10 ms (counted, still sent)
        tasks.append(asyncio.create_task(one(route, i, due)))
    async with asyncio.timeout(120):
        await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    res = {r: t.result() for r, t in tallies.items()}
    total = sum(v["requests"] for v in res.values())
    errors = sum(v["errors"] for v in res.values())
    return {
        "offered_rps": round(sum(rates.values()), 2),
        "achieved_rps": round(total / elapsed, 2),
        "requests": total,
        "errors": errors,
        "error_rate": round(errors / total, 5) if total else None,
        "client_late_sends": late,
        "load_average_1m": round(os.getloadavg()[0], 2),
        "connections_opened": conns.opened,
        "routes": res,
    }


async def amain(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        if await conn.fetchval("SELECT count(*) FROM grids"):
            raise SystemExit("bench_openloop: BENCH_DATABASE_URL must be an empty database")
        try:
            await load_demo_district(url)
            await conn.execute("ANALYZE")
            points = [dict(r) for r in await conn.fetch(_POINTS)]
        except BaseException:
            await reset(conn)
            raise
    finally:
        await conn.close()
    env: dict[str, str | None] = {
        "WANGGE_OPEN311_KEY_PER_MINUTE": "100000",
        "WANGGE_OPEN311_IP_PER_MINUTE": "100000",
    }
    log_path = OUT / "openloop-uvicorn.log"
    proc, port = start_server(url, log_path, env=env, workers=args.workers)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False)
    conns = Conns(port)
    levels: dict[str, Any] = {}
    try:
        await wait_ready(proc, client, log_path)
        password = get_settings().demo_password
        tokens = {u: await login(client, u, password) for u in ("worker", "worker2", "centre")}
        admin = await login(client, "admin", password)
        r = await client.post(
            "/api/v1/open311/keys",
            headers={"Authorization": f"Bearer {admin}"},
            json={"integrator": "bench 12345", "channel": "hotline"},
        )
        r.raise_for_status()
        key = r.json()["key"]
        workers = [{"Authorization": f"Bearer {tokens[u]}"} for u in ("worker", "worker2")]
        centre = {"Authorization": f"Bearer {tokens['centre']}"}
        # Each simulated worker keeps its own sync cursor, starting from a full sync of its
        # account (the phone was in sync when the peak began).
        first: list[str] = []
        for h in workers:
            cur = None
            while True:
                q = "/api/v1/sync?limit=200" + (f"&cursor={cur}" if cur else "")
                page = (await client.get(q, headers=h)).json()
                cur = page["cursor"]
                if not page["has_more"]:
                    break
            first.append(cur)
        cursors = [first[w % 2] for w in range(300)]
        case_ids: list[int] = [
            c["id"]
            for c in (await client.get("/api/v1/cases?limit=100", headers=centre)).json()["items"]
        ] or [1]
        rng = random.Random(SEED)

        def report(i: int) -> Req:
            p = points[i % len(points)]
            body = {
                "category": p["code"],
                "title": "巡查发现问题",
                "description": "人行道井盖破损，有安全隐患",
                "location": {"lon": p["lon"], "lat": p["lat"], "crs": "wgs84", "accuracy_m": 8},
            }

            def created(answer: bytes) -> None:
                case_ids.append(json.loads(answer)["id"])

            return Req(
                "POST",
                "/api/v1/cases",
                (201,),
                json.dumps(body).encode(),
                headers={**workers[i % 2], "Idempotency-Key": str(uuid.uuid4())},
                after=created,
            )

        def sync(i: int) -> Req:
            w = rng.randrange(300)

            def advance(answer: bytes) -> None:
                cursors[w] = json.loads(answer)["cursor"]

            return Req(
                "GET",
                f"/api/v1/sync?limit=200&cursor={cursors[w]}",
                (200,),
                headers=workers[w % 2],
                after=advance,
            )

        def lookup(i: int) -> Req:
            p = points[rng.randrange(len(points))]
            return Req("GET", f"/api/v1/grids/lookup?lon={p['lon']!r}&lat={p['lat']!r}", (200,))

        def card(i: int) -> Req:
            return Req(
                "GET", f"/api/v1/grids/{points[rng.randrange(len(points))]['id']}/card", (200,)
            )

        def console_list(i: int) -> Req:
            return Req("GET", "/api/v1/cases?limit=20", (200,), headers=centre)

        def console_case(i: int) -> Req:
            cid = case_ids[-1 - rng.randrange(min(len(case_ids), 200))]
            return Req("GET", f"/api/v1/cases/{cid}", (200,), headers=centre)

        def open311_post(i: int) -> Req:
            p = points[rng.randrange(len(points))]
            form = {
                "api_key": key,
                "service_code": p["code"],
                "lat": p["lat"],
                "long": p["lon"],
                "description": "市民来电：小区门口垃圾堆放，影响通行",
                "attribute[title]": "12345 热线转办",
            }
            return Req(
                "POST",
                "/open311/v2/requests.json",
                (200, 201),
                urlencode(form).encode(),
                "application/x-www-form-urlencoded",
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )

        def open311_poll(i: int) -> Req:
            return Req("GET", "/open311/v2/requests.json?status=open&page_size=100", (200,))

        make: dict[str, Callable[[int], Req]] = {
            "report": report,
            "sync": sync,
            "lookup": lookup,
            "card": card,
            "console_list": console_list,
            "console_case": console_case,
            "open311_post": open311_post,
            "open311_poll": open311_poll,
        }
        # Warm-up: every route a few times at 1x (connections, prepared statements, caches).
        await run_level(conns, make, {r: max(v, 2.0) for r, v in PEAK_RATES.items()}, 2.0)
        for level in args.levels:
            rates = {r: v * level for r, v in PEAK_RATES.items()}
            print(f"  {level}x peak: {sum(rates.values()):.1f} requests/s offered ...", flush=True)
            levels[f"{level}x"] = await run_level(conns, make, rates, args.seconds)
            await asyncio.sleep(1.0)  # let the queues drain between levels
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited during the run:\n{log_path.read_text()[-2000:]}")
    finally:
        conns.close()
        await client.aclose()
        stop_server(proc)
        c2 = await asyncpg.connect(libpq_url(url))
        try:
            await reset(c2)
        finally:
            await c2.close()
    return {
        "benchmark": "openloop",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "layout": {
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "db_pool_size": get_settings().db_pool_size,
            "db_hot_pool_size": getattr(get_settings(), "db_hot_pool_size", None),
        },
        "peak_rates_per_s": {r: round(v, 4) for r, v in PEAK_RATES.items()},
        "seconds_per_level": args.seconds,
        "levels": levels,
    }


def print_report(res: dict[str, Any]) -> None:
    for name, lv in res["levels"].items():
        print(
            f"\n{name} peak: offered {lv['offered_rps']} req/s, achieved {lv['achieved_rps']}, "
            f"{lv['requests']:,} requests, errors {lv['errors']} (rate {lv['error_rate']}), "
            f"client late sends {lv['client_late_sends']}, connections opened so far "
            f"{lv['connections_opened']}, machine load average {lv.get('load_average_1m')}"
        )
        print(f"  {'route':<16}{'requests':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'errors':>8}")
        for route, r in lv["routes"].items():
            print(
                f"  {route:<16}{r['requests']:>9,}{fmt_ms(r['p50_ms']):>9}"
                f"{fmt_ms(r['p99_ms']):>9}{fmt_ms(r['max_ms']):>9}{r['errors']:>8}"
            )
            for s in r["error_samples"]:
                print(f"    error: {s}")
    five = res["levels"].get("5x")
    if five:
        worst = max((five["routes"][r]["p99_ms"] or 0.0, r) for r in PHONE)
        ok = worst[0] < P99_TARGET_MS and five["errors"] == 0
        print(
            f"\nphone routes at 5x: worst p99 {worst[0]:.1f} ms ({worst[1]}), errors "
            f"{five['errors']} (target p99 < {P99_TARGET_MS:g} ms, 0 errors): "
            f"{'PASS' if ok else 'MISS'}"
        )


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="10 s per level instead of 30")
    p.add_argument("--seconds", type=float, help="seconds per level")
    p.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1),
        help="uvicorn workers (default: WEB_CONCURRENCY, else the CPU count, as `make run`)",
    )
    p.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="1 5 20")
    a = p.parse_args(argv)
    a.seconds = a.seconds or (10.0 if a.quick else 30.0)
    if not (0 < a.seconds <= 600 and 1 <= a.workers <= 64 and all(1 <= x <= 200 for x in a.levels)):
        p.error("--seconds in (0, 600], --workers in [1, 64], levels in [1, 200]")

    async def bench(url: str) -> dict[str, Any]:
        res = await amain(url, a)
        print_report(res)
        return res

    run_bench(
        "openloop",
        (
            f"open-loop benchmark: a big district's peak mix at {', '.join(f'{x}x' for x in a.levels)}"
            f", {a.seconds:g} s each; server as `make run`: {a.workers} uvicorn workers on "
            f"{os.cpu_count()} CPUs (client, server and PostgreSQL share them)"
        ),
        bench,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
