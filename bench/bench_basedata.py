"""Benchmark the base data: a 50,000-row ledger import, a worker's masked resident list, and a
resident search by ID number (exact, through the keyed hash), the last two beside raw SQL.

The app in process (httpx's ASGI transport: the whole HTTP stack, policy, scope and masking, no
sockets) on the demo district (with its demo grid's base data), signed in as `worker`:

* ``import``  POST /api/v1/grids/{grid}/basedata/import of a generated CSV of 50,000 residents
  (valid ID numbers, phones, tags; houses created), dry-run first, then stored: rows/s; the
  Python heap's peak during a second dry run (tracemalloc: the file, its rows, the plan), and
  the process's peak RSS before and after (ru_maxrss);
* ``list``    GET /api/v1/grids/{grid}/residents?limit=50 (a page, masked) against the same
  statement sent by asyncpg (the masked columns, the same joins, LIMIT 50, the total);
* ``search``  GET /api/v1/grids/{grid}/residents?id_number=… against asyncpg's
  ``WHERE district_id = $1 AND id_hash = $2`` with the hash computed beforehand.

Reported: rows/s and seconds for the import; per request p50/mean for app and raw SQL, and the
ratio app/raw. Measurements, never failures.

Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_basedata.py [--quick]``
(``scripts/bench.sh`` provides the database). Results also go to bench/out/basedata.json.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import resource
import statistics
import sys
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path
from typing import Any

if os.environ.get("BENCH_DATABASE_URL"):
    os.environ["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
os.environ.setdefault("WANGGE_STATEMENT_TIMEOUT_MS", "120000")

import asyncpg
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import libpq_url, load_demo_district, login, reset, run_bench

GRID = "360602001001001"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="5,000 rows and fewer requests")
    p.add_argument("--rows", type=int, default=None)
    p.add_argument("--requests", type=int, default=None)
    a = p.parse_args(argv)
    a.rows = a.rows or (5_000 if a.quick else 50_000)
    a.requests = a.requests or (50 if a.quick else 300)
    return a


def _ledger(
    buildings: list[str], n: int, base: date = date(1940, 1, 1), room: str = "B"
) -> tuple[bytes, list[str]]:
    from app.basedata.checks import check_digit

    rng = random.Random(21)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(
        [
            "楼栋",
            "单元",
            "楼层",
            "房号",
            "户号",
            "姓名",
            "身份证号",
            "联系电话",
            "与户主关系",
            "户籍",
            "实有",
            "标签",
        ]
    )
    ids = []
    house = 0
    i = 0
    while i < n:
        house += 1
        b = buildings[house % len(buildings)]
        size = min(rng.choice((1, 2, 2, 3, 4)), n - i)
        for k in range(size):
            born = base + timedelta(days=i // 900)
            first = f"360602{born:%Y%m%d}{i % 900:03d}"
            idn = first + check_digit(first)
            ids.append(idn)
            w.writerow(
                [
                    b,
                    str(house % 4 + 1),
                    str(house % 30 + 1),
                    f"{room}{house}",
                    f"H{house}",
                    f"压测{i}",
                    idn,
                    f"139{i:08d}",
                    "户主" if k == 0 else "子女",
                    "是",
                    "是",
                    "独居老人" if size == 1 and k == 0 and rng.random() < 0.3 else "",
                ]
            )
            i += 1
    return buf.getvalue().encode("utf-8-sig"), ids


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 3),
        "mean_ms": round(statistics.fmean(samples) * 1000, 3),
    }


_RAW_LIST = """
SELECT r.id, r.district_id, r.household_id, r.name, r.gender, r.birth_year, r.id_masked,
       r.phone_masked, r.relation, r.registered, r.living, r.tags, r.status, r.moved_at, r.demo,
       r.created_at, r.updated_at, hh.house_id, b.grid_id, count(*) OVER () AS total
