"""Benchmark the community mechanisms' read paths at a busy community's scale.

The demo district (with its demo quarter of the community mechanisms) is loaded, then 立新社区
is made busy in SQL (seeded): 5,000 more resources of its co-building units spread over ~10 km
(the matcher looks at the whole district), 500 more deliberated matters at every step with 25
votes each and 10 ratings for the finished ones (12,500 opinions), and 2,000 more tracked tasks
of its member units from its fourth-quarter meeting. One uvicorn server (1 worker, the clock
off). Side by side, in interleaved slices with rotating order, `--concurrency` clients each
(default 4) GET:

* ``card``     /api/v1/grids/{id}/card — a grid's public service card (the baseline: a small
  public read the rest of the API already has);
* ``board``    /api/v1/public/areas/{立新}/board — the public deliberation board (500+ matters);
* ``matches``  /api/v1/areas/{立新}/needs/{id}/matches — suggested resources for an open need;
* ``report``   /api/v1/areas/{立新}/meetings/{Q4}/report — the 述职 report (2,000+ tasks);
* ``summary``  /api/v1/areas/{江边街道}/evaluations/summary?period=2026Q3 — two-way evaluation;
* ``tasks``    /api/v1/areas/{立新}/tasks?state=open — the open tracked tasks.

Reported: requests/s, p50/p99 and each variant's p50 relative to the card's. Every answer must be
200 (errors must be 0). Needs BENCH_DATABASE_URL (an empty throwaway database; it is migrated,
loaded and truncated again at the end); ``scripts/bench.sh`` (``make bench``) provides one.
Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_community.py [--quick]``.
Results also go to bench/out/community.json.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
    HttpConn,
    Tally,
    drive,
    fmt_ms,
    fmt_ratio,
    libpq_url,
    load_demo_district,
    login,
    reset,
    run_bench,
    start_server,
    stop_server,
    wait_ready,
)

SEED = 0.42
COMMUNITY = "360602001001"
STREET = "360602001000"

_RESOURCES = """
INSERT INTO community_resources (district_id, community_id, unit_id, kind, title, amount, capacity,
                                 categories, valid_from, valid_until, location)
SELECT u.district_id, u.community_id, u.id,
       (ARRAY['money', 'venue', 'volunteers', 'skills', 'equipment'])[1 + (i % 5)],
       '共建资源 ' || i, CASE WHEN i % 5 = 0 THEN 1000 + i END, CASE WHEN i % 5 <> 0 THEN 1 + i % 30 END,
       ARRAY[(ARRAY['elderly', 'children', 'facilities', 'safety', 'parking', 'culture', 'health',
                    'employment', 'legal', 'environment'])[1 + (i % 10)],
             (ARRAY['elderly', 'facilities', 'safety', 'culture'])[1 + (i % 4)]]::varchar[],
       date '2026-01-01', date '2027-12-31',
       ST_SetSRID(ST_MakePoint(c.lon + (random() - 0.5) * 0.1, c.lat + (random() - 0.5) * 0.1), 4326)
FROM generate_series(1, $1) i
JOIN LATERAL (SELECT * FROM community_units WHERE community_id = $2 ORDER BY id
              OFFSET i % 9 LIMIT 1) u ON true
CROSS JOIN (SELECT ST_X(ST_PointOnSurface(boundary)) lon, ST_Y(ST_PointOnSurface(boundary)) lat
            FROM areas WHERE id = $2) c
"""
_MATTERS = """
WITH m AS (
    INSERT INTO community_matters (district_id, community_id, title, channel, status, mode, quorum,
                                   decision, created_at, updated_at)
    SELECT c.district_id, c.community_id, '议事事项 ' || i, 'grid_worker',
           (ARRAY['proposed', 'accepted', 'consulting', 'resolved', 'done', 'evaluated',
                  'rejected', 'failed'])[1 + (i % 8)],
           'meeting', 20, '决议 ' || i, now() - make_interval(days => i % 200),
           now() - make_interval(days => i % 100)
    FROM generate_series(1, $1) i,
         (SELECT district_id, community_id FROM community_units WHERE community_id = $2 LIMIT 1) c
    RETURNING id, district_id, community_id, status
),
o AS (
    INSERT INTO community_matter_opinions (district_id, community_id, matter_id, participant, vote,
                                           channel)
    SELECT m.district_id, m.community_id, m.id, 'P' || j,
           (ARRAY['yes', 'yes', 'no', 'abstain'])[1 + (j % 4)], 'meeting'
    FROM m, generate_series(1, 25) j WHERE m.status NOT IN ('proposed', 'accepted', 'rejected')
)
INSERT INTO community_matter_ratings (district_id, community_id, matter_id, participant, rating)
SELECT m.district_id, m.community_id, m.id, 'P' || j,
       (ARRAY['satisfied', 'satisfied', 'basic', 'unsatisfied'])[1 + (j % 4)]
