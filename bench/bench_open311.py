"""Benchmark the Open311 door beside the phones' intake, side by side in one run.

One uvicorn server (1 worker) on the demo district, driven in turn by the same N (8) concurrent
keep-alive clients, in short interleaved slices (the machine is shared and noisy):

* ``cases``    POST /api/v1/cases as the grid worker (JSON, a fresh Idempotency-Key each);
* ``open311``  POST /open311/v2/requests.json with a hotline integrator's api_key (form-encoded,
  a fresh Idempotency-Key each): the key check (one UPDATE … RETURNING), the same intake
  statement, the Open311 record, the event, the stored response;
* ``list``     GET /open311/v2/requests.json?status=open&page_size=100 (a poller's page);
* ``xml``      the same page as XML (ElementTree);
* ``feed``     GET /open311/v2/servicerequestupdates.json?page_size=100 (the update feed).

Reported: req/s, p50/p99, errors, and open311/cases, xml/list ratios. The rate limits are lifted
for the run (WANGGE_OPEN311_*_PER_MINUTE). Needs BENCH_DATABASE_URL (an empty throwaway database;
``make bench`` gives one); results also go to bench/out/open311.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
    Call,
    HttpConn,
    Tally,
    drive,
    exit_on_sigterm,
    fmt_ms,
    fmt_ratio,
    libpq_url,
    load_demo_district,
    login,
    ratios,
    reset,
    run_loop,
    start_server,
    stop_all_servers,
    wait_ready,
)

from app import migrate
from app.config import get_settings

VARIANTS = ("cases", "open311", "list", "xml", "feed")
LABELS = {
    "cases": "POST /api/v1/cases (JSON)",
    "open311": "POST /open311/v2/requests.json",
    "list": "GET requests.json (100 open)",
    "xml": "GET requests.xml (100 open)",
    "feed": "GET servicerequestupdates.json",
}
_POINTS = """
SELECT c.code, ST_X(ST_PointOnSurface(b.boundary)) AS lon, ST_Y(ST_PointOnSurface(b.boundary)) AS lat
FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id
JOIN LATERAL (SELECT code FROM categories WHERE active ORDER BY md5(g.code || code) LIMIT 1) c
  ON true
