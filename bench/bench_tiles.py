"""Benchmark the vector tiles: our endpoint against its own SQL and against tipg.

Per tile of the `grids` layer at z10, z12, z14 and z16, measured side by side in one run:

* ``endpoint``    GET /tiles/grids/{z}/{x}/{y}.mvt on a real uvicorn (1 worker);
* ``raw SQL``     the endpoint's exact statement (app.tiles.service.GRIDS_SQL) as an asyncpg
  prepared statement, z/x/y bound;
* ``tipg``        developmentseed's tipg (PyPI, its own venv `.venv-bench`, its own uvicorn with
  1 worker) serving a view with the same rows and columns
  (`/collections/bench_tiles.grids/tiles/WebMercatorQuad/{z}/{x}/{y}`, buffer 64 like ours);
* ``pasted SQL``  the same statement with z/x/y pasted into the text, asyncpg with no statement
  cache (every tile parsed and planned anew);
* ``SQLAlchemy``  the statement through SQLAlchemy `text()` on an AsyncConnection (the ORM's
  path), in process: what the endpoint would cost without the raw asyncpg connection;
* ``healthz``     GET /healthz on our uvicorn: the floor of one request through uvicorn and
  FastAPI on this machine, which no endpoint goes below.

One client at a time (latency per tile, not throughput): rounds of one call of every variant on
the same tile, back to back in rotating order, over a seeded sample of non-empty tiles of each
zoom; the ratios are medians of ratios paired within a round (the machine is shared and noisy:
a ratio of two medians taken seconds apart moves by 2x between runs, a paired one does not). Two sizes: the 273-grid demo
district and a 50,000-grid synthetic city (bench_lookup's seeded Voronoi cells), each loaded into
the throwaway database and truncated afterwards; the view lives in a schema of its own, dropped
at the end.

Needs BENCH_DATABASE_URL (an empty, throwaway database); scripts/bench.sh provides one and
creates .venv-bench with tipg. Results also go to bench/out/tiles.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import mapbox_vector_tile
import mercantile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_lookup import SEED, insert_city
from common import (
    OUT,
    ROOT,
    Call,
    HttpConn,
    Tally,
    drive,
    fmt_ms,
    fmt_ratio,
    free_port,
    libpq_url,
    load_demo_district,
    reset,
    run_bench,
    start_server,
    stop_server,
    wait_ready,
)

from app.tiles.service import GRIDS_SQL as NAMED_SQL
from app.tiles.service import LAYERS

ZOOMS = (10, 12, 14, 16)
MAX_ROUNDS = 1_000_000
VARIANTS = ("endpoint", "raw_sql", "tipg", "pasted", "sqlalchemy", "healthz")
LABELS = {
    "endpoint": "endpoint GET /tiles/grids",
    "raw_sql": "raw SQL (asyncpg prepared)",
    "tipg": "tipg 1.6.1",
    "pasted": "raw SQL, z/x/y pasted",
    "sqlalchemy": "SQLAlchemy text(), in process",
    "healthz": "HTTP floor GET /healthz",
}
TIPG_VENV = ROOT / ".venv-bench"
SCHEMA = "bench_tiles"
# The same rows and columns as GRIDS_SQL draws, as a view tipg can serve.
VIEW = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE OR REPLACE VIEW {SCHEMA}.grids AS
SELECT g.id, g.code, g.name, g.kind, cm.id AS community_id, cm.name AS community,
       st.id AS street_id, st.name AS street, g.households, g.population,
       (SELECT count(DISTINCT p.user_id) FROM post_grids pg JOIN posts p ON p.id = pg.post_id
        WHERE pg.grid_id = g.id AND p.starts_on <= current_date
          AND (p.ends_on IS NULL OR p.ends_on >= current_date))::int AS staff,
       b.boundary AS geom
FROM grid_boundaries b
JOIN grids g ON g.id = b.grid_id AND g.deleted_at IS NULL
JOIN areas cm ON cm.id = g.community_id
LEFT JOIN areas st ON st.id = cm.parent_id
WHERE b.valid_to IS NULL
"""
GRIDS_SQL = LAYERS["grids"].sql.sql
"""The endpoint's statement as the driver gets it (named binds compiled to $1 $2 $3 = z x y)."""
assert LAYERS["grids"].sql.names == ("z", "x", "y")


