"""What one intake statement costs a Citus cluster in connections and tasks (issue 18).

Runs the app's intake statement (`app.cases.intake`, as `report` builds it, no Idempotency-Key)
N times in a row on one coordinator connection of a distributed database that holds the demo
(e.g. `make test-citus`'s, or one made as docs/benchmarks.md says), with the Citus settings
of the hot pool or without them, and prints per intake: the new sessions the workers saw
(`pg_stat_database.sessions`), the duplicate search's tasks and the two-phase-commit prepares
(from `citus.log_remote_commands`), and the wall time. The cases it makes stay in the database:
use a throwaway one.

Run: ``.venv/bin/python bench/citus_intake_trace.py postgresql://wangge@127.0.0.1:9700/<db> [N]``
"""

from __future__ import annotations

import asyncio
import sys
import time

import asyncpg

from app.cases import intake
from app.cases.schemas import CaseCreate
from app.db import HOT_CITUS_SETTINGS, make_engine
from app.grids import lookup_index

_POINTS = """
SELECT ST_X(ST_PointOnSurface(boundary)), ST_Y(ST_PointOnSurface(boundary))
FROM grid_boundaries WHERE valid_to IS NULL ORDER BY grid_id
"""
_WORKERS = "SELECT nodename, nodeport FROM pg_dist_node WHERE groupid > 0 AND noderole = 'primary'"


async def worker_sessions(urls: list[str]) -> int:
    total = 0
    for url in urls:
        c = await asyncpg.connect(url)
        try:
            q = "SELECT sessions FROM pg_stat_database WHERE datname = current_database()"
            total += int(await c.fetchval(q))
        finally:
            await c.close()
    return total


async def trace(url: str, n: int, settings: dict[str, str], hint: bool) -> str:
    c = await asyncpg.connect(
        url, server_settings={"citus.override_table_visibility": "off", **settings}
    )
    try:
        db = url.rsplit("/", 1)[1]
        user = await c.fetchval("SELECT current_user")
        workers = [f"postgresql://{user}@{h}:{p}/{db}" for h, p in await c.fetch(_WORKERS)]
        reporter = await c.fetchval("SELECT id FROM users WHERE username = 'worker'")
        cat = await c.fetchval("SELECT code FROM categories WHERE active ORDER BY code LIMIT 1")
        points = [(float(x), float(y)) for x, y in await c.fetch(_POINTS)]
        lookup_index.clear()
        if hint:
            engine = make_engine(url=url.replace("postgresql://", "postgresql+asyncpg://", 1))
            async with engine.connect() as conn:
                await lookup_index.refresh(conn, 200_000)
            await engine.dispose()
        notes: list[str] = []
        c.add_log_listener(lambda _c, m: notes.append(m.message))
        await c.execute("SET citus.log_remote_commands = on; SET client_min_messages = log")
        tasks = prepares = 0
        before = await worker_sessions(workers)
        t0 = time.perf_counter()
        for i in range(n):
            lon, lat = points[(i * 7) % len(points)]
            body = CaseCreate.model_validate(
                {
                    "category": cat,
                    "title": "垃圾堆放",
                    "description": "楼下垃圾无人清理",
                    "location": {"lon": lon, "lat": lat, "accuracy_m": 8},
                }
            )
            stmt, args = intake._params(body, reporter, "app", None)
            notes.clear()
            await c.fetchrow(stmt.sql, *args)
            tasks += sum(" AS distance_m FROM " in m and "issuing" in m for m in notes)
            prepares += sum("PREPARE TRANSACTION" in m for m in notes)
        wall = time.perf_counter() - t0
        # Each worker_sessions() call itself opens one session per worker.
        opened = await worker_sessions(workers) - before - len(workers)
        lookup_index.clear()
        return (
            f"{opened / n:5.2f} new worker sessions, {tasks / n:5.1f} duplicate-search tasks, "
            f"{prepares / n:3.1f} prepares, {1000 * wall / n:6.1f} ms per intake"
        )
    finally:
        await c.close()


async def main(argv: list[str]) -> None:
    url, n = argv[0], int(argv[1]) if len(argv) > 1 else 40
    for label, settings, hint in (
        ("Citus defaults, no lookup index", {}, False),
        ("hot pool's settings, no lookup index", HOT_CITUS_SETTINGS, False),
        ("hot pool's settings, lookup index", HOT_CITUS_SETTINGS, True),
    ):
        print(f"{label:40s} {await trace(url, n, settings, hint)}", flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