FROM residents r
JOIN households hh ON hh.id = r.household_id AND hh.district_id = r.district_id
JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
JOIN buildings b ON b.id = h.building_id
WHERE b.grid_id = $1 AND r.district_id = $2 AND r.status = 'active' {extra}
ORDER BY r.id LIMIT 50 OFFSET 0
"""


async def bench(url: str) -> dict[str, Any]:
    a = ARGS
    raw = await asyncpg.connect(libpq_url(url))
    await reset(raw)
    await load_demo_district(url)
    grid = await raw.fetchrow(
        "SELECT g.id, s.parent_id AS district FROM grids g JOIN areas c ON c.id = g.community_id "
        "JOIN areas s ON s.id = c.parent_id WHERE g.code = $1",
        GRID,
    )
    buildings = [
        r["name"]
        for r in await raw.fetch("SELECT name FROM buildings WHERE grid_id = $1", grid["id"])
    ]
    data, ids = _ledger(buildings, a.rows)
    from app.config import get_settings
    from app.main import app

    report: dict[str, Any] = {"rows": a.rows, "file_mb": round(len(data) / 1_048_576, 2)}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bench", timeout=600
    ) as c:
        token = await login(c, "worker", get_settings().demo_password)
        h = {"Authorization": f"Bearer {token}"}
        path = f"/api/v1/grids/{grid['id']}/basedata/import"
        files = {"file": ("ledger.csv", data, "text/csv")}
        rss0 = _rss_mb()
        t0 = time.perf_counter()
        r = await c.post(
            path, files=files, data={"dry_run": "true", "create_houses": "true"}, headers=h
        )
        dry_s = time.perf_counter() - t0
        assert r.status_code == 200, r.text[:500]
        tracemalloc.start()
        r = await c.post(
            path, files=files, data={"dry_run": "true", "create_houses": "true"}, headers=h
        )
        traced_peak = tracemalloc.get_traced_memory()[1] / 1_048_576
        tracemalloc.stop()
        t0 = time.perf_counter()
        r = await c.post(path, files=files, data={"create_houses": "true"}, headers=h)
        store_s = time.perf_counter() - t0
        assert r.status_code == 200, r.text[:500]
        report["import"] = {
            "dry_run_s": round(dry_s, 2),
            "dry_run_rows_per_s": round(a.rows / dry_s),
            "store_s": round(store_s, 2),
            "store_rows_per_s": round(a.rows / store_s),
            "answer": r.json(),
            "dry_run_python_peak_mb": round(traced_peak, 1),
            "peak_rss_mb_before": round(rss0, 1),
            "peak_rss_mb_after": round(_rss_mb(), 1),
        }
        print(
            f"import {a.rows} rows: dry-run {dry_s:.1f} s ({a.rows / dry_s:,.0f} rows/s), "
            f"stored {store_s:.1f} s ({a.rows / store_s:,.0f} rows/s); peak RSS "
            f"{rss0:.0f} → {_rss_mb():.0f} MB; Python peak of a dry run {traced_peak:.0f} MB",
            flush=True,
        )
        await raw.execute("ANALYZE residents; ANALYZE households; ANALYZE houses")

        list_url = f"/api/v1/grids/{grid['id']}/residents"
        app_list, raw_list, app_find, raw_find = [], [], [], []
        from app.basedata import crypto

        rng = random.Random(5)
        sample = [rng.choice(ids) for _ in range(a.requests)]
        hashes = [crypto.keyed_hash(i, "id_number") for i in sample]
        for _ in range(5):  # warm up both
            await c.get(list_url, params={"limit": 50}, headers=h)
            await raw.fetch(_RAW_LIST.format(extra=""), grid["id"], grid["district"])
        for k in range(a.requests):
            t0 = time.perf_counter()
            r = await c.get(list_url, params={"limit": 50}, headers=h)
            app_list.append(time.perf_counter() - t0)
            assert r.status_code == 200 and len(r.json()["items"]) == 50
            t0 = time.perf_counter()
            await raw.fetch(_RAW_LIST.format(extra=""), grid["id"], grid["district"])
            raw_list.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            r = await c.get(list_url, params={"id_number": sample[k]}, headers=h)
            app_find.append(time.perf_counter() - t0)
            assert r.status_code == 200 and len(r.json()["items"]) == 1, r.text[:300]
            t0 = time.perf_counter()
            rows = await raw.fetch(
                _RAW_LIST.format(extra="AND r.id_hash = $3"),
                grid["id"],
                grid["district"],
                hashes[k],
            )
            raw_find.append(time.perf_counter() - t0)
            assert len(rows) == 1
    await raw.close()
    for name, app_s, raw_s in (("list", app_list, raw_list), ("search", app_find, raw_find)):
        x, y = _stats(app_s), _stats(raw_s)
        report[name] = {
            "app": x,
            "raw_sql": y,
            "ratio_p50": round(x["p50_ms"] / y["p50_ms"], 2),
            "ratio_mean": round(x["mean_ms"] / y["mean_ms"], 2),
        }
        print(
            f"{name}: app p50 {x['p50_ms']} ms, raw SQL p50 {y['p50_ms']} ms, "
            f"ratio {report[name]['ratio_p50']}× (mean {report[name]['ratio_mean']}×)",
            flush=True,
        )
    return report


ARGS = parse_args(sys.argv[1:])

if __name__ == "__main__":
    run_bench("basedata", f"bench_basedata: {ARGS.rows} rows, {ARGS.requests} requests", bench)
