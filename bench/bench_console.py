"""Benchmark the console (/console) as a person meets it, in headless Chromium (Debian's).

One uvicorn worker on the demo district with N cases reported this month (1,000; --quick 300).
Measured, round by round, with the two map sources side by side in alternating order:

* ``tiles``    the normal console: vector tiles (/tiles/{layer}.json) for grids, areas and hot spots;
* ``geojson``  the same console with /tiles answering 404, so it falls back to the registry's
  GeoJSON (GET /api/v1/grids|areas?with_boundary=true) and counts hot spots itself;

for each: from the login click to the console ready (queue, figures, stream) and to the grids
rendered (``map.queryRenderedFeatures`` finds 90 % of the district's grids), and the bytes the
page fetched (its assets and API answers; MapLibre's worker fetches the tiles out of its sight).
Then, on the tiles console, the live path: a grid worker reports a case through the
API and the clock runs until it is in the centre's queue (SSE, list reload, render).

Needs BENCH_DATABASE_URL (an empty, throwaway database; ``make bench`` provides one) and
/usr/bin/chromium (``make test`` installs it); without chromium it says so and exits 0.
Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_console.py [--quick]``.
Results also go to bench/out/console.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
    exit_on_sigterm,
    libpq_url,
    load_demo_district,
    login,
    reset,
    start_server,
    stop_all_servers,
    stop_server,
    wait_ready,
)

CHROMIUM = shutil.which("chromium")
ARGS = ["--use-angle=swiftshader", "--use-gl=angle", "--enable-unsafe-swiftshader", "--no-sandbox"]
PASSWORD = os.environ.get("WANGGE_DEMO_PASSWORD", "Wangge#2026")

CASES = """
WITH g AS (
    SELECT g.id, g.community_id, c.parent_id AS street, s.parent_id AS district,
           ST_PointOnSurface(b.boundary) AS p, row_number() OVER (ORDER BY g.id) AS rn
    FROM grids g JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id
    JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL
)
INSERT INTO cases (number, category_code, title, location, reporter_id, grid_id, community_id,
                   street_id, district_id, reported_at)
