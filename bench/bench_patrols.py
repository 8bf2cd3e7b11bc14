"""Benchmark field work: track batches from a district's whole force, and a month's coverage.

One uvicorn server (1 worker) on the demo district (with its month of demo patrols), signed in as
`worker`. Variants, interleaved in short slices with rotating order, each driven by the same N
(16) concurrent keep-alive clients:

* ``intake``   POST /api/v1/cases with a fresh Idempotency-Key: the floor the issue names;
* ``points``   POST /api/v1/patrols/{id}/points, a batch of 60 fixes (GCJ-02, a walk at ~1 m/s,
  a fix a second) to one of 300 patrols in progress (one per simulated worker; rows made
  directly for the `worker` account, since one account has one patrol at a time through the
  API), each patrol's clock advancing 60 s per batch;
* ``coverage`` GET /api/v1/grids/{grid}/coverage of the demo worker's grid over the last 30 days
  (the demo's month of patrols, and the 300 in progress), as the `community` account, by one
  client at a time (a latency, not a throughput);
* ``healthz``  GET /healthz by one client, the floor beside the coverage figure.

Reported: req/s, p50/p99 per variant; points/s against the need of 300 workers × 60 points a
minute (300 points/s, 5 batches/s); `points` req/s as a share of `intake`'s; the coverage p50/p99
against the 200 ms target, and beside healthz. Measurements, never failures (no timed asserts).

Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_patrols.py [--quick]``
(``scripts/bench.sh`` provides the database). Results also go to bench/out/patrols.json.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

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
    reset,
    run_bench,
    start_server,
    stop_server,
    wait_ready,
)

from app.config import get_settings
from app.schemas import SHANGHAI
from geo.crs import wgs84_to_gcj02
from geo.measure import GEOD

WORKERS = 300
BATCH = 60
VARIANTS = ("intake", "points", "coverage", "healthz")
TARGET_COVERAGE_MS = 200.0


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="short slices (a smoke run)")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seconds", type=float, default=None, help="per variant, all slices")
    p.add_argument("--rounds", type=int, default=4)
    a = p.parse_args(argv)
    if a.seconds is None:
        a.seconds = 4.0 if a.quick else 20.0
    return a


class Patrols:
    """300 patrols in progress and each one's next batch time."""

    def __init__(self, ids: list[int], lon: float, lat: float, t0: datetime) -> None:
        self.ids = ids
        self.lon, self.lat = lon, lat
        self.next = {pid: t0 for pid in ids}
        self.turn = 0

    def body(self) -> tuple[int, bytes]:
        pid = self.ids[self.turn % len(self.ids)]
        self.turn += 1
        t = self.next[pid]
        self.next[pid] = t + timedelta(seconds=BATCH)
        pts = []
        lon, lat = self.lon, self.lat
        heading = (pid * 37) % 360
        for i in range(BATCH):
            lon, lat, _ = GEOD.fwd(lon, lat, heading + (i % 10), 1.0)
            glon, glat = wgs84_to_gcj02(lon, lat)
            pts.append(
                {
                    "at": (t + timedelta(seconds=i)).isoformat(),
                    "lon": round(glon, 7),
                    "lat": round(glat, 7),
                    "accuracy_m": 8 + (i % 5),
                    "speed_mps": 1.0,
                }
            )
        return pid, json.dumps({"points": pts}, separators=(",", ":")).encode()


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await reset(conn)
        await load_demo_district(url)
        worker = int(await conn.fetchval("SELECT id FROM users WHERE username = 'worker'"))
        grid = await conn.fetchrow(
            "SELECT pg.grid_id, ST_X(ST_PointOnSurface(b.boundary)) AS lon, "
            "ST_Y(ST_PointOnSurface(b.boundary)) AS lat FROM posts p "
            "JOIN post_grids pg ON pg.post_id = p.id JOIN grid_boundaries b "
            "ON b.grid_id = pg.grid_id AND b.valid_to IS NULL "
            "JOIN users u ON u.id = p.user_id WHERE u.username = 'worker' ORDER BY pg.grid_id LIMIT 1"
        )
        t0 = datetime.now(SHANGHAI).replace(microsecond=0) - timedelta(days=2)
        ids = [
            int(r["id"])
            for r in await conn.fetch(
                """
                INSERT INTO patrols (district_id, street_id, community_id, grid_id, worker_id,
                                     started_at)
                SELECT coalesce(s.parent_id, s.id, c.id), s.id, c.id, g.id, $1, $3
                FROM grids g JOIN areas c ON c.id = g.community_id
                LEFT JOIN areas s ON s.id = c.parent_id, generate_series(1, $4)
                WHERE g.id = $2 RETURNING id
                """,
                worker,
                grid["grid_id"],
                t0,
                WORKERS,
            )
        ]
        patrols = Patrols(ids, grid["lon"], grid["lat"], t0 + timedelta(seconds=1))
        category = await conn.fetchval("SELECT code FROM categories ORDER BY code LIMIT 1")
        log_path = OUT / "patrols-server.log"
        proc, port = start_server(url, log_path)
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False)
        conns: list[HttpConn] = []
        try:
            await wait_ready(proc, client, log_path)
            pw = get_settings().demo_password
            w = {"Authorization": f"Bearer {await login(client, 'worker', pw)}"}
            cm = {"Authorization": f"Bearer {await login(client, 'community', pw)}"}
            case = json.dumps(
                {
                    "category": category,
                    "title": "巡查发现问题",
                    "location": {"lon": grid["lon"], "lat": grid["lat"], "crs": "wgs84"},
                },
                ensure_ascii=False,
            ).encode()
            since = (datetime.now(SHANGHAI) - timedelta(days=30)).date().isoformat()
            cov_path = f"/api/v1/grids/{grid['grid_id']}/coverage?since={since}"
            c = args.concurrency
            conns = [HttpConn(port, w) for _ in range(c)]
            cconns = [HttpConn(port, cm) for _ in range(c)]
            stored = {"points": 0}

            def intake_call(h: HttpConn) -> Call:
                async def call(i: int) -> None:
                    s, b = await h.post(
                        "/api/v1/cases", case, {"Idempotency-Key": str(uuid.uuid4())}
                    )
                    if s != 201:
                        raise RuntimeError(f"intake {s}: {b[:200]!r}")

                return call

            def points_call(h: HttpConn) -> Call:
                async def call(i: int) -> None:
                    pid, body = patrols.body()
                    s, b = await h.post(f"/api/v1/patrols/{pid}/points", body)
                    if s != 200:
                        raise RuntimeError(f"points {s}: {b[:200]!r}")
                    stored["points"] += json.loads(b)["stored"]

                return call

            def get_call(h: HttpConn, path: str) -> Call:
                async def call(i: int) -> None:
                    s = await h.get(path)
                    if s != 200:
                        raise RuntimeError(f"GET {path}: {s}")

                return call

            calls = {
                "intake": [intake_call(h) for h in conns],
                "points": [points_call(h) for h in conns],
                # latency, not throughput: one client at a time
                "coverage": [get_call(cconns[0], cov_path)],
                "healthz": [get_call(conns[0], "/healthz")],
            }
            r = await client.get(cov_path, headers=cm)
            coverage = r.json()
            print(
                f"grid {grid['grid_id']}: {coverage['cells']} cells, {coverage['visited']} visited "
                f"by {coverage['patrols']} patrols in 30 days; {WORKERS} patrols in progress",
                flush=True,
            )
            for v in VARIANTS:  # warm-up
                warm = Tally()
                for h in (*conns, *cconns):
                    await h.connect()
                await drive(warm, 1, calls[v], 1.0 if args.quick else 3.0)
                if warm.errors:
                    raise RuntimeError(f"{v} fails during warm-up: {warm.error_samples}")
            stored["points"] = 0
            tallies = {v: Tally() for v in VARIANTS}
            slice_s = args.seconds / args.rounds
            for rnd in range(args.rounds):
                order = VARIANTS[rnd % len(VARIANTS) :] + VARIANTS[: rnd % len(VARIANTS)]
                for v in order:
                    for h in (*conns, *cconns):
                        await h.connect()
                    await drive(tallies[v], 1, calls[v], slice_s)
        finally:
            for h in (*conns, *cconns):
                h.close()
            await client.aclose()
            stop_server(proc)
        res = {v: t.result() for v, t in tallies.items()}
        need_rps = WORKERS / 60
        pts_rps = res["points"]["rps"] * BATCH
        report = {
            "concurrency": args.concurrency,
            "seconds_per_variant": args.seconds,
            "variants": res,
            "points_per_s": round(pts_rps, 1),
            "points_stored": stored["points"],
            "need_batches_per_s": round(need_rps, 2),
            "headroom": round(res["points"]["rps"] / need_rps, 1) if need_rps else None,
            "points_vs_intake": round(res["points"]["rps"] / res["intake"]["rps"], 3)
            if res["intake"]["rps"]
            else None,
            "coverage_vs_healthz_p50": round(
                res["coverage"]["p50_ms"] / res["healthz"]["p50_ms"], 1
            )
            if res["healthz"]["p50_ms"]
            else None,
            "coverage": {k: coverage[k] for k in ("cells", "visited", "patrols")},
            "cpus": os.cpu_count(),
        }
        print()
        for v in VARIANTS:
            x = res[v]
            print(
                f"{v:9s} {x['rps']:8.1f} req/s  p50 {fmt_ms(x['p50_ms'])}  p99 {fmt_ms(x['p99_ms'])}"
                f"  errors {x['errors']}"
            )
        print(
            f"\npoints: {pts_rps:,.0f} points/s ({res['points']['rps']:.1f} batches of {BATCH}/s); "
            f"300 workers × 60 points a minute need {need_rps:.1f} batches/s: headroom "
            f"×{report['headroom']}; batches/s vs intake req/s = {report['points_vs_intake']}"
        )
        p50 = res["coverage"]["p50_ms"]
        p99 = res["coverage"]["p99_ms"]
        print(
            f"coverage of a grid for 30 days: p50 {fmt_ms(p50)}, p99 {fmt_ms(p99)} (target "
            f"< {TARGET_COVERAGE_MS:.0f} ms: {'PASS' if p99 and p99 < TARGET_COVERAGE_MS else 'MISS'}"
            f"); ×{report['coverage_vs_healthz_p50']} the p50 of /healthz"
        )
        if not math.isfinite(pts_rps):
            raise SystemExit(1)
        return report
    finally:
        await conn.close()


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    run_bench(
        "patrols",
        f"patrols benchmark: {args.concurrency} clients, {args.seconds:g} s per variant in "
        f"{args.rounds} slices; {os.cpu_count()} CPUs",
        lambda url: bench(url, args),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