WHERE b.valid_to IS NULL ORDER BY g.code
"""


def post_call(h: HttpConn, path: str, bodies: list[bytes], ctype: str, ok: int) -> Call:
    async def call(i: int) -> bool:
        status, answer = await h.post(
            path, bodies[i], {"Idempotency-Key": str(uuid.uuid4())}, content_type=ctype
        )
        if status != ok:
            raise RuntimeError(f"HTTP {status}: {answer[:300]!r}")
        return True

    return call


def get_call(h: HttpConn, path: str) -> Call:
    async def call(i: int) -> bool:
        status, answer = await h.fetch(path)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {answer[:300]!r}")
        return True

    return call


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await reset(conn)
        await load_demo_district(url)
        await conn.execute("ANALYZE")
        points = [dict(r) for r in await conn.fetch(_POINTS)]
    finally:
        await conn.close()
    log_path = OUT / "open311-uvicorn.log"
    env: dict[str, str | None] = {
        "WANGGE_OPEN311_KEY_PER_MINUTE": "100000",
        "WANGGE_OPEN311_IP_PER_MINUTE": "100000",
        "WANGGE_DB_POOL_SIZE": str(2 * args.concurrency),
    }
    proc, port = start_server(url, log_path, env=env)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False)
    conns: list[HttpConn] = []
    try:
        await wait_ready(proc, client, log_path)
        password = get_settings().demo_password
        admin = await login(client, "admin", password)
        worker = await login(client, "worker", password)
        r = await client.post(
            "/api/v1/open311/keys",
            headers={"Authorization": f"Bearer {admin}"},
            json={"integrator": "bench 12345", "channel": "hotline"},
        )
        r.raise_for_status()
        key = r.json()["key"]
        json_bodies = [
            json.dumps(
                {
                    "category": p["code"],
                    "title": "市民反映问题",
                    "description": "小区门口垃圾堆放，影响通行",
                    "location": {"lon": p["lon"], "lat": p["lat"]},
                }
            ).encode()
            for p in points
        ]
        form_bodies = [
            urlencode(
                {
                    "api_key": key,
                    "service_code": p["code"],
                    "lat": p["lat"],
                    "long": p["lon"],
                    "description": "小区门口垃圾堆放，影响通行",
                    "attribute[title]": "市民反映问题",
                }
            ).encode()
            for p in points
        ]
        bearer = {"Authorization": f"Bearer {worker}"}
        conns = [HttpConn(port, bearer) for _ in range(args.concurrency)]
        form = "application/x-www-form-urlencoded"
        calls = {
            "cases": [
                post_call(h, "/api/v1/cases", json_bodies, "application/json", 201) for h in conns
            ],
            "open311": [
                post_call(h, "/open311/v2/requests.json", form_bodies, form, 200) for h in conns
            ],
            "list": [
                get_call(h, "/open311/v2/requests.json?status=open&page_size=100") for h in conns
            ],
            "xml": [
                get_call(h, "/open311/v2/requests.xml?status=open&page_size=100") for h in conns
            ],
            "feed": [
                get_call(h, "/open311/v2/servicerequestupdates.json?page_size=100") for h in conns
            ],
        }
        for v in VARIANTS:  # warm-up
            warm = Tally()
            await drive(warm, len(points), calls[v], args.warmup)
            if warm.errors:
                raise RuntimeError(f"{v} fails during warm-up: {warm.error_samples}")
        tallies = {v: Tally() for v in VARIANTS}
        slice_s = args.seconds / args.rounds
        for rnd in range(args.rounds):
            order = VARIANTS[rnd % len(VARIANTS) :] + VARIANTS[: rnd % len(VARIANTS)]
            for v in order:
                for h in conns:
                    await h.connect()
                await drive(tallies[v], len(points), calls[v], slice_s)
    finally:
        for h in conns:
            h.close()
        await client.aclose()
        stop_all_servers()
    res = {v: t.result() for v, t in tallies.items()}
    return {
        "variants": res,
        "ratios": {
            "open311_vs_cases": ratios(res["open311"], res["cases"]),
            "xml_vs_json": ratios(res["xml"], res["list"]),
        },
    }


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="4 s per variant instead of 10")
    p.add_argument("--concurrency", type=int, default=8)
    args = p.parse_args(argv)
    args.seconds = 4.0 if args.quick else 10.0
    args.rounds = 4 if args.quick else 8
    args.warmup = 0.5
    if not 1 <= args.concurrency <= 64:
        p.error("--concurrency in [1, 64]")
    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        raise SystemExit("bench_open311: set BENCH_DATABASE_URL (or run scripts/bench.sh)")
    exit_on_sigterm()
    OUT.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)
    t0 = time.perf_counter()
    result = run_loop(bench(url, args))
    print(f"\n  {'variant':<34}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'errors':>8}")
    for v in VARIANTS:
        r = result["variants"][v]
        print(
            f"  {LABELS[v]:<34}{r['rps']:>9,.0f}{fmt_ms(r['p50_ms']):>9}{fmt_ms(r['p99_ms']):>9}"
            f"{r['requests']:>10,}{r['errors']:>8}"
        )
        for sample in r["error_samples"]:
            print(f"  error in {v}: {sample}")
    o, x = result["ratios"]["open311_vs_cases"], result["ratios"]["xml_vs_json"]
    print(
        f"  open311 / cases throughput {fmt_ratio(o['throughput'])}, p99 {fmt_ratio(o['p99'])}; "
        f"xml / json throughput {fmt_ratio(x['throughput'])}"
    )
    result["total_s"] = round(time.perf_counter() - t0, 1)
    (OUT / "open311.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    if sum(r["errors"] for r in result["variants"].values()):
        raise SystemExit("bench_open311: errors")


if __name__ == "__main__":
    main(sys.argv[1:])
