"""What masking personal data costs a page of the public Open311 feed (issue 17: < 5 %).

The demo district, 150 hotline requests whose descriptions and addresses carry personal data in
the forms the detector knows (mobiles with spaces, dashes, +86 and full-width digits, landlines,
resident ID numbers, bank cards, plates, e-mail addresses) inside Chinese text. One uvicorn
worker serves `GET /open311/v2/requests.json?page_size=100` N times; the server's own CPU time
per page is read from /proc (user + system), so the client's cost is not counted. In the same
run, in this process, `app.pii.mask_text` masks the same 100 descriptions and addresses N times
(what the page's serialisation calls). Printed: CPU ms per page for both and their ratio.

    BENCH_DATABASE_URL=... .venv/bin/python bench/bench_masking.py [--pages 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx

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
from app.pii import mask_text

_POINTS = """
SELECT c.code, ST_X(ST_PointOnSurface(b.boundary)) AS lon, ST_Y(ST_PointOnSurface(b.boundary)) AS lat
FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id
JOIN LATERAL (SELECT code FROM categories WHERE active ORDER BY md5(g.code || code) LIMIT 1) c
  ON true
WHERE b.valid_to IS NULL ORDER BY g.code LIMIT 150
"""

FORMS = [
    "联系电话 138 1234 {n:04d}，",
    "手机+86 139-{n:04d}-5678，",
    "回拨 ０１３８１２３{n:04d}，",
    "座机 0701-6200{n:04d}，",
    "身份证 36010219800101{n:04d}，",
    "银行卡 6222 0212 3456 {n:04d}，",
    "车牌 赣A{n:05d}，",
    "邮箱 r{n}@example.cn，",
]


def description(i: int) -> str:
    parts = [FORMS[(i + k) % len(FORMS)].format(n=i % 10000) for k in range(3)]
    return "小区门口垃圾堆放，影响通行，" + "".join(parts) + "请尽快处理。"


async def bench(url: str, args: argparse.Namespace) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        await reset(conn)
        await load_demo_district(url)
        points = [dict(r) for r in await conn.fetch(_POINTS)]
    finally:
        await conn.close()
    env: dict[str, str | None] = {
        "WANGGE_OPEN311_KEY_PER_MINUTE": "100000",
        "WANGGE_OPEN311_IP_PER_MINUTE": "100000",
    }
    proc, port = start_server(url, OUT / "masking-uvicorn.log", env=env)
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30, trust_env=False)
    texts: list[str] = []
    try:
        await wait_ready(proc, client, OUT / "masking-uvicorn.log")
        admin = await login(client, "admin", get_settings().demo_password)
        r = await client.post(
            "/api/v1/open311/keys",
            headers={"Authorization": f"Bearer {admin}"},
            json={"integrator": "bench masking", "channel": "hotline"},
        )
        r.raise_for_status()
        key = r.json()["key"]
        for i, p in enumerate(points):
            desc, addr = description(i), f"幸福路{i}号 业主电话13{i % 10}8765{i % 10000:04d}"
            texts += [desc, addr]
            r = await client.post(
                "/open311/v2/requests.json",
                content=urlencode(
                    {
                        "api_key": key,
                        "service_code": p["code"],
                        "lat": p["lat"],
                        "long": p["lon"],
                        "description": desc,
                        "address_string": addr,
                        "attribute[title]": "市民反映问题",
                    }
                ),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
            r.raise_for_status()
        page = "/open311/v2/requests.json?page_size=100"
        first = await client.get(page)
        first.raise_for_status()
        listed = first.json()
        masked = sum(1 for s in listed if "*" in (s.get("description") or ""))
        for _ in range(20):  # warm-up
            (await client.get(page)).raise_for_status()
        rounds = []
        for _ in range(args.rounds):  # interleaved slices: the machine is shared and noisy
            cpu0 = proc_cpu_s(proc.pid)
            for _ in range(args.pages):
                (await client.get(page)).raise_for_status()
            server = (proc_cpu_s(proc.pid) - cpu0) / args.pages
            sample = texts[:200]  # one page: 100 descriptions and 100 addresses
            t0 = time.process_time()
            for _ in range(args.pages):
                for t in sample:
                    mask_text(t)
            masking = (time.process_time() - t0) / args.pages
            rounds.append((server, masking))
    finally:
        await client.aclose()
    server = sorted(r[0] for r in rounds)[len(rounds) // 2]
    masking = sorted(r[1] for r in rounds)[len(rounds) // 2]
    ratio = masking / server if server else None
    print(f"page of {len(listed)} requests, {masked} with masked descriptions")
    print(f"  server CPU per page   {server * 1000:7.2f} ms (median of {args.rounds} rounds)")
    print(f"  masking CPU per page  {masking * 1000:7.2f} ms (200 texts)")
    print(f"  masking / page        {ratio:7.3f}  (target < 0.05)")
    return {
        "requests_listed": len(listed),
        "masked_descriptions": masked,
        "server_cpu_ms_per_page": round(server * 1000, 3),
        "masking_cpu_ms_per_page": round(masking * 1000, 3),
        "masking_share": round(ratio, 4) if ratio else None,
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=100, help="pages per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="30 pages, 3 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.pages, args.rounds = 30, 3
    run_bench(
        "masking", "masking personal data in a page of the Open311 feed", lambda u: bench(u, args)
    )


if __name__ == "__main__":
    main(sys.argv[1:])