FROM m, generate_series(1, 10) j WHERE m.status IN ('done', 'evaluated')
"""
_TASKS = """
INSERT INTO community_tasks (district_id, community_id, source, meeting_id, title, unit_id,
                             due_days, starts_at, due_at, state, progress, done_at, created_at)
SELECT u.district_id, u.community_id, 'meeting', m.id, '决议任务 ' || i, u.id, 10, m.held_at,
       m.held_at + interval '14 days', CASE WHEN i % 3 = 0 THEN 'done' ELSE 'open' END,
       CASE WHEN i % 3 = 0 THEN 100 ELSE i % 90 END,
       CASE WHEN i % 3 = 0 THEN m.held_at + make_interval(days => i % 20) END, m.held_at
FROM generate_series(1, $1) i
JOIN LATERAL (SELECT * FROM community_units WHERE community_id = $2 AND is_member ORDER BY id
              OFFSET i % 9 LIMIT 1) u ON true
CROSS JOIN (SELECT id, held_at FROM community_meetings WHERE community_id = $2 AND period = '2026Q4') m
"""


async def make_busy(
    conn: asyncpg.Connection, community: int, args: argparse.Namespace
) -> dict[str, Any]:
    t0 = time.perf_counter()
    await conn.execute("SELECT setseed($1)", SEED)
    await conn.execute(_RESOURCES, args.resources, community)
    await conn.execute(_MATTERS, args.matters, community)
    await conn.execute(_TASKS, args.tasks, community)
    await conn.execute("ANALYZE")
    counts = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM community_resources) AS resources,
               (SELECT count(*) FROM community_matters WHERE community_id = $1) AS matters,
               (SELECT count(*) FROM community_matter_opinions WHERE community_id = $1) AS opinions,
               (SELECT count(*) FROM community_tasks WHERE community_id = $1) AS tasks
        """,
        community,
    )
    return {**dict(counts), "seconds": round(time.perf_counter() - t0, 2)}


async def amain(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        if await conn.fetchval("SELECT count(*) FROM grids"):
            raise SystemExit(
                "bench_community: BENCH_DATABASE_URL must be an empty throwaway database"
            )
        versions = await conn.fetchrow("SELECT current_setting('server_version') AS pg")
        try:
            t0 = time.perf_counter()
            await load_demo_district(url)
            print(
                f"demo district and quarter loaded in {time.perf_counter() - t0:.1f} s", flush=True
            )
            ids = await conn.fetchrow(
                """
                SELECT (SELECT id FROM areas WHERE code = $1) AS community,
                       (SELECT id FROM areas WHERE code = $2) AS street,
                       (SELECT id FROM grids WHERE code = $1 || '001') AS grid
                """,
                COMMUNITY,
                STREET,
            )
            built = await make_busy(conn, ids["community"], args)
            print(
                f"busy 立新社区: {built['resources']:,} resources in the district, {built['matters']:,} "
                f"matters, {built['opinions']:,} opinions, {built['tasks']:,} tasks ({built['seconds']} s)",
                flush=True,
            )
            need = await conn.fetchval(
                "SELECT id FROM community_needs WHERE community_id = $1 AND status = 'open' ORDER BY id LIMIT 1",
                ids["community"],
            )
            meeting = await conn.fetchval(
                "SELECT id FROM community_meetings WHERE community_id = $1 AND period = '2026Q4'",
                ids["community"],
            )
            results = await measure(url, ids, need, meeting, args)
        finally:
            await reset(conn)
    finally:
        await conn.close()
    return {
        "benchmark": "community",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": versions["pg"],
        },
        "settings": {
            "concurrency": args.concurrency,
            "seconds_per_variant": args.seconds,
            "rounds": args.rounds,
        },
        "data": built,
        "variants": results,
    }


