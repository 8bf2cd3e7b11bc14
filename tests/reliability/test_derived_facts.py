"""The evaluation facts off the write path (migration 0025), on real servers and committed data.

Two uvicorn processes on one database, each running the facts' background catch-up every 0.5 s
(the loop's clock off). Several drivers run whole loops at once through both servers while a
reader asks for the figures after every evaluation. Then:
- no request failed (the writers never wait on a catch-up: no deadlock, no 500);
- every figure read right after an evaluation already counts it (read-your-writes);
- with no reader at all, the background catch-up empties `case_changes` (the lag is measured
  and printed) and the facts equal their recomputation from the raw tables.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.factories import DEMO_GRID, Loop, point_in_grid
from tests.helpers import assert_stats_facts_exact
from tests.reliability.live import Server, create_database, drop_database, make_tokens

DRIVERS = 4
LOOPS_PER_DRIVER = 4
STEPS = (
    ("community", "register", {}),
    ("street", "dispatch", {}),
    ("dept", "sign_in", {}),
    ("dept", "feedback", {"note": "已处置"}),
    ("worker", "verify", {"passed": True}),
    ("worker", "evaluate", {"satisfaction": "satisfied"}),
)


@dataclass
class Rig:
    url: str
    engine: AsyncEngine
    servers: list[Server]
    tokens: dict[str, str]


@pytest_asyncio.fixture(scope="module")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    from app.config import async_url

    base = os.environ["TEST_DATABASE_URL"]
    name = f"wangge_derive_{os.getpid()}"
    url = await create_database(base, name)
    tokens = await make_tokens(url)
    logdir = tmp_path_factory.mktemp("derive")
    env = {
        "WANGGE_DERIVE_SECONDS": "0.5",
        "WANGGE_SCHEDULER_ENABLED": "false",
        "WANGGE_INTAKE_PER_ACCOUNT_PER_MINUTE": "100000",
        "WANGGE_INTAKE_PER_IP_PER_MINUTE": "1000000",
    }
    servers = [Server(url, env, log=logdir / f"app{i}.log") for i in range(2)]
    engine = create_async_engine(async_url(url))
    try:
        for s in servers:
            s.start()
        yield Rig(url, engine, servers, tokens)
    finally:
        for s in servers:
            s.stop()
        await engine.dispose()
        await drop_database(base, name)


def _as(tokens: dict[str, str]) -> Any:
    return lambda who: {"Authorization": f"Bearer {tokens[who]}"}


async def _figures(client: httpx.AsyncClient, headers: dict[str, str], since: datetime) -> Any:
    """The district's figures for the cases reported from `since` to a day later."""
    r = await client.get(
        "/api/v1/stats/indicators",
        params={
            "unit": "district",
            "period": "custom",
            "since": since.isoformat(),
            "until": (since + timedelta(days=1)).isoformat(),
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    [row] = r.json()["items"]
    return row["figures"]


async def test_figures_stay_exact_with_the_facts_off_the_write_path(rig: Rig) -> None:
    as_user = _as(rig.tokens)
    since = datetime.now(UTC) - timedelta(minutes=5)  # a window around the test's own cases
    async with rig.engine.connect() as conn:
        lon, lat = await point_in_grid(conn, DEMO_GRID)
        category = (
            await conn.execute(
                text(
                    "SELECT code FROM categories WHERE lead_department = 'CGJ' "
                    "AND co_departments = '{}' AND active ORDER BY code LIMIT 1"
                )
            )
        ).scalar_one()
    clients = [httpx.AsyncClient(base_url=s.base, timeout=30) for s in rig.servers]
    errors: list[str] = []
    stale: list[tuple[int, int]] = []
    satisfied = 0
    lock = asyncio.Lock()

    async def driver(i: int) -> None:
        nonlocal satisfied
        client = clients[i % len(clients)]
        reader = clients[(i + 1) % len(clients)]  # the figures from the other process
        for n in range(LOOPS_PER_DRIVER):
            r = await client.post(
                "/api/v1/cases",
                headers={**as_user("worker"), "Idempotency-Key": f"derive-{i}-{n}"},
                json={
                    "category": category,
                    "title": f"楼道堆物 {i}-{n}",
                    "description": "楼道堆放杂物，影响通行",
                    "location": {"lon": lon, "lat": lat},
                },
            )
            if r.status_code != 201:
                errors.append(f"intake {r.status_code}: {r.text[:200]}")
                return
            loop = Loop(client, as_user, r.json())
            for who, action, body in STEPS:
                resp = await client.post(
                    f"/api/v1/cases/{loop.id}/actions/{action}",
                    json=body,
                    headers={**as_user(who), "If-Match": loop.etag},
                )
                if resp.status_code != 200:
                    errors.append(f"{action} {resp.status_code}: {resp.text[:200]}")
                    return
                loop.etag = resp.headers["etag"]
            async with lock:
                satisfied += 1
                done = satisfied
            seen = (await _figures(reader, as_user("centre"), since))["satisfied"]["value"]
            if seen < done:
                stale.append((seen, done))

    await asyncio.gather(*(driver(i) for i in range(DRIVERS)))
    last_write = time.monotonic()
    assert errors == []
    assert stale == [], "a figure read after an evaluation did not count it"
    total = DRIVERS * LOOPS_PER_DRIVER
    assert satisfied == total

    # No reader from here on: one more case, and the background catch-up alone takes it.
    r = await clients[0].post(
        "/api/v1/cases",
        headers={**as_user("worker"), "Idempotency-Key": "derive-last"},
        json={
            "category": category,
            "title": "楼道堆物（最后一件）",
            "description": "楼道堆放杂物",
            "location": {"lon": lon, "lat": lat},
        },
    )
    assert r.status_code == 201, r.text
    last_write = time.monotonic()
    lag = None
    while time.monotonic() - last_write < 20:
        async with rig.engine.connect() as conn:
            left = (await conn.execute(text("SELECT count(*) FROM case_changes"))).scalar_one()
        if left == 0:
            lag = time.monotonic() - last_write
            break
        await asyncio.sleep(0.1)
    print(
        f"\nderived facts: {total} loops by {DRIVERS} drivers, 0 errors; a case written with no "
        f"reader left the backlog {lag:.2f} s later (WANGGE_DERIVE_SECONDS=0.5)"
    )
    assert lag is not None, "the background catch-up did not empty case_changes in 20 s"
    async with rig.engine.connect() as conn:
        await assert_stats_facts_exact(conn)
    figures = await _figures(clients[0], as_user("centre"), since)
    assert figures["satisfied"]["value"] == total
    assert figures["received"]["value"] == total + 1
    for c in clients:
        await c.aclose()
