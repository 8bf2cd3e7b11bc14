"""The phone's round trips and bytes: a case with two photos, and a sync after a day offline.

What a grid worker's phone on 4G pays, counted request by request (not timed: round trips and
bytes on the wire, which the machine's load does not change):

* sign-in: ``POST /api/v1/auth/token`` (once; not counted in the report's round trips);
* **a case report with two photos**: ``POST /api/v1/cases`` (JSON, Idempotency-Key), then
  ``POST /api/v1/cases/{id}/attachments`` with both photos in one multipart body: 2 round trips
  (target <= 3). The field app sends each photo in its own request so that a lost one is retried
  alone (docs/field.md): 3 round trips. Both are printed, with the bytes each way;
* **a sync after a day offline**: the phone was in sync yesterday evening (its cursor); during
  the day the district worked its grids (``--day-cases`` new cases in the worker's grids, a third
  of them moved on by the centre: registered); then ``GET /api/v1/sync`` page by page (one request
  per page, ``limit=200``, the app's page) with ``Accept-Encoding: gzip, br, zstd`` (what the
  field app's WebView sends): the bytes of each page as sent (compressed) and decoded; plus the
  first sync of the worker's whole scope for comparison.

Photos: two seeded JPEGs of 1600 x 1200 (the field app's resize, longest side 1600 px), quality
85. Needs BENCH_DATABASE_URL: an empty throwaway database (`make bench` provides one).
Run: ``BENCH_DATABASE_URL=postgresql://... .venv/bin/python bench/bench_phone.py``.
Results also go to bench/out/phone.json.
"""

from __future__ import annotations

