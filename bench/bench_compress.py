"""Benchmark compression (issue 22): bytes and server CPU per response, by Accept-Encoding.

One uvicorn server (1 worker) on the demo district. Representative answers a phone or the
console fetches: a z14 grid tile and a z16 one, the grid list as GeoJSON (200 grids), the
category catalogue, OGC API items, the OpenAPI document, and /healthz (small: it stays plain). Each is fetched with
`Accept-Encoding: identity`, `gzip`, `br` and `zstd` in turn, interleaved round-robin with
rotating order (the machine is shared and noisy), N times each, by one client. Printed per
answer and encoding: bytes on the wire and the ratio to identity, and the server's CPU per
response (its process CPU over the slice divided by the requests) beside identity's, as a ratio.
Before timing, every encoding's decoded body must equal the identity body.

Needs BENCH_DATABASE_URL: an empty, throwaway database (migrated, the demo loaded, emptied at
the end). ``scripts/bench.sh`` (``make bench``) provides one.
Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_compress.py [--quick]``.
Results also go to bench/out/compress.json.
"""

from __future__ import annotations

import argparse
import gzip
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import brotli
import httpx
import mercantile
import zstandard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
    libpq_url,
    load_demo_district,
    login,
    proc_cpu_s,
    reset,
    run_bench,
    start_server,
    wait_ready,
)

from app.config import get_settings

ENCODINGS = ("identity", "gzip", "br", "zstd")
DECODE: dict[str, Callable[[bytes], bytes]] = {
    "identity": lambda b: b,
    "gzip": gzip.decompress,
    "br": brotli.decompress,
    "zstd": lambda b: zstandard.ZstdDecompressor().decompressobj().decompress(b),
}

_CENTRE = "SELECT ST_X(c), ST_Y(c) FROM (SELECT ST_Centroid(ST_Collect(boundary)) AS c FROM grid_boundaries WHERE valid_to IS NULL) x"


async def fetch(
    client: httpx.AsyncClient, url: str, headers: dict[str, str]
) -> tuple[int, bytes, str]:
    """Status, the body as sent, and its Content-Encoding (identity when none)."""
    async with client.stream("GET", url, headers=headers) as r:
        body = b"".join([chunk async for chunk in r.aiter_raw()])
        return r.status_code, body, r.headers.get("content-encoding", "identity")


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await reset(conn)
        await load_demo_district(url)
        lon, lat = await conn.fetchrow(_CENTRE)
    finally:
        await conn.close()
    z14 = mercantile.tile(lon, lat, 14)
    z16 = mercantile.tile(lon, lat, 16)
    answers = {
        "tile z14": f"/tiles/grids/14/{z14.x}/{z14.y}.mvt",
        "tile z16": f"/tiles/grids/16/{z16.x}/{z16.y}.mvt",
        "grids GeoJSON (200)": "/api/v1/grids?limit=200",
        "categories": "/api/v1/categories",
        "OGC grids (100)": "/ogc/collections/grids/items?limit=100",
        "healthz": "/healthz",
        "openapi.json": "/openapi.json",
    }
    log = OUT / "compress-server.log"
    proc, port = start_server(url, log, env={"WANGGE_SCHEDULER_ENABLED": "false"})
    out: dict[str, Any] = {"answers": {}}
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            await wait_ready(proc, client, log)
            token = await login(client, "worker", get_settings().demo_password)
            auth = {"Authorization": f"Bearer {token}"}
            for name, path in answers.items():
                status, plain, _ = await fetch(
                    client, path, {**auth, "Accept-Encoding": "identity"}
                )
                if status != 200:
                    raise RuntimeError(f"{name}: HTTP {status}: {plain[:200]!r}")
                sizes, sent = {}, {}
                for enc in ENCODINGS:
                    _, body, used = await fetch(client, path, {**auth, "Accept-Encoding": enc})
                    if DECODE[used](body) != plain:
                        raise RuntimeError(f"{name}: the {used} body does not decode to identity's")
                    sizes[enc], sent[enc] = len(body), used
                cpu = dict.fromkeys(ENCODINGS, 0.0)
                for r in range(args.rounds):
                    order = ENCODINGS[r % 4 :] + ENCODINGS[: r % 4]
                    for enc in order:
                        h = {**auth, "Accept-Encoding": enc}
                        c0 = proc_cpu_s(proc.pid)
                        for _ in range(args.requests):
                            await fetch(client, path, h)
                        cpu[enc] += proc_cpu_s(proc.pid) - c0
                n = args.rounds * args.requests
                per = {enc: cpu[enc] / n * 1000 for enc in ENCODINGS}
                out["answers"][name] = {"path": path, "bytes": sizes, "sent": sent, "cpu_ms": per}
    finally:
        proc.terminate()
    print(
        f"\n  answers under WANGGE_COMPRESS_MIN_BYTES ({get_settings().compress_min_bytes} B) go plain"
    )
    print(
        f"  {'answer':<22}{'identity B':>11}  "
        + "  ".join(f"{e + ' B (÷id)':>17}" for e in ENCODINGS[1:])
        + "   server CPU ms/resp: identity · gzip · br · zstd (÷id)"
    )
    for name, a in out["answers"].items():
        b, c = a["bytes"], a["cpu_ms"]
        cells = "  ".join(
            f"{b[e]:>9,} ({b[e] / b['identity']:.2f})" if a["sent"][e] == e else f"{'plain':>17}"
            for e in ENCODINGS[1:]
        )
        cpus = " · ".join(
            f"{c[e]:.2f}" + ("" if e == "identity" else f" ({c[e] / c['identity']:.2f})")
            for e in ENCODINGS
        )
        print(f"  {name:<22}{b['identity']:>11,}  {cells}   {cpus}")
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await reset(conn)
    finally:
        await conn.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="fewer requests (4 rounds of 25)")
    p.add_argument("--rounds", type=int, help="interleaved rounds per answer (8)")
    p.add_argument("--requests", type=int, help="requests per round and encoding (50)")
    a = p.parse_args()
    a.rounds = a.rounds or (4 if a.quick else 8)
    a.requests = a.requests or (25 if a.quick else 50)
    if not (1 <= a.rounds <= 100 and 1 <= a.requests <= 10_000):
        p.error("--rounds in [1, 100], --requests in [1, 10000]")
    run_bench(
        "compress",
        f"compression benchmark: {len(ENCODINGS)} encodings, {a.rounds} rounds of {a.requests}"
        " requests per answer and encoding, one client, one uvicorn worker",
        lambda url: bench(url, a),
    )


if __name__ == "__main__":
    main()
