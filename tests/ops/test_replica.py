"""Read replicas on the Patroni cluster of `make ha-up` (run by `make test-ha`, before the
failover test; skipped elsewhere).

The app writes through the multi-host URL (`target_session_attrs=read-write`) and reads tiles,
the OGC API and figures from one standby (`WANGGE_DATABASE_REPLICA_URL`). With the standby's
replay paused (it keeps receiving WAL, so synchronous commits are not held up):

- a case just written is read back from the primary by the case API (read-your-writes);
- the OGC API, served by the replica, does not list it yet (it does read the replica);
- figures stay exact: their catch-up runs on the primary, and when the replica has not replayed
  it within `WANGGE_REPLICA_WAIT_MS` the figure is read from the primary;
- `/readyz` reports the replica and its lag;
- a second process whose limit is 1 s of lag stops reading the paused replica once it trails
  by more than that, and lists the case from the primary;
- once replay resumes the OGC API lists the case within seconds.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.ops.test_failover import ha, ha_database
from tests.reliability.live import Server, make_tokens

pytestmark = pytest.mark.skipif(
    not os.environ.get("WANGGE_HA_TEST"), reason="needs the HA cluster: run `make test-ha`"
)

DB = "wangge_replica"
GRID = "360602001001001"


@dataclass
class Rig:
    server: Server
    strict: Server
    tokens: dict[str, str]
    standby: AsyncEngine
    body: dict

    def h(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    from app.config import async_url

    workdir: Path = tmp_path_factory.mktemp("replica")
    url = await ha_database(DB)
    engine = create_async_engine(async_url(url))
    async with engine.connect() as c:
        lon, lat = (
            await c.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.boundary) p "
                    "FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id "
                    "WHERE g.code = :g AND b.valid_to IS NULL) x"
                ),
                {"g": GRID},
            )
        ).one()
        cat = (await c.execute(text("SELECT code FROM categories ORDER BY code LIMIT 1"))).scalar()
    await engine.dispose()
    tokens = await make_tokens(url)
    primary = ha("primary")
    node = next(n for n in ("node1", "node2", "node3") if n != primary)
    replica_url = f"postgresql://wangge@127.0.0.1:{ha('pg-port', node)}/{DB}"
    standby = create_async_engine(async_url(replica_url), isolation_level="AUTOCOMMIT")
    env = {
        "WANGGE_DATABASE_REPLICA_URL": replica_url,
        "WANGGE_REPLICA_MAX_LAG_SECONDS": "3600",
        "WANGGE_REPLICA_CHECK_SECONDS": "0.5",
        "WANGGE_REPLICA_WAIT_MS": "300",
        "WANGGE_SCHEDULER_ENABLED": "false",
        "WANGGE_MEDIA_BACKEND": "dir",
        "WANGGE_MEDIA_DIR": str(workdir / "media"),
    }
    server = Server(url, env, log=workdir / "app.log")
    strict = Server(url, {**env, "WANGGE_REPLICA_MAX_LAG_SECONDS": "1"}, log=workdir / "strict.log")
    await asyncio.to_thread(server.start)
    await asyncio.to_thread(strict.start)
    body = {"category": cat, "location": {"lon": lon, "lat": lat}}
    try:
        yield Rig(server, strict, tokens, standby, body)
    finally:
        strict.stop()
        async with standby.connect() as c:
            await c.execute(text("SELECT pg_wal_replay_resume()"))
        await asyncio.to_thread(ha, "maintenance", "off")
        await standby.dispose()
        server.stop()


async def _ogc_numbers(c: httpx.AsyncClient, rig: Rig, base: str = "") -> set[str]:
    r = await c.get(f"{base}/ogc/collections/cases/items?limit=500", headers=rig.h("worker"))
    assert r.status_code == 200, r.text
    return {f["properties"]["number"] for f in r.json()["features"]}


async def _total(c: httpx.AsyncClient, rig: Rig) -> int:
    now = datetime.now(ZoneInfo("Asia/Shanghai")).replace(microsecond=0, tzinfo=None)
    params = {
        "since": (now - timedelta(days=1)).isoformat(),
        "until": (now + timedelta(days=1)).isoformat(),
    }
    r = await c.get("/api/v1/stats/channels", params=params, headers=rig.h("centre"))
    assert r.status_code == 200, r.text
    return int(r.json()["total"])


async def test_reads_go_to_the_replica_and_writes_are_read_back_from_the_primary(rig: Rig) -> None:
    async with httpx.AsyncClient(base_url=rig.server.base, timeout=20) as c:
        ready = (await c.get("/readyz")).json()
        assert ready["replica"]["in_use"] is True, ready
        assert ready["replica"]["lag_seconds"] is not None
        before = await _total(c, rig)

        # Patroni resumes a paused replay: its maintenance mode leaves the nodes alone
        await asyncio.to_thread(ha, "maintenance", "on")
        async with rig.standby.connect() as s:
            await s.execute(text("SELECT pg_wal_replay_pause()"))
            assert (await s.execute(text("SELECT pg_is_wal_replay_paused()"))).scalar()
        r = await c.post(
            "/api/v1/cases", json={**rig.body, "title": "备库测试"}, headers=rig.h("worker")
        )
        assert r.status_code == 201, r.text
        case = r.json()
        # read-your-writes: the case API reads the primary
        got = await c.get(f"/api/v1/cases/{case['id']}", headers=rig.h("worker"))
        assert got.status_code == 200 and got.json()["number"] == case["number"]
        listed = await c.get("/api/v1/cases?limit=5", headers=rig.h("worker"))
        assert case["id"] in {x["id"] for x in listed.json()["items"]}
        # the map reads the replica, which has not replayed the case
        assert case["number"] not in await _ogc_numbers(c, rig)
        # figures are exact all the same (read from the primary after the replica's wait)
        started = time.monotonic()
        assert await _total(c, rig) == before + 1
        assert time.monotonic() - started >= 0.3
        # the replica trails by more than 1 s: the strict process reads the primary
        deadline = time.monotonic() + 15
        while case["number"] not in await _ogc_numbers(c, rig, rig.strict.base):
            assert time.monotonic() < deadline, "the strict process kept reading the replica"
            await asyncio.sleep(0.3)
        lag = (await c.get(rig.strict.base + "/readyz")).json()["replica"]
        assert lag["in_use"] is False and lag["lag_seconds"] > 1, lag
        assert case["number"] not in await _ogc_numbers(c, rig)  # the lenient one still does

        async with rig.standby.connect() as s:
            await s.execute(text("SELECT pg_wal_replay_resume()"))
        await asyncio.to_thread(ha, "maintenance", "off")
        deadline = time.monotonic() + 15
        while case["number"] not in await _ogc_numbers(c, rig):
            assert time.monotonic() < deadline, "the replica did not catch up in 15 s"
            await asyncio.sleep(0.2)
        print(f"replica caught up {time.monotonic() - deadline + 15:.2f} s after the resume")
        assert await _total(c, rig) == before + 1