import asyncio
import io
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import (
    OUT,
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

SEED = 20261202
ENCODINGS = "gzip, br, zstd"


def photo(seed: int) -> bytes:
    """A 1600 x 1200 JPEG that compresses like a photo (smooth gradients plus sensor noise)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:1200, 0:1600]
    base = np.stack([(x * 0.1 + y * 0.05) % 256, (y * 0.15) % 256, (x * 0.07 + 80) % 256], axis=-1)
    img = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(img).save(out, "JPEG", quality=85)
    return out.getvalue()


class Wire:
    """Counts the round trips and the bytes each way of one phone's requests."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.log: list[dict[str, Any]] = []

    async def send(self, label: str, method: str, url: str, **kw: Any) -> httpx.Response:
        req = self.client.build_request(method, url, **kw)
        req.read()  # a multipart body is a stream until read
        sent = len(req.content) + sum(len(k) + len(v) + 4 for k, v in req.headers.raw) + 16
        r = await self.client.send(req)
        await r.aread()
        got = r.num_bytes_downloaded + sum(len(k) + len(v) + 4 for k, v in r.headers.raw) + 16
        self.log.append(
            {
                "label": label,
                "status": r.status_code,
                "up_bytes": sent,
                "down_bytes": got,
                "body_wire_bytes": r.num_bytes_downloaded,
                "body_decoded_bytes": len(r.content),
                "encoding": r.headers.get("content-encoding", "identity"),
            }
        )
        return r


async def report_with_photos(
    wire: Wire, auth: dict[str, str], body: dict[str, Any], photos: list[bytes], together: bool
) -> list[dict[str, Any]]:
    start = len(wire.log)
    r = await wire.send(
        "POST /api/v1/cases",
        "POST",
        "/api/v1/cases",
        json=body,
        headers={**auth, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    path = f"/api/v1/cases/{r.json()['id']}/attachments"
    groups = [photos] if together else [[p] for p in photos]
    for group in groups:
        files = [("files", (f"p{i}.jpg", p, "image/jpeg")) for i, p in enumerate(group)]
        r = await wire.send(f"POST {path}", "POST", path, files=files, headers=auth)
        assert r.status_code == 201, r.text
    return wire.log[start:]


async def sync_pages(wire: Wire, auth: dict[str, str], cursor: str | None) -> tuple[list[Any], str]:
    start = len(wire.log)
    while True:
        q = "/api/v1/sync?limit=200" + (f"&cursor={cursor}" if cursor else "")
        r = await wire.send("GET /api/v1/sync", "GET", q, headers=auth)
        assert r.status_code == 200, r.text
        page = r.json()
        wire.log[-1]["items"] = len(page["cases"])
        cursor = page["cursor"]
        if not page["has_more"]:
            break
    return wire.log[start:], cursor


async def amain(url: str, day_cases: int) -> dict[str, Any]:
    conn = await asyncpg.connect(libpq_url(url))
    try:
        if await conn.fetchval("SELECT count(*) FROM grids"):
            raise SystemExit("bench_phone: BENCH_DATABASE_URL must be an empty database")
        await load_demo_district(url)
        await conn.execute("ANALYZE")
    except BaseException:
        await reset(conn)
        await conn.close()
        raise
    log_path = OUT / "phone-uvicorn.log"
    proc, port = start_server(url, log_path)
    client = httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        timeout=60,
        trust_env=False,
        headers={"Accept-Encoding": ENCODINGS},
    )
    try:
        await wait_ready(proc, client, log_path)
        password = get_settings().demo_password
        wire = Wire(client)
        r = await wire.send(
            "POST /api/v1/auth/token",
            "POST",
            "/api/v1/auth/token",
            data={"username": "worker", "password": password},
        )
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        centre = {"Authorization": f"Bearer {await login(client, 'centre', password)}"}
        sign_in = wire.log[-1]
        grids = await conn.fetch(
            """
            SELECT ST_X(ST_PointOnSurface(b.boundary)) AS lon,
                   ST_Y(ST_PointOnSurface(b.boundary)) AS lat
            FROM users u JOIN posts p ON p.user_id = u.id JOIN post_grids pg ON pg.post_id = p.id
            JOIN grid_boundaries b ON b.grid_id = pg.grid_id AND b.valid_to IS NULL
            WHERE u.username = 'worker' ORDER BY pg.grid_id
            """
        )
        category = await conn.fetchval(
            "SELECT code FROM categories WHERE active ORDER BY code LIMIT 1"
        )
        photos = [photo(SEED), photo(SEED + 1)]

        def body(i: int) -> dict[str, Any]:
            g = grids[i % len(grids)]
            return {
                "category": category,
                "title": "人行道井盖破损",
                "description": "巡查发现人行道井盖破损，存在安全隐患，请尽快处理",
                "location": {"lon": g["lon"], "lat": g["lat"], "crs": "wgs84", "accuracy_m": 8},
            }

        together = await report_with_photos(wire, auth, body(0), photos, together=True)
        apart = await report_with_photos(wire, auth, body(1), photos, together=False)

        first, cursor = await sync_pages(wire, auth, None)  # in sync yesterday evening
        new_ids = []
        for i in range(day_cases):  # the day: the district works the worker's grids
            r = await client.post(
                "/api/v1/cases",
                json=body(i + 2),
                headers={**centre, "Idempotency-Key": str(uuid.uuid4())},
            )
            assert r.status_code == 201, r.text
            new_ids.append((r.json()["id"], r.json()["version"]))
        registered = 0
        for cid, version in new_ids[::3]:
            r = await client.post(
                f"/api/v1/cases/{cid}/actions/register",
                json={},
                headers={**centre, "If-Match": f'"{version}"'},
            )
            registered += r.status_code == 200
        # The phone comes back hours later: every transaction of the day has ended (the sync
        # hands out changes below the oldest running transaction's horizon).
        await asyncio.sleep(3)
        after_day, _ = await sync_pages(wire, auth, cursor)
    finally:
        await client.aclose()
        stop_server(proc)
        await reset(conn)
        await conn.close()
    return {
        "benchmark": "phone",
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "accept_encoding": ENCODINGS,
        "photo_bytes": [len(p) for p in photos],
        "sign_in": sign_in,
        "report_two_photos_one_upload": together,
        "report_two_photos_apart": apart,
        "first_sync": first,
        "day_cases": day_cases,
        "day_registered": registered,
        "sync_after_day": after_day,
    }


def print_report(res: dict[str, Any]) -> None:
    def rows(title: str, log: list[dict[str, Any]]) -> None:
        up = sum(x["up_bytes"] for x in log)
        down = sum(x["down_bytes"] for x in log)
        print(f"\n{title}: {len(log)} round trips, {up:,} bytes up, {down:,} bytes down")
        for x in log:
            items = f", {x['items']} cases" if "items" in x else ""
            print(
                f"  {x['label']:<40} {x['status']}  up {x['up_bytes']:>9,}  down "
                f"{x['down_bytes']:>8,} (body {x['body_wire_bytes']:,} {x['encoding']}, "
                f"{x['body_decoded_bytes']:,} decoded{items})"
            )

    print(f"photos: {', '.join(f'{b:,}' for b in res['photo_bytes'])} bytes (1600 x 1200 JPEG)")
    rows("sign-in (once)", [res["sign_in"]])
    rows("case + two photos in one upload", res["report_two_photos_one_upload"])
    rows("case + two photos, one per request (the field app)", res["report_two_photos_apart"])
    rows("first sync of the worker's scope", res["first_sync"])
    rows(
        f"sync after a day offline ({res['day_cases']} new cases, {res['day_registered']} "
        "registered since)",
        res["sync_after_day"],
    )
    n = len(res["report_two_photos_apart"])
    print(
        f"\ncase with two photos: {len(res['report_two_photos_one_upload'])} or {n} round trips "
        f"after sign-in (target <= 3): {'PASS' if n <= 3 else 'MISS'}"
    )


def main(argv: list[str]) -> None:
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="(same run: nothing here is timed)")
    p.add_argument("--day-cases", type=int, default=60, help="cases in the worker's grids (60)")
    a = p.parse_args(argv)
    if not 0 <= a.day_cases <= 5000:
        p.error("--day-cases in [0, 5000]")

    async def bench(url: str) -> dict[str, Any]:
        res = await amain(url, a.day_cases)
        print_report(res)
        return res

    run_bench(
        "phone",
        f"phone benchmark: round trips and bytes (Accept-Encoding: {ENCODINGS}); "
        f"{os.cpu_count()} CPUs",
        bench,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