def pasted(z: int, x: int, y: int) -> str:
    return GRIDS_SQL.replace("$1", str(z)).replace("$2", str(x)).replace("$3", str(y))


# --- tipg ---------------------------------------------------------------------------------------


def start_tipg(url: str, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    uvicorn = TIPG_VENV / "bin" / "uvicorn"
    if not uvicorn.exists():
        raise SystemExit(
            f"bench_tiles: {uvicorn} is missing; scripts/bench.sh (make bench) creates it"
        )
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": libpq_url(url),
        "TIPG_DB_SCHEMAS": f'["{SCHEMA}"]',
        "TIPG_TILE_BUFFER": "64",
        "TIPG_MAX_FEATURES_PER_TILE": "1000000",
    }
    cmd = [str(uvicorn), "tipg.main:app", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--workers", "1", "--no-access-log", "--log-level", "warning"]
    with log_path.open("wb") as log:
        proc = subprocess.Popen(cmd, cwd="/", env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, port


async def wait_tipg(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", trust_env=False) as c:
        for _ in range(600):
            if proc.poll() is not None:
                break
            try:
                r = await c.get(f"/collections/{SCHEMA}.grids")
                if r.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    tail = log_path.read_text(errors="replace")[-2000:]
    raise RuntimeError(f"tipg did not become ready (exit {proc.poll()}):\n{tail}")


# --- tiles --------------------------------------------------------------------------------------


async def sample_tiles(
    conn: asyncpg.Connection, z: int, n: int, rng: random.Random
) -> list[tuple[int, int, int]]:
    """Up to n non-empty tiles of zoom z over the grids' extent (seeded)."""
    w, s, e, north = await conn.fetchrow(
        "SELECT ST_XMin(x), ST_YMin(x), ST_XMax(x), ST_YMax(x) FROM (SELECT ST_Extent(boundary)"
        " x FROM grid_boundaries WHERE valid_to IS NULL) t"
    )
    ul, lr = mercantile.tile(w, north, z), mercantile.tile(e, s, z)
    cols, rows = range(ul.x, lr.x + 1), range(ul.y, lr.y + 1)
    stmt = await conn.prepare(GRIDS_SQL)
    out: list[tuple[int, int, int]] = []
    if len(cols) * len(rows) <= 4 * n:
        candidates = [(z, x, y) for x in cols for y in rows]
        rng.shuffle(candidates)
    else:
        candidates = [(z, rng.choice(cols), rng.choice(rows)) for _ in range(20 * n)]
    seen: set[tuple[int, int, int]] = set()
    for t in candidates:
        if t in seen:
            continue
        seen.add(t)
        if await stmt.fetchval(*t):
            out.append(t)
            if len(out) == n:
                break
    return out


def _ids(tile: bytes, layer: str | None, key: str | None) -> set[int]:
    d = mapbox_vector_tile.decode(tile)
    if not d:
        return set()
    feats = d[layer or next(iter(d))]["features"]
    return {int(f["properties"][key]) if key else int(f["id"]) for f in feats}


# --- one size -----------------------------------------------------------------------------------


async def bench_size(
    name: str, url: str, conn: asyncpg.Connection, args: argparse.Namespace
) -> dict[str, Any]:
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    from app.config import async_url

    rng = random.Random(SEED)
    tiles = {z: await sample_tiles(conn, z, args.tiles, rng) for z in ZOOMS}
    our_log, tipg_log = OUT / f"tiles-uvicorn-{name}.log", OUT / f"tiles-tipg-{name}.log"
    proc, port = start_server(url, our_log)
    tproc, tport = start_tipg(url, tipg_log)
    ours, tipg = HttpConn(port), HttpConn(tport)
    prepared_conn = await asyncpg.connect(libpq_url(url))
    pasted_conn = await asyncpg.connect(libpq_url(url), statement_cache_size=0)
    engine = create_async_engine(async_url(url), pool_size=1)
    sa_conn = await engine.connect()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", trust_env=False, timeout=60
        ) as client:
            await wait_ready(proc, client, our_log)
        await wait_tipg(tproc, tport, tipg_log)
        stmt = await prepared_conn.prepare(GRIDS_SQL)
        named = text(NAMED_SQL)

        def path(variant: str, t: tuple[int, int, int]) -> str:
            z, x, y = t
            if variant == "endpoint":
                return f"/tiles/grids/{z}/{x}/{y}.mvt"
            if variant == "healthz":
                return "/healthz"
            return f"/collections/{SCHEMA}.grids/tiles/WebMercatorQuad/{z}/{x}/{y}"

        def make_call(variant: str, zt: list[tuple[int, int, int]]) -> Call:
            async def call(i: int) -> bool:
                t = zt[i]
                if variant in ("endpoint", "tipg", "healthz"):
                    http = tipg if variant == "tipg" else ours
                    status, body = await http.fetch(path(variant, t))
                    # tipg answers 200 with no bytes for a tile whose grids only reach into
                    # the buffer (it selects by the bare tile); ours never sends an empty 200
                    if status != 200 or (variant == "endpoint" and not body):
                        raise RuntimeError(f"HTTP {status} on {path(variant, t)}")
                    return True
                if variant == "raw_sql":
                    return bool(await stmt.fetchval(*t))
                if variant == "pasted":
                    return bool(await pasted_conn.fetchval(pasted(*t)))
                z, x, y = t
                return bool((await sa_conn.execute(named, {"z": z, "x": x, "y": y})).scalar())

            return call

        # agreement: our endpoint draws the statement's grids; tipg the same ones, or those
        # without the ones that only reach into the tile's buffer (tipg selects by the bare tile)
        agreement = {"tiles": 0, "endpoint_eq_sql": 0, "tipg_same_grids": 0, "tipg_subset": 0}
        for zt in tiles.values():
            for t in zt:
                want = await stmt.fetchval(*t)
                _, got = await ours.fetch(path("endpoint", t))
                _, theirs = await tipg.fetch(path("tipg", t))
                agreement["tiles"] += 1
                agreement["endpoint_eq_sql"] += _ids(got, "grids", None) == _ids(
                    bytes(want), "grids", None
                )
                mine, other = _ids(got, "grids", None), _ids(theirs, None, "id")
                agreement["tipg_same_grids"] += mine == other
                agreement["tipg_subset"] += other <= mine

        results: dict[int, dict[str, Any]] = {}
        for z, zt in tiles.items():
            calls = {v: make_call(v, zt) for v in VARIANTS}
            for v in VARIANTS:  # warm-up: statements prepared, pages cached
                await drive(Tally(), len(zt), [calls[v]], args.warmup)
            tallies, paired = await measure(zt, calls, args.seconds * len(VARIANTS))
            res = {v: tallies[v].result() for v in VARIANTS}
            sizes = [len(bytes(await stmt.fetchval(*t))) for t in zt]
            results[z] = {
                "tiles": len(zt),
                "mean_tile_bytes": round(sum(sizes) / len(sizes)) if sizes else 0,
                "variants": res,
                "ratios_p50": {
                    v: _div(res[v]["p50_ms"], res["raw_sql"]["p50_ms"])
                    for v in VARIANTS
                    if v != "raw_sql"
                },
                "endpoint_vs_tipg_p50": _div(res["endpoint"]["p50_ms"], res["tipg"]["p50_ms"]),
                "paired_median": paired,
            }
            print_zoom(name, z, results[z])
        for p in (proc, tproc):
            if p.poll() is not None:
                raise RuntimeError(f"a server exited during the run (exit {p.poll()})")
    finally:
        ours.close()
        tipg.close()
        stop_server(proc)
        stop_server(tproc)
        await prepared_conn.close()
        await pasted_conn.close()
        await sa_conn.close()
        await engine.dispose()
    grids = await conn.fetchval("SELECT count(*) FROM grid_boundaries WHERE valid_to IS NULL")
    return {"grids": grids, "agreement": agreement, "zooms": results}


async def measure(
    zt: list[tuple[int, int, int]], calls: dict[str, Call], seconds: float
) -> tuple[dict[str, Tally], dict[str, float | None]]:
    """Rounds of one call of every variant on the same tile, back to back in rotating order,
    until `seconds` have passed. Besides each variant's latencies, the median over rounds of the
    paired ratios (variant / raw SQL, endpoint / tipg) on the same tile at the same moment: far
    steadier than ratios of medians on a machine others share."""
    tallies = {v: Tally() for v in VARIANTS}
    pairs: dict[str, list[float]] = {v: [] for v in VARIANTS if v != "raw_sql"}
    pairs["endpoint_vs_tipg"] = []
    start = time.perf_counter()
    deadline = start + seconds
    n = len(VARIANTS)
    for k in range(MAX_ROUNDS):
        if time.perf_counter() >= deadline:
            break
        i = k % len(zt)
        one: dict[str, int] = {}
        for v in VARIANTS[k % n :] + VARIANTS[: k % n]:
            t0 = time.perf_counter_ns()
            try:
                await calls[v](i)
            except Exception as e:
                tallies[v].errors += 1
                if len(tallies[v].error_samples) < 3:
                    tallies[v].error_samples.append(f"{type(e).__name__}: {e}"[:200])
                continue
            one[v] = time.perf_counter_ns() - t0
            tallies[v].latencies_ns.append(one[v])
        for v in pairs:
            a, b = ("endpoint", "tipg") if v == "endpoint_vs_tipg" else (v, "raw_sql")
            if a in one and b in one:
                pairs[v].append(one[a] / one[b])
    elapsed = time.perf_counter() - start
    for t in tallies.values():
        t.elapsed_s = elapsed
    return tallies, {
        v: float(f"{statistics.median(r):.4g}") if r else None for v, r in pairs.items()
    }


def _div(a: float | None, b: float | None) -> float | None:
    return float(f"{a / b:.4g}") if a and b else None


# --- report -------------------------------------------------------------------------------------


def print_zoom(size: str, z: int, res: dict[str, Any]) -> None:
    print(
        f"\n{size} z{z}: {res['tiles']} non-empty tiles, {res['mean_tile_bytes']:,} bytes on "
        "average",
        flush=True,
    )
    print(
        f"  {'variant':<32}{'p50 ms':>9}{'p99 ms':>9}{'mean ms':>9}{'tiles':>8}"
        f"{'÷ raw (paired)':>16}"
    )
    for v in VARIANTS:
        r = res["variants"][v]
        ratio = "1" if v == "raw_sql" else fmt_ratio(res["paired_median"][v])
        print(
            f"  {LABELS[v]:<32}{fmt_ms(r['p50_ms']):>9}{fmt_ms(r['p99_ms']):>9}"
            f"{fmt_ms(r['mean_ms']):>9}{r['requests']:>8}{ratio:>16}"
        )
        for sample in r["error_samples"]:
            print(f"  error in {v}: {sample}")
    print(
        f"  endpoint / tipg: paired {fmt_ratio(res['paired_median']['endpoint_vs_tipg'])}, "
        f"of the p50s {fmt_ratio(res['endpoint_vs_tipg_p50'])}",
        flush=True,
    )


def print_summary(sizes: dict[str, Any]) -> None:
    print(
        "\nsummary, time per tile as a multiple of the raw prepared SQL (median of the ratios"
        " paired on one tile at one moment):"
    )
    print(
        f"  {'size':<8}{'zoom':>5}{'raw ms':>9}{'endpoint':>10}{'tipg':>9}{'pasted':>9}"
        f"{'SQLA':>8}{'healthz':>9}{'endpoint/tipg':>15}"
    )
    for name, s in sizes.items():
        for z, r in s["zooms"].items():
            q = r["paired_median"]
            print(
                f"  {name:<8}{z:>5}{fmt_ms(r['variants']['raw_sql']['p50_ms']):>9}"
                f"{fmt_ratio(q['endpoint']):>10}{fmt_ratio(q['tipg']):>9}"
                f"{fmt_ratio(q['pasted']):>9}{fmt_ratio(q['sqlalchemy']):>8}"
                f"{fmt_ratio(q['healthz']):>9}{fmt_ratio(q['endpoint_vs_tipg']):>15}"
            )
        a = s["agreement"]
        print(
            f"  {name}: {a['tiles']} tiles checked: endpoint = SQL (same grids) on "
            f"{a['endpoint_eq_sql']}; tipg draws the same grids on {a['tipg_same_grids']}, "
            f"a subset of ours (not the grids only in the buffer) on {a['tipg_subset']}"
        )


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="about 0.6 s per variant and zoom, not 3")
    p.add_argument("--seconds", type=float, help="measured seconds per variant and zoom")
    p.add_argument("--tiles", type=int, default=24, help="sampled tiles per zoom (24)")
    p.add_argument("--city-grids", type=int, default=50_000, help="synthetic city size (50000)")
    a = p.parse_args(argv)
    a.seconds = a.seconds or (0.6 if a.quick else 3.0)
    a.warmup = 0.2 if a.quick else 0.5
    if not (0 < a.seconds <= 120 and 1 <= a.tiles <= 500):
        p.error("--seconds in (0, 120], --tiles in [1, 500]")
    if not 100 <= a.city_grids <= 500_000:
        p.error("--city-grids in [100, 500000]")
    return a


async def amain(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        existing = await conn.fetchval("SELECT count(*) FROM grids")
        if existing:
            raise SystemExit(
                f"bench_tiles: the database already holds {existing} grids; BENCH_DATABASE_URL "
                "must be an empty throwaway database (it gets truncated)"
            )
        versions = await conn.fetchrow(
            "SELECT current_setting('server_version') AS pg, postgis_lib_version() AS postgis"
        )
        sizes: dict[str, Any] = {}
        try:
            await conn.execute(VIEW)
            await load_demo_district(url)
            await conn.execute("ANALYZE")
            sizes["demo"] = await bench_size("demo", url, conn, args)
            await reset(conn)
            t0 = time.perf_counter()
            city = await insert_city(conn, args.city_grids, SEED)
            await conn.execute("ANALYZE")
            print(
                f"\nsynthetic city: {city['grids']:,} grids built and loaded in "
                f"{time.perf_counter() - t0:.1f} s",
                flush=True,
            )
            sizes["city"] = await bench_size("city", url, conn, args)
        finally:
            await reset(conn)
            await conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    finally:
        await conn.close()
    print_summary(sizes)
    return {
        "benchmark": "tiles",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "postgresql": versions["pg"],
            "postgis": versions["postgis"],
        },
        "settings": {
            "seconds_per_variant": args.seconds,
            "tiles_per_zoom": args.tiles,
            "seed": SEED,
        },
        "sizes": sizes,
    }


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    run_bench(
        "tiles",
        (
            f"tiles benchmark: one client, rounds of every variant on one tile for about "
            f"{args.seconds:g} s per variant and zoom, {args.tiles} tiles per zoom; "
            f"{os.cpu_count()} CPUs"
        ),
        lambda url: amain(url, args),
    )


if __name__ == "__main__":
    main(sys.argv[1:])
