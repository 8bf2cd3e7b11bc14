"""Failover on the Patroni cluster of `make ha-up` (run by `make test-ha`; skipped elsewhere).

While phones send cases at a steady rate and a department signs in to dispatched cases, the
primary dies (`kill -9` of its Patroni and its postmaster, as when its machine dies). Patroni
promotes the synchronous standby; the app, connected through the multi-host URL with
`target_session_attrs=read-write`, writes to the new primary without a restart. Asserted:

- every request answered 2xx is in the new primary (0 acknowledged writes lost);
- the outage seen by clients is bounded (< 30 s; measured and printed);
- in between the app answered 503 problem+json with Retry-After, never a 500;
- the clock (escalation), the outbox and the live stream resume on the new primary;
- the old primary rejoins as a standby (and has every acknowledged case).

Everything runs on 127.0.0.1; bounded: about a minute.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.reliability.live import ROOT, Server, make_tokens

pytestmark = pytest.mark.skipif(
    not os.environ.get("WANGGE_HA_TEST"), reason="needs the HA cluster: run `make test-ha`"
)

HA = str(ROOT / "scripts" / "ha.sh")
DB = "wangge_ha"
ENV = {
    "WANGGE_DB_POOL_SIZE": "8",
    "WANGGE_DB_MAX_OVERFLOW": "4",
    "WANGGE_DB_CONNECT_TIMEOUT_SECONDS": "2",
    "WANGGE_DB_POOL_TIMEOUT_SECONDS": "3",
    "WANGGE_IDEMPOTENCY_LEASE_SECONDS": "5",
    "WANGGE_SCHEDULER_SECONDS": "1",
    "WANGGE_WEBHOOK_POLL_SECONDS": "0.5",
    "WANGGE_INTAKE_PER_ACCOUNT_PER_MINUTE": "100000",
    "WANGGE_INTAKE_PER_IP_PER_MINUTE": "1000000",
}


def ha(*args: str) -> str:
    return subprocess.run(
        [HA, *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout.strip()


@dataclass
class Answer:
    sent: float
    done: float
    what: str
    status: int | str
    ctype: str = ""
    retry_after: str | None = None


@dataclass
class Log:
    answers: list[Answer] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)
    """title → case id of every case whose creation was answered 2xx."""
    signed_in: set[int] = field(default_factory=set)
    """cases whose sign-in was answered 2xx."""


@dataclass
class Rig:
    url: str
    engine: AsyncEngine
    tokens: dict[str, str]
    server: Server
    dept: int
    body: dict

    def h(self, who: str, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}


async def _replayed_everywhere(name: str, timeout: float = 30) -> None:
    """Wait until every node accepts connections to database `name`. The multi-host URL tries
    the hosts in order, and asyncpg gives up (instead of trying the next host) on a standby that
    has not yet replayed the CREATE DATABASE: "database does not exist" (seen in CI)."""
    import asyncpg

    for node in ("node1", "node2", "node3"):
        port = int(ha("pg-port", node))
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = await asyncpg.connect(
                    host="127.0.0.1", port=port, user="wangge", database=name, timeout=2
                )
                await conn.close()
                break
            except (OSError, asyncpg.CannotConnectNowError):
                break  # a node that is down or starting: the URL skips it
            except asyncpg.InvalidCatalogNameError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


async def ha_database(name: str) -> str:
    """A fresh database `name` on the HA cluster (once it has a primary and a synchronous
    standby), migrated, with the demo committed; its multi-host URL."""
    from app.config import async_url
    from app.demo.load import load_demo
    from app.migrate import upgrade

    await asyncio.to_thread(ha, "wait", "60")
    admin = create_async_engine(async_url(ha("url", "postgres")), isolation_level="AUTOCOMMIT")
    async with admin.connect() as c:
        await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await c.execute(text(f'CREATE DATABASE "{name}"'))
    await admin.dispose()
    await _replayed_everywhere(name)
    url = ha("url", name)
    await asyncio.to_thread(upgrade, url)
    engine = create_async_engine(async_url(url))
    async with engine.begin() as c:
        await load_demo(c)
    await engine.dispose()
    return url


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    from app.config import async_url

    workdir: Path = tmp_path_factory.mktemp("failover")
    url = await ha_database(DB)
    engine = create_async_engine(async_url(url), pool_pre_ping=True)
    tokens = await make_tokens(url)
    async with engine.connect() as c:
        dept = (
            await c.execute(
                text(
                    "SELECT p.department_id FROM posts p JOIN users u ON u.id = p.user_id "
                    "WHERE u.username = 'dept' AND p.department_id IS NOT NULL LIMIT 1"
                )
            )
        ).scalar_one()
        lon, lat = (
            await c.execute(
                text(
                    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.boundary) p "
                    "FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id "
                    "WHERE g.code = '360602001001001' AND b.valid_to IS NULL) x"
                )
            )
        ).one()
        cat = (await c.execute(text("SELECT code FROM categories ORDER BY code LIMIT 1"))).scalar()
    env = {**ENV, "WANGGE_MEDIA_BACKEND": "dir", "WANGGE_MEDIA_DIR": str(workdir / "media")}
    server = Server(url, env, log=workdir / "app.log")
    await asyncio.to_thread(server.start)
    try:
        yield Rig(
            url,
            engine,
            tokens,
            server,
            dept,
            {"category": cat, "title": "", "location": {"lon": lon, "lat": lat}},
        )
    finally:
        server.stop()
        await engine.dispose()


async def _send(
    client: httpx.AsyncClient, log: Log, what: str, method: str, url: str, **kw: object
) -> httpx.Response | None:
    t0 = time.monotonic()
    try:
        r = await client.request(method, url, timeout=20, **kw)  # type: ignore[arg-type]
    except httpx.TransportError as e:
        log.answers.append(Answer(t0, time.monotonic(), what, type(e).__name__))
        return None
    log.answers.append(
        Answer(
            t0,
            time.monotonic(),
            what,
            r.status_code,
            r.headers.get("content-type", ""),
            r.headers.get("retry-after"),
        )
    )
    return r


async def _phone(
    rig: Rig, client: httpx.AsyncClient, log: Log, n: int, stop: asyncio.Event
) -> None:
    """A grid worker's phone: one case every 0.2 s, each retried with its Idempotency-Key until
    acknowledged (a 503 says when to retry; the test retries sooner to measure the outage)."""
    k = 0
    while not stop.is_set():
        k += 1
        title = f"HA {n}-{k}-{uuid.uuid4().hex[:6]}"
        key = str(uuid.uuid4())
        give_up = time.monotonic() + 60
        while time.monotonic() < give_up:
            r = await _send(
                client,
                log,
                "intake",
                "POST",
                rig.server.base + "/api/v1/cases",
                json={**rig.body, "title": title},
                headers=rig.h("worker", **{"Idempotency-Key": key}),
            )
            if r is not None and r.status_code == 201:
                log.acked[title] = r.json()["id"]
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.2)


async def _dispatched(rig: Rig, client: httpx.AsyncClient, n: int, tag: str) -> list[int]:
    ids = []
    for i in range(n):
        r = await client.post(
            rig.server.base + "/api/v1/cases",
            json={**rig.body, "title": f"{tag} {i}"},
            headers=rig.h("worker"),
        )
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await client.post(
            f"{rig.server.base}/api/v1/cases/{case_id}/actions/dispatch",
            json={"lead_department_id": rig.dept},
            headers=rig.h("street", **{"If-Match": '"1"'}),
        )
        assert r.status_code == 200, r.text
        ids.append(case_id)
    return ids


async def _department(
    rig: Rig, client: httpx.AsyncClient, log: Log, ids: list[int], stop: asyncio.Event
) -> None:
    """The department signs in to its dispatched cases, one every 0.3 s, retrying each (with the
    version it read) until answered 2xx, or 412 when a retried sign-in had in fact gone through."""
    for case_id in ids:
        if stop.is_set():
            return
        while not stop.is_set():
            r = await _send(
                client,
                log,
                "sign_in",
                "POST",
                f"{rig.server.base}/api/v1/cases/{case_id}/actions/sign_in",
                json={},
                headers=rig.h("dept", **{"If-Match": '"2"'}),
            )
            if r is not None and r.status_code == 200:
                log.signed_in.add(case_id)
                break
            if r is not None and r.status_code in (409, 412):
                break  # an earlier try went through (its answer was lost)
            await asyncio.sleep(0.2)
        await asyncio.sleep(0.3)


async def _stream(
    rig: Rig, client: httpx.AsyncClient, got: dict[int, dict], ready: asyncio.Event
) -> None:
    """A console's live stream: reconnects with Last-Event-ID whenever it ends or breaks.
    `ready` is set once the first connection is subscribed (its `ready` event)."""
    last = None
    while True:
        headers = rig.h("admin")
        if last is not None:
            headers["Last-Event-ID"] = str(last)
        try:
            async with client.stream(
                "GET", rig.server.base + "/api/v1/events/stream", headers=headers, timeout=None
            ) as r:
                if r.status_code != 200:
                    await asyncio.sleep(0.5)
                    continue
                event, data, ident = None, None, None
                async for line in r.aiter_lines():
                    if line.startswith("event:"):
                        event = line[6:].strip()
                    elif line.startswith("data:"):
                        data = line[5:].strip()
                    elif line.startswith("id:"):
                        ident = line[3:].strip()
                    elif line == "" and event:
                        if ident:
                            last = int(ident)
                        if event == "ready":
                            ready.set()
                        if event not in ("ready", "end", "reset") and data:
                            e = orjson.loads(data)
                            got[e["id"]] = e
                        event, data, ident = None, None, None
        except httpx.HTTPError:
            pass
        await asyncio.sleep(0.5)


async def test_failover_under_load(rig: Rig) -> None:
    log = Log()
    old = ha("primary")
    streamed: dict[int, dict] = {}
    async with httpx.AsyncClient(timeout=20) as client:
        ids = await _dispatched(rig, client, 60, "HA-DEPT")
        subscribed = asyncio.Event()
        reader = asyncio.create_task(_stream(rig, client, streamed, subscribed))
        # The console is subscribed before the first case: a console that connects without
        # Last-Event-ID gets what happens from then on (CI once saw the first case's event
        # committed just before the stream's first connection).
        await asyncio.wait_for(subscribed.wait(), 20)
        stop = asyncio.Event()
        workers = [asyncio.create_task(_phone(rig, client, log, n, stop)) for n in range(4)]
        workers.append(asyncio.create_task(_department(rig, client, log, ids, stop)))
        await asyncio.sleep(5)

        killed_at = time.monotonic()
        await asyncio.to_thread(ha, "kill", old)
        new = None
        while time.monotonic() < killed_at + 60:
            try:
                new = await asyncio.to_thread(ha, "primary")
                if new and new != old:
                    break
            except subprocess.CalledProcessError:
                pass
            await asyncio.sleep(0.2)
        promoted_at = time.monotonic()
        assert new and new != old, "no standby was promoted"
        # Load goes on until intake has been answered 2xx for 5 s after the promotion (a request
        # sent just as the kill was issued may still have been answered by the old primary).
        while time.monotonic() < killed_at + 60:
            ok_after = [
                a.done
                for a in log.answers
                if a.what == "intake" and a.sent > promoted_at and a.status == 201
            ]
            if ok_after and time.monotonic() - min(ok_after) > 5:
                break
            await asyncio.sleep(0.5)
        stop.set()
        await asyncio.gather(*workers)

        # The clock resumes on the new primary: make the remaining sign-ins overdue.
        pending = [i for i in ids if i not in log.signed_in]
        async with rig.engine.begin() as c:
            await c.execute(
                text(
                    "UPDATE case_assignments SET sign_in_due = now() - interval '1 hour' "
                    "WHERE case_id = ANY(:ids) AND state = 'dispatched'"
                ),
                {"ids": pending},
            )
        async with rig.engine.connect() as c:
            overdue = list(
                (
                    await c.execute(
                        text(
                            "SELECT case_id FROM case_assignments "
                            "WHERE case_id = ANY(:ids) AND state = 'dispatched'"
                        ),
                        {"ids": pending},
                    )
                ).scalars()
            )
        clock_at = time.monotonic()
        escalated: list[int] = []
        while overdue and time.monotonic() < clock_at + 20:
            async with rig.engine.connect() as c:
                escalated = list(
                    (
                        await c.execute(
                            text(
                                "SELECT case_id FROM case_assignments "
                                "WHERE case_id = ANY(:ids) AND escalation_level >= 1"
                            ),
                            {"ids": overdue},
                        )
                    ).scalars()
                )
            if len(escalated) == len(overdue):
                break
            await asyncio.sleep(0.5)
        clock_seconds = time.monotonic() - clock_at

        # The outbox and the stream resume: every event of a case reported after the failover
        # reaches the console.
        async with rig.engine.connect() as c:
            want = set(
                (
                    await c.execute(
                        text(
                            "SELECT e.id FROM events e WHERE e.case_id = ANY(:ids) "
                            "AND e.type = 'case.reported'"
                        ),
                        {"ids": list(log.acked.values())},
                    )
                ).scalars()
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not want <= set(streamed):
            await asyncio.sleep(0.3)
        reader.cancel()

    # -- the figures --
    statuses = Counter(a.status for a in log.answers)
    intake_ok = sorted(a.done for a in log.answers if a.what == "intake" and a.status == 201)
    before = [t for t in intake_ok if t < killed_at]
    after = [t for t in intake_ok if t > killed_at]
    last_ok = max(before) if before else killed_at
    # The outage as the phones saw it: from the kill to the first case acknowledged after the
    # first refusal (answers already under way at the kill may still have come from the old one).
    down_at = min((a.sent for a in log.answers if a.status == 503), default=killed_at)
    first_ok = min(
        a.done for a in log.answers if a.what == "intake" and a.status == 201 and a.sent > down_at
    )
    outage = first_ok - killed_at
    gap = max(b - a for a, b in itertools.pairwise(intake_ok))
    failed = [a for a in log.answers if a.status == 503]
    print(
        f"\nfailover: {old} killed, {new} promoted after {promoted_at - killed_at:.1f} s; "
        f"intake outage {outage:.1f} s after the kill (longest gap between acknowledged cases "
        f"{gap:.1f} s, last before {killed_at - last_ok:.2f} s before the kill); "
        f"answers {dict(statuses)}; acknowledged: {len(log.acked)} cases "
        f"({len(before)} before, {len(after)} after), {len(log.signed_in)} sign-ins; "
        f"clock escalated {len(escalated)}/{len(overdue)} in {clock_seconds:.1f} s; "
        f"stream got {len(want & set(streamed))}/{len(want)} reported events"
    )

    # Never a 500, never a hang: success, 503 (unavailable: retry) or 409 (the same key in
    # progress, or an action already done).
    assert set(statuses) <= {200, 201, 409, 412, 503}, statuses
    assert failed, "the outage was not seen"
    assert all(a.ctype.startswith("application/problem+json") for a in failed)
    assert all(a.retry_after and a.retry_after.isdigit() for a in failed), "503 without Retry-After"
    assert outage < 30, f"outage {outage:.1f} s"
    assert len(after) > 10, "intake did not resume"

    # 0 acknowledged writes lost: every acknowledged case and sign-in is on the new primary.
    async with rig.engine.connect() as c:
        rows = dict(
            (await c.execute(text("SELECT title, id FROM cases WHERE title LIKE 'HA %'"))).all()
        )
        states = dict(
            (
                await c.execute(
                    text("SELECT case_id, state FROM case_assignments WHERE case_id = ANY(:ids)"),
                    {"ids": list(log.signed_in)},
                )
            ).all()
        )
        port = int((await c.execute(text("SELECT inet_server_port()"))).scalar_one())
    assert port == int(ha("pg-port", new)), "the app's URL did not follow the new primary"
    lost = {t for t, i in log.acked.items() if rows.get(t) != i}
    assert not lost, f"{len(lost)} acknowledged cases lost"
    assert all(states.get(i) not in (None, "dispatched") for i in log.signed_in), states
    assert len(escalated) == len(overdue), "the clock did not resume"
    assert want <= set(streamed), f"stream missed {len(want - set(streamed))} events"

    # The old primary rejoins as a standby and catches up.
    await asyncio.to_thread(ha, "start-node", old)
    rejoined_at = time.monotonic()
    role = ""
    while time.monotonic() < rejoined_at + 60:
        role = await asyncio.to_thread(ha, "role", old)
        if role == "replica running":
            break
        await asyncio.sleep(0.5)
    assert role == "replica running", role
    from app.config import async_url

    old_url = f"postgresql://wangge@127.0.0.1:{ha('pg-port', old)}/{DB}"
    eng = create_async_engine(async_url(old_url))
    try:
        deadline = time.monotonic() + 30
        while True:
            async with eng.connect() as c:
                n = (
                    await c.execute(
                        text("SELECT count(*) FROM cases WHERE title = ANY(:t)"),
                        {"t": list(log.acked)},
                    )
                ).scalar_one()
                standby = (await c.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
            if n == len(log.acked) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await eng.dispose()
    assert standby and n == len(log.acked), (standby, n, len(log.acked))
    print(f"failover: {old} rejoined as a standby in {time.monotonic() - rejoined_at:.1f} s")
    await asyncio.to_thread(ha, "wait", "60")
