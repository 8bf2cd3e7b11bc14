"""Soak: a realistic mix at several times a district's peak, for 10 minutes (``--quick``: 1).

Two app replicas (uvicorn, one worker each, the loop's clock and the webhook runner on, as in
production) share one database and one media directory; clients alternate between them as a
load balancer would. The mix, per second, is the demo district's peak (273 grids) times
``--factor`` (default 10):

* grid workers (`worker`, `worker2`, `leader`) report a case with a fresh Idempotency-Key and
  then its photo (0.1/s at peak), and sync their phones (GET /api/v1/sync, 1/s);
* the centre registers and dispatches each new case to a department (`dept`); the
  department signs in and feeds back (each step as its report rate, with If-Match);
* consoles: 4 live streams (2 per replica, the centre's scope) stay open for the whole run and
  must receive every event of the run; the map reloads its case list in the district's bbox
  (GET /api/v1/cases?bbox=…, 0.5/s) and its grids (GET /api/v1/grids?bbox=…, 0.5/s); other
  consoles come and go (a stream opened until its `ready`, then dropped: 0.02/s), so that what
  a server keeps per stream shows in its memory if it outlived the stream.

Printed: throughput and p50/p99 per operation, errors (any unexpected status: must be 0; the
exit status is 1 otherwise), events each stream missed (must be 0), and each replica's resident
memory at the start (after a warm-up), every minute and at the end (it must level off, not grow
with the number of requests).

``--trace`` serves bench/_traced_app.py instead (the same app under tracemalloc) and snapshots
each replica after the warm-up, half-way and at the end; bench/trace_diff.py then prints, per
replica and half, what grew: RSS, bytes traced by Python, glibc's malloc totals, the allocation
sites and the object types that grew most (the tracer slows the app down: its latencies are not
comparable). ``--malloc-arena-max N`` runs the replicas with MALLOC_ARENA_MAX=N.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import itertools
import json
import os
import platform
import signal
import sys
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
    ROOT,
    exit_on_sigterm,
    libpq_url,
    load_demo_district,
    login,
    proc_memory_kb,
    reset,
    run_loop,
    start_server,
    stop_all_servers,
    wait_ready,
)
from trace_diff import diff, print_diff

from app import migrate

PEAK = {  # per second, the demo district at its busiest hour
    "report": 0.1,
    "sync": 1.0,
    "map_cases": 0.5,
    "map_grids": 0.5,
    "reconnect": 0.02,
}
REPORTERS = ("worker", "worker2", "leader")
TOKEN_RENEW_SECONDS = float(os.environ.get("SOAK_TOKEN_RENEW_SECONDS", "300"))
STREAMS = 4


@dataclass
class Stats:
    lat: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    samples: list[str] = field(default_factory=list)

    def ok(self, op: str, seconds: float) -> None:
        self.lat[op].append(seconds * 1000)

    def bad(self, op: str, what: str) -> None:
        self.errors[op] += 1
        if len(self.samples) < 10:
            self.samples.append(f"{op}: {what}"[:300])


def _photo(i: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (i * 37 % 256, i * 91 % 256, 120)).save(buf, "JPEG", quality=80)
    return buf.getvalue()


class Soak:
    def __init__(self, bases: list[str], tokens: dict[str, str], args: argparse.Namespace) -> None:
        self.bases = bases
        self.tokens = tokens
        self.args = args
        self.stats = Stats()
        self.rr = 0
        self.client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=200))
        self.to_register: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self.to_dispatch: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self.to_sign_in: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self.to_feed_back: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
        self.cases: list[int] = []
        self.stream_events: list[set[int]] = [set() for _ in range(STREAMS)]
        self.first_event_id = 0
        self.points: dict[str, tuple[float, float]] = {}
        self.category = ""
        self.department = 0
        self.bbox = ""
        self.cursors: dict[str, str | None] = {}

    def base(self) -> str:
        self.rr += 1
        return self.bases[self.rr % len(self.bases)]

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    async def timed(
        self, op: str, method: str, path: str, ok: tuple[int, ...], **kw: Any
    ) -> httpx.Response | None:
        t0 = time.perf_counter()
        try:
            r = await self.client.request(method, self.base() + path, **kw)
        except httpx.HTTPError as e:
            self.stats.bad(op, f"{type(e).__name__}: {e}")
            return None
        if r.status_code not in ok:
            self.stats.bad(op, f"HTTP {r.status_code}: {r.text[:200]}")
            return None
        self.stats.ok(op, time.perf_counter() - t0)
        return r

    # --- the operations -----------------------------------------------------------------------

    async def report(self, i: int) -> None:
        who = REPORTERS[i % len(REPORTERS)]
        lon, lat = self.points[who]
        body = {
            "category": self.category,
            "title": f"SOAK {i}",
            "description": "井盖破损，影响通行",
            "location": {"lon": lon + (i % 7) * 1e-5, "lat": lat + (i % 5) * 1e-5},
        }
        r = await self.timed(
            "report",
            "POST",
            "/api/v1/cases",
            (201,),
            json=body,
            headers=self.h(who, **{"Idempotency-Key": str(uuid.uuid4())}),
        )
        if r is None:
            return
        case_id = r.json()["id"]
        self.cases.append(case_id)
        p = await self.timed(
            "photo",
            "POST",
            f"/api/v1/cases/{case_id}/attachments",
            (201,),
            files={"files": (f"{i}.jpg", _photo(i), "image/jpeg")},
            headers=self.h(who),
        )
        if p is not None:
            await self.to_register.put((case_id, 1))

    async def action(
        self, op: str, who: str, src: asyncio.Queue[tuple[int, int]], dst: Any, body: dict
    ) -> None:
        case_id, version = await src.get()
        r = await self.timed(
            op,
            "POST",
            f"/api/v1/cases/{case_id}/actions/{op}",
            (200,),
            json=body,
            headers=self.h(who, **{"If-Match": f'"{version}"'}),
        )
        if r is not None and dst is not None:
            await dst.put((case_id, int(r.headers["etag"].strip('"'))))

    async def sync(self, i: int) -> None:
        who = REPORTERS[i % len(REPORTERS)]
        cursor = self.cursors.get(who)
        r = await self.timed(
            "sync",
            "GET",
            "/api/v1/sync",
            (200,),
            params={"limit": 100, **({"cursor": cursor} if cursor else {})},
            headers=self.h(who),
        )
        if r is not None:
            self.cursors[who] = r.json()["cursor"]

    async def map_cases(self, i: int) -> None:
        await self.timed(
            "map_cases",
            "GET",
            "/api/v1/cases",
            (200,),
            params={"bbox": self.bbox, "limit": 200},
            headers=self.h("centre"),
        )

    async def map_grids(self, i: int) -> None:
        await self.timed(
            "map_grids",
            "GET",
            "/api/v1/grids",
            (200,),
            params={"bbox": self.bbox, "limit": 100},
            headers=self.h("street"),
        )

    async def reconnect(self, i: int) -> None:
        """A console that opens its stream, gets `ready` and goes away."""
        t0 = time.perf_counter()
        try:
            async with self.client.stream(
                "GET", self.base() + "/api/v1/events/stream", headers=self.h("centre")
            ) as r:
                if r.status_code != 200:
                    self.stats.bad("reconnect", f"HTTP {r.status_code}")
                    return
                async for line in r.aiter_lines():
                    if line.startswith("event:") and line[6:].strip() == "ready":
                        break
                else:
                    self.stats.bad("reconnect", "the stream ended before `ready`")
                    return
        except httpx.HTTPError as e:
            self.stats.bad("reconnect", f"{type(e).__name__}: {e}")
            return
        self.stats.ok("reconnect", time.perf_counter() - t0)

    async def stream(self, n: int, ready: asyncio.Event, stop: asyncio.Event) -> None:
        base = self.bases[n % len(self.bases)]
        got = self.stream_events[n]
        try:
            async with self.client.stream(
                "GET", base + "/api/v1/events/stream", headers=self.h("centre"), timeout=None
            ) as r:
                if r.status_code != 200:
                    self.stats.bad("stream", f"HTTP {r.status_code}")
                    return
                event = None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:") and event:
                        data = orjson.loads(line[5:])
                        if event == "ready":
                            ready.set()
                        elif event in ("end", "resync"):
                            self.stats.bad("stream", f"{event}: {data}")
                        elif "id" in data:
                            got.add(int(data["id"]))
                    if stop.is_set():
                        return
        except httpx.HTTPError as e:
            if not stop.is_set():
                self.stats.bad("stream", f"{type(e).__name__}: {e}")

    # --- pacing -------------------------------------------------------------------------------

    async def paced(self, rate: float, work: Any, until: float) -> None:
        """Start `work(i)` at `rate` per second until `until` (open loop: a slow answer does
        not slow the arrivals), at most 64 in flight."""
        if rate <= 0:
            return
        gate = asyncio.Semaphore(64)
        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        i = 0
        while True:
            at = start + i / rate
            if at >= until:
                break
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            await gate.acquire()

            async def one(k: int) -> None:
                try:
                    await work(k)
                finally:
                    gate.release()

            t = asyncio.create_task(one(i))
            tasks.add(t)
            t.add_done_callback(tasks.discard)
            i += 1
        if tasks:
            await asyncio.wait(tasks, timeout=60)

    async def stage(self, work: Any, until: float) -> None:
        while time.monotonic() < until:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(work(), timeout=max(0.1, until - time.monotonic()))


async def _setup(url: str) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await reset(conn)
    finally:
        await conn.close()
    await load_demo_district(url)
    conn = await asyncpg.connect(libpq_url(url))
    try:
        points = {}
        for who in REPORTERS:
            row = await conn.fetchrow(
                """
                SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (
                    SELECT ST_PointOnSurface(b.boundary) p FROM users u
                    JOIN posts po ON po.user_id = u.id JOIN post_grids pg ON pg.post_id = po.id
                    JOIN grid_boundaries b ON b.grid_id = pg.grid_id AND b.valid_to IS NULL
                    WHERE u.username = $1 ORDER BY pg.grid_id LIMIT 1) x
                """,
                who,
            )
            points[who] = (row["lon"], row["lat"])
        category = await conn.fetchval("SELECT code FROM categories ORDER BY code LIMIT 1")
        department = await conn.fetchval(
            "SELECT p.department_id FROM posts p JOIN users u ON u.id = p.user_id "
            "WHERE u.username = 'dept' AND p.department_id IS NOT NULL LIMIT 1"
        )
        box = await conn.fetchrow(
            "SELECT ST_XMin(e) a, ST_YMin(e) b, ST_XMax(e) c, ST_YMax(e) d FROM "
            "(SELECT ST_Extent(boundary) e FROM areas WHERE level = 'district') x"
        )
    finally:
        await conn.close()
    return {
        "points": points,
        "category": category,
        "department": department,
        "bbox": f"{box['a']:.5f},{box['b']:.5f},{box['c']:.5f},{box['d']:.5f}",
    }


def _pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 1) if xs else None


async def amain(url: str, args: argparse.Namespace) -> dict[str, Any]:
    setup = await _setup(url)
    media = OUT / "soak-media"
    env = {
        "WANGGE_MEDIA_BACKEND": "dir",
        "WANGGE_MEDIA_DIR": str(media),  # one shared directory for both replicas
        "WANGGE_SCHEDULER_SECONDS": "10",
        "ENV": "development",
    }
    trace_dir = OUT / "soak-trace"
    if args.malloc_arena_max:
        env["MALLOC_ARENA_MAX"] = str(args.malloc_arena_max)
    serve: dict[str, Any] = {}
    if args.trace is not None:
        for old in trace_dir.glob("trace-*"):
            old.unlink()
        env["WANGGE_BENCH_TRACE_DIR"] = str(trace_dir)
        env["WANGGE_BENCH_TRACE_FRAMES"] = str(args.trace)
        serve = {"app": "_traced_app:app", "app_dir": "bench"}
    servers = []
    for i in range(args.replicas):
        log = OUT / f"soak-app{i}.log"
        proc, port = start_server(url, log, env=env, **serve)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as c:
            await wait_ready(proc, c, log)
        servers.append((proc, port))
    bases = [f"http://127.0.0.1:{port}" for _, port in servers]
    tokens: dict[str, str] = {}

    async def sign_in_all() -> None:
        async with httpx.AsyncClient(base_url=bases[0], timeout=30) as c:
            for who in (*REPORTERS, "street", "dept", "centre"):
                tokens[who] = await login(c, who, "Wangge#2026")

    await sign_in_all()
    soak = Soak(bases, tokens, args)
    soak.points = setup["points"]
    soak.category = setup["category"]
    soak.department = setup["department"]
    soak.bbox = setup["bbox"]

    stop = asyncio.Event()
    ready = [asyncio.Event() for _ in range(STREAMS)]
    streams = [asyncio.create_task(soak.stream(n, ready[n], stop)) for n in range(STREAMS)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 30)
    conn = await asyncpg.connect(libpq_url(url))
    first_event = await conn.fetchval("SELECT coalesce(max(id), 0) FROM events")

    # Warm-up (not measured), then the memory at the start.
    f = args.factor
    warm = time.monotonic() + min(20.0, args.seconds / 6)
    await soak.paced(PEAK["report"] * f, soak.report, warm)
    await soak.paced(PEAK["map_cases"] * f, soak.map_cases, warm)
    soak.stats = Stats()
    mem: list[dict[str, Any]] = []

    def sample(at: float) -> None:
        mem.append(
            {
                "t_s": round(at),
                **{
                    f"app{i}_mb": proc_memory_kb(p.pid)["VmRSS"] // 1024
                    for i, (p, _) in enumerate(servers)
                },
            }
        )

    traces: list[list[Path]] = [[] for _ in servers]

    async def snapshot() -> None:
        """Each traced replica writes a snapshot (SIGUSR1); wait until all are written."""
        if args.trace is None:
            return
        for i, (p, _) in enumerate(servers):
            n = len(traces[i]) + 1
            traces[i].append(trace_dir / f"trace-{p.pid}-{n}")
            p.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 300
        while not all(Path(str(t[-1]) + ".done").exists() for t in traces):
            if time.monotonic() > deadline:
                raise SystemExit("bench_soak: a replica wrote no trace snapshot in 300 s")
            await asyncio.sleep(0.5)

    sample(0)
    await snapshot()
    t0 = time.monotonic()
    until = t0 + args.seconds
    report_rate = PEAK["report"] * f

    async def renew() -> None:
        """Sign in again every TOKEN_RENEW_SECONDS: a run outlives an access token (15 min)."""
        while time.monotonic() + TOKEN_RENEW_SECONDS < until:
            await asyncio.sleep(TOKEN_RENEW_SECONDS)
            await sign_in_all()

    async def sampler() -> None:
        half = args.trace is not None
        while time.monotonic() < until:
            await asyncio.sleep(min(60.0, max(1.0, args.seconds / 10)))
            sample(time.monotonic() - t0)
            if half and time.monotonic() - t0 >= args.seconds / 2:
                half = False
                await snapshot()

    dept = soak.department
    await asyncio.gather(
        sampler(),
        renew(),
        soak.paced(report_rate, soak.report, until),
        soak.paced(PEAK["sync"] * f, soak.sync, until),
        soak.paced(PEAK["map_cases"] * f, soak.map_cases, until),
        soak.paced(PEAK["map_grids"] * f, soak.map_grids, until),
        soak.paced(PEAK["reconnect"] * f, soak.reconnect, until),
        soak.stage(
            lambda: soak.action("register", "centre", soak.to_register, soak.to_dispatch, {}),
            until,
        ),
        soak.stage(
            lambda: soak.action(
                "dispatch",
                "centre",
                soak.to_dispatch,
                soak.to_sign_in,
                {"lead_department_id": dept},
            ),
            until,
        ),
        soak.stage(
            lambda: soak.action("sign_in", "dept", soak.to_sign_in, soak.to_feed_back, {}),
            until,
        ),
        soak.stage(
            lambda: soak.action(
                "feedback", "dept", soak.to_feed_back, None, {"note": "已修复，附照片"}
            ),
            until,
        ),
    )
    elapsed = time.monotonic() - t0
    sample(elapsed)
    await snapshot()
    await asyncio.sleep(3)  # the last events reach the streams
    stop.set()
    want = set(
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM events WHERE id > $1 AND case_id IS NOT NULL", first_event
        )
    )
    await conn.close()
    for t in streams:
        t.cancel()
    await soak.client.aclose()

    ops = {}
    for op in (
        "report",
        "photo",
        "register",
        "dispatch",
        "sign_in",
        "feedback",
        "sync",
        "map_cases",
        "map_grids",
        "reconnect",
    ):
        xs = soak.stats.lat.get(op, [])
        ops[op] = {
            "count": len(xs),
            "per_s": round(len(xs) / elapsed, 2),
            "p50_ms": _pct(xs, 50),
            "p99_ms": _pct(xs, 99),
            "errors": soak.stats.errors.get(op, 0),
        }
    missed = [len(want - got) for got in soak.stream_events]
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}",
        "seconds": round(elapsed, 1),
        "factor": f,
        "replicas": len(servers),
        "operations": ops,
        "requests_per_s": round(sum(int(o["count"] or 0) for o in ops.values()) / elapsed, 1),
        "errors": sum(int(o["errors"] or 0) for o in ops.values())
        + soak.stats.errors.get("stream", 0),
        "error_samples": soak.stats.samples,
        "events": len(want),
        "stream_missed": missed,
        "memory": mem,
        "malloc_arena_max": args.malloc_arena_max,
        "traces": [[str(x) for x in t] for t in traces],
    }


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="1 minute instead of 10")
    p.add_argument("--seconds", type=float, help="how long (default 600, --quick 60)")
    p.add_argument("--factor", type=float, default=10, help="times the district's peak (10)")
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument(
        "--trace",
        type=int,
        nargs="?",
        const=25,
        metavar="FRAMES",
        help="tracemalloc snapshots (FRAMES per allocation, 25; 0: malloc totals and object\n"
        "counts only, no tracer), diffed at the end",
    )
    p.add_argument("--malloc-arena-max", type=int, help="MALLOC_ARENA_MAX for the replicas")
    args, _ = p.parse_known_args(argv)
    args.seconds = args.seconds or (60.0 if args.quick else 600.0)
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        raise SystemExit("bench_soak: set BENCH_DATABASE_URL (or run scripts/bench.sh)")
    exit_on_sigterm()
    OUT.mkdir(parents=True, exist_ok=True)
    print(
        f"soak: {args.seconds:g} s at {args.factor:g}x the demo district's peak on "
        f"{args.replicas} replicas; {os.cpu_count()} CPUs",
        flush=True,
    )
    migrate.upgrade(url)
    try:
        report = run_loop(amain(url, args))
    finally:
        stop_all_servers()
    print(
        f"\n{'operation':<10} {'count':>7} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
    )
    for op, o in report["operations"].items():
        print(
            f"{op:<10} {o['count']:>7} {o['per_s']:>7} {o['p50_ms'] or '-':>8} "
            f"{o['p99_ms'] or '-':>8} {o['errors']:>7}"
        )
    print(
        f"total {report['requests_per_s']} req/s over {report['seconds']} s; errors "
        f"{report['errors']}; events {report['events']}, missed per stream "
        f"{report['stream_missed']}"
    )
    print(
        "memory (MB): "
        + "; ".join(
            f"{m['t_s']} s: " + ", ".join(f"{v}" for k, v in m.items() if k != "t_s")
            for m in report["memory"]
        )
    )
    for s in report["error_samples"]:
        print("  error:", s)
    for i, t in enumerate(report["traces"]):
        for before, after in itertools.pairwise(t):
            print(f"\napp{i}, {Path(before).name} → {Path(after).name}:")
            print_diff(diff(Path(before), Path(after), top=12))
    (OUT / "soak.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"results in {(OUT / 'soak.json').relative_to(ROOT)}")
    if report["errors"] or any(report["stream_missed"]):
        raise SystemExit("bench_soak: errors or missed events")


if __name__ == "__main__":
    main(sys.argv[1:])