SELECT 'BENCH' || lpad(i::text, 7, '0'), (SELECT code FROM categories ORDER BY code LIMIT 1),
       '压测事件 ' || i, g.p, (SELECT id FROM users WHERE username = 'admin'), g.id,
       g.community_id, g.street, g.district,
       greatest(date_trunc('month', now() AT TIME ZONE 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai',
                now() - make_interval(secs => i * 30))
FROM generate_series(1, $1::int) i
JOIN g ON g.rn = 1 + (i * 7919) % (SELECT count(*) FROM g)
"""

RENDERED = """(want) => {
  const m = window.wangge && window.wangge.map;
  if (!m || !m.getLayer('grids-fill')) return false;
  const fs = m.queryRenderedFeatures({layers: ['grids-fill']});
  return new Set(fs.map((f) => f.properties.code)).size >= want;
}"""


async def open_console(browser: Any, base: str, variant: str, want: int) -> dict[str, float]:
    page = await browser.new_page(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    fetched = {"assets": 0, "api": 0}
    pending: list[asyncio.Task[None]] = []

    async def count(req: Any) -> None:
        path = urlsplit(req.url).path
        if not path.startswith("/tiles/"):
            kind = "api" if path.startswith("/api/") else "assets"
            fetched[kind] += (await req.sizes())["responseBodySize"]

    # The page's requests, bodies as they came over the wire (compressed or not). The tiles are
    # fetched by MapLibre's worker, whose requests are not seen here (bench_tiles times them).
    page.on("requestfinished", lambda req: pending.append(asyncio.ensure_future(count(req))))
    if variant == "geojson":
        await page.route("**/tiles/**", lambda route: route.fulfill(status=404, body=""))
    await page.goto(f"{base}/console")
    await page.fill("input[name=username]", "centre")
    await page.fill("input[name=password]", PASSWORD)
    t0 = time.perf_counter()
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("body[data-ready=true]", timeout=60_000)
    ready = time.perf_counter() - t0
    await page.wait_for_function(RENDERED, arg=want, timeout=60_000, polling=50)
    rendered = time.perf_counter() - t0
    await page.wait_for_timeout(300)
    await asyncio.gather(*pending)
    await page.close()
    return {
        "ready_s": ready,
        "rendered_s": rendered,
        **{f"{k}_kb": v / 1024 for k, v in fetched.items()},
    }


async def live_latency(browser: Any, base: str, worker: str, body: dict, n: int) -> list[float]:
    page = await browser.new_page(viewport={"width": 1920, "height": 1080}, locale="zh-CN")
    await page.goto(f"{base}/console")
    await page.fill("input[name=username]", "centre")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("#login-form button[type=submit]")
    await page.wait_for_selector("#live[data-state=live]", timeout=60_000)
    out = []
    async with httpx.AsyncClient(base_url=base) as api:
        for i in range(n):
            t0 = time.perf_counter()
            r = await api.post(
                "/api/v1/cases",
                json={**body, "title": f"压测实时 {i}"},
                headers={"Authorization": f"Bearer {worker}", "Idempotency-Key": str(uuid.uuid4())},
            )
            r.raise_for_status()
            await page.wait_for_selector(
                f'#queue li[data-id="{r.json()["id"]}"]', timeout=30_000, state="attached"
            )
            out.append(time.perf_counter() - t0)
            await page.wait_for_timeout(1500)  # past the console's reload throttle
    await page.close()
    return out


async def main(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.async_api import async_playwright

    url = os.environ["BENCH_DATABASE_URL"]
    from app.migrate import upgrade

    await asyncio.to_thread(upgrade, url)
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await reset(conn)
        await load_demo_district(url)
        n_cases = 300 if args.quick else 1_000
        await conn.execute(CASES, n_cases)
        grids = await conn.fetchval("SELECT count(*) FROM grids WHERE deleted_at IS NULL")
        lon, lat = await conn.fetchrow(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.boundary) p "
            "FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id "
            "WHERE g.code = '360602001001001' AND b.valid_to IS NULL) x"
        )
        category = await conn.fetchval("SELECT code FROM categories ORDER BY code LIMIT 1")
    finally:
        await conn.close()
    OUT.mkdir(parents=True, exist_ok=True)
    log = OUT / "console-server.log"
    proc, port = start_server(url, log, env={"ENV": "test", "WANGGE_SCHEDULER_ENABLED": "false"})
    base = f"http://127.0.0.1:{port}"
    rounds = 2 if args.quick else 5
    want = int(0.9 * grids)
    results: dict[str, list[dict[str, float]]] = {"tiles": [], "geojson": []}
    try:
        async with httpx.AsyncClient(base_url=base) as c:
            await wait_ready(proc, c, log)
            worker = await login(c, "worker", PASSWORD)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                await open_console(browser, base, "tiles", want)  # warm-up: caches, JIT
                for r in range(rounds):
                    order = ["tiles", "geojson"] if r % 2 == 0 else ["geojson", "tiles"]
                    for variant in order:
                        results[variant].append(await open_console(browser, base, variant, want))
                body = {"category": category, "location": {"lon": lon, "lat": lat}}
                live = await live_latency(browser, base, worker, body, 3 if args.quick else 8)
            finally:
                await browser.close()
    finally:
        stop_server(proc)
    med = {v: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for v, rs in results.items()}
    return {
        "cases_in_period": n_cases,
        "grids": grids,
        "rounds": rounds,
        "median": med,
        "runs": results,
        "live_s": live,
        "live_median_s": statistics.median(live),
    }


def report(out: dict[str, Any]) -> None:
    m = out["median"]
    print(
        f"console: demo district ({out['grids']} grids), {out['cases_in_period']} cases this "
        f"month, medians of {out['rounds']} rounds, headless chromium (SwiftShader WebGL)"
    )
    print(
        f"{'map source':<10} {'login→ready':>12} {'login→grids drawn':>18} "
        f"{'assets':>9} {'API':>9}  (bytes on the wire; tiles not counted)"
    )
    for v in ("tiles", "geojson"):
        print(
            f"{v:<10} {m[v]['ready_s'] * 1000:>10.0f}ms {m[v]['rendered_s'] * 1000:>16.0f}ms "
            f"{m[v]['assets_kb']:>7.0f}kB {m[v]['api_kb']:>7.0f}kB"
        )
    t, g = m["tiles"], m["geojson"]
    print(
        f"tiles / geojson: login→grids drawn {t['rendered_s'] / g['rendered_s']:.2f}x, "
        f"API bytes {t['api_kb'] / g['api_kb']:.2f}x"
    )
    live = ", ".join(f"{x * 1000:.0f}" for x in out["live_s"])
    print(
        f"report → in the centre's queue (API, SSE, reload, render): median "
        f"{out['live_median_s'] * 1000:.0f} ms ({live} ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases and rounds")
    a = parser.parse_args()
    if not CHROMIUM:
        print("bench_console: no chromium (make test installs it); skipped")
        sys.exit(0)
    exit_on_sigterm()
    try:
        result = asyncio.run(main(a))
    finally:
        stop_all_servers()
    (OUT / "console.json").write_text(json.dumps(result, indent=2, ensure_ascii=False))
    report(result)