async def measure(
    url: str, ids: Any, need: int, meeting: int, args: argparse.Namespace
) -> dict[str, Any]:
    log_path = OUT / "community-uvicorn.log"
    proc, port = start_server(url, log_path, env={"WANGGE_SCHEDULER_ENABLED": "false"})
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            await wait_ready(proc, client, log_path)
            token = await login(
                client, "street", os.environ.get("WANGGE_DEMO_PASSWORD", "Wangge#2026")
            )
        c, s = ids["community"], ids["street"]
        paths = {
            "card": f"/api/v1/grids/{ids['grid']}/card",
            "board": f"/api/v1/public/areas/{c}/board",
            "matches": f"/api/v1/areas/{c}/needs/{need}/matches",
            "report": f"/api/v1/areas/{c}/meetings/{meeting}/report",
            "summary": f"/api/v1/areas/{s}/evaluations/summary?period=2026Q3",
            "tasks": f"/api/v1/areas/{c}/tasks?state=open",
        }
        if args.only:
            paths = {k: v for k, v in paths.items() if k in args.only or k == "card"}
        conns = [
            HttpConn(port, {"Authorization": f"Bearer {token}"}) for _ in range(args.concurrency)
        ]
        sizes = {}
        for name, path in paths.items():  # every answer checked once, and warmed up
            status, body = await conns[0].fetch(path)
            if status != 200:
                raise RuntimeError(f"{name}: HTTP {status}: {body[:300]!r}")
            sizes[name] = len(body)
        tallies = {name: Tally() for name in paths}
        names = list(paths)
        for r in range(args.rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                path = paths[name]

                def call(conn: HttpConn, path: str = path) -> Any:
                    async def one(_: int) -> bool:
                        status = await conn.get(path)
                        if status != 200:
                            raise RuntimeError(f"HTTP {status}")
                        return True

                    return one

                await drive(tallies[name], 1, [call(x) for x in conns], args.seconds / args.rounds)
        for x in conns:
            x.close()
    finally:
        stop_server(proc)
    out = {}
    base = tallies["card"].result()
    print(
        f"\n{'variant':<10}{'bytes':>9}{'req/s':>9}{'p50 ms':>10}{'p99 ms':>10}{'p50 vs card':>13}{'errors':>8}"
    )
    for name, t in tallies.items():
        res = t.result()
        ratio = res["p50_ms"] / base["p50_ms"] if res["p50_ms"] and base["p50_ms"] else None
        res.update({"bytes": sizes[name], "p50_vs_card": round(ratio, 2) if ratio else None})
        out[name] = res
        print(
            f"{name:<10}{sizes[name]:>9,}{res['rps']:>9.0f}{fmt_ms(res['p50_ms']):>10}"
            f"{fmt_ms(res['p99_ms']):>10}{fmt_ratio(ratio):>13}{res['errors']:>8}"
        )
    return out


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="1 s per variant instead of 4")
    p.add_argument("--seconds", type=float, help="measured seconds per variant")
    p.add_argument("--rounds", type=int, help="interleaved slices per variant")
    p.add_argument("--concurrency", type=int, default=4, help="concurrent clients (4)")
    p.add_argument("--resources", type=int, default=5000)
    p.add_argument("--matters", type=int, default=500)
    p.add_argument("--tasks", type=int, default=2000)
    p.add_argument("--only", nargs="*", help="variants to run besides the card")
    a = p.parse_args(argv)
    a.seconds = a.seconds or (1.0 if a.quick else 4.0)
    a.rounds = a.rounds or (2 if a.quick else 4)
    if not (0 < a.seconds <= 120 and 1 <= a.rounds <= 100 and 1 <= a.concurrency <= 64):
        p.error("--seconds in (0, 120], --rounds in [1, 100], --concurrency in [1, 64]")
    if not (0 <= a.resources <= 200_000 and 0 <= a.matters <= 20_000 and 0 <= a.tasks <= 100_000):
        p.error("--resources ≤ 200000, --matters ≤ 20000, --tasks ≤ 100000")
    return a


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    run_bench(
        "community",
        f"community benchmark: the read paths of the community mechanisms; {os.cpu_count()} CPUs",
        lambda url: amain(url, args),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
