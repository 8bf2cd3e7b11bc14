"""The live event stream (SSE): scope, resume with Last-Event-ID, tickets, events committed by
other processes, the listener's reconnection.

A real uvicorn server on a loopback port serves a small app with the stream's router (the ASGI
test transport buffers whole responses, which an endless stream never finishes). Cases are
driven through the real app, so their events come from the outbox as in production. Everything
these tests commit is removed afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import jwt
import orjson
import pytest
import pytest_asyncio
import uvicorn
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.events import hub as sse_hub
from app.events import stream as sse
from tests.factories import report_body
from tests.helpers import problem

TAG = "SSE-TEST"
GRID = "360602001001001"  # 立新社区 (community's, worker's), 江边街道 (street's)
FAR_GRID = "360602004001001"  # another street: outside community's and street's scope
STREAM = "/api/v1/events/stream"
TICKET = "/api/v1/events/ticket"


# --- a server, a client for the real app, cleanup ----------------------------------------------


@pytest_asyncio.fixture(scope="module")
async def server(engine: AsyncEngine) -> AsyncIterator[str]:
    from fastapi import FastAPI

    from app import errors

    app = FastAPI(lifespan=sse.listening)
    errors.install(app)
    app.include_router(sse.router)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    srv = uvicorn.Server(
        uvicorn.Config(
            app, log_config=None, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
    )
    task = asyncio.create_task(srv.serve(sockets=[sock]))
    deadline = time.monotonic() + 10
    while not srv.started:
        assert time.monotonic() < deadline and not task.done(), "the test server did not start"
        await asyncio.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    await asyncio.wait_for(task, 10)
    sock.close()
    assert not sse.hub.running


@pytest_asyncio.fixture(scope="module")
async def cleanup(engine: AsyncEngine) -> AsyncIterator[list[uuid.UUID]]:
    sessions: list[uuid.UUID] = []
    yield sessions
    # The account rows first, then the cases in a transaction of their own: on Citus a table
    # with a key to a reference table cannot be written after a parallel multi-shard statement
    # in the same transaction.
    async with engine.begin() as c:
        await c.execute(text("DELETE FROM idempotency_keys WHERE key LIKE 'sse-ticket:%'"))
        await c.execute(text("DELETE FROM auth_sessions WHERE id = ANY(:s)"), {"s": sessions})
    async with engine.begin() as c:
        await c.execute(text("DELETE FROM cases WHERE title LIKE :t"), {"t": TAG + "%"})


@pytest_asyncio.fixture
async def http(server: str, cleanup: list[uuid.UUID]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server, timeout=10) as c:
        yield c


@pytest_asyncio.fixture
async def api(cleanup: list[uuid.UUID]) -> AsyncIterator[httpx.AsyncClient]:
    """The real app (its own pool, real commits), to drive cases."""
    from app.main import app

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def new_session(engine: AsyncEngine, cleanup: list[uuid.UUID], username: str) -> str:
    """An access token on a fresh session of a demo account (to log out of)."""
    from app.auth.policy import create_access_token

    sid = uuid.uuid4()
    async with engine.begin() as c:
        uid = (
            await c.execute(text("SELECT id FROM users WHERE username = :u"), {"u": username})
        ).scalar_one()
        await c.execute(
            text(
                "INSERT INTO auth_sessions (id, user_id, expires_at) "
                "VALUES (:sid, :uid, now() + interval '1 hour')"
            ),
            {"sid": sid, "uid": uid},
        )
    cleanup.append(sid)
    return create_access_token(uid, sid)[0]


# --- reading a stream ----------------------------------------------------------------------


class Reader:
    """Parses an SSE response into events (dicts of field → value, `data` decoded)."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.lines = response.aiter_lines()
        self.pings = 0

    async def next(self, timeout: float = 5.0) -> dict[str, Any]:
        ev: dict[str, Any] = {}
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no event in time")
            line = await asyncio.wait_for(anext(self.lines), left)
            if line == "":
                if "data" in ev:
                    ev["data"] = orjson.loads(ev["data"])
                    return ev
                continue
            if line.startswith(":"):
                self.pings += 1
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            ev[name] = ev[name] + "\n" + value if name == "data" and name in ev else value

    async def until(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 5.0
    ) -> list[dict[str, Any]]:
        """Every event up to and including the first that matches."""
        seen = []
        deadline = time.monotonic() + timeout
        while True:
            ev = await self.next(max(deadline - time.monotonic(), 0.01))
            seen.append(ev)
            if pred(ev):
                return seen

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Whatever arrives within `seconds`."""
        got = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self.next(seconds))
        return got


@contextlib.asynccontextmanager
async def opened(
    http: httpx.AsyncClient, *, params: dict[str, Any] | None = None, **kw: Any
) -> AsyncIterator[tuple[Reader, list[dict[str, Any]]]]:
    """An open stream and the events it sent up to `ready` (inclusive)."""
    async with http.stream("GET", STREAM, params=params, **kw) as r:
        assert r.status_code == 200, (await r.aread()).decode()
        assert r.headers["content-type"].startswith("text/event-stream")
        reader = Reader(r)
        first = await reader.until(lambda e: e.get("event") == "ready")
        yield reader, first


@contextlib.asynccontextmanager
async def in_browser(
    base_url: str, token: str
) -> AsyncIterator[tuple[Reader, list[dict[str, Any]]]]:
    """What a browser does: POST /ticket sets the cookie, the stream URL carries nothing."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as browser:
        await get_ticket(browser, token)
        assert browser.cookies.get(sse.COOKIE)
        async with opened(browser) as opened_stream:
            yield opened_stream


async def get_ticket(http: httpx.AsyncClient, token: str) -> str:
    r = await http.post(TICKET, headers=bearer(token))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["expires_in"] == 60
    return str(body["ticket"])


# --- cases ----------------------------------------------------------------------------------


async def dept_id(engine: AsyncEngine, code: str) -> int:
    async with engine.connect() as c:
        return int(
            (
                await c.execute(text("SELECT id FROM departments WHERE code = :c"), {"c": code})
            ).scalar_one()
        )


class Case:
    def __init__(self, api: httpx.AsyncClient, tokens: dict[str, str], body: dict) -> None:
        self.api, self.tokens, self.id, self.etag = api, tokens, body["id"], '"1"'

    async def do(self, who: str, action: str, body: dict | None = None) -> dict:
        r = await self.api.post(
            f"/api/v1/cases/{self.id}/actions/{action}",
            json=body or {},
            headers={**bearer(self.tokens[who]), "If-Match": self.etag},
        )
        assert r.status_code == 200, r.text
        self.etag = r.headers["etag"]
        return r.json()


async def report(
    api: httpx.AsyncClient, tokens: dict[str, str], engine: AsyncEngine, who: str, grid: str
) -> Case:
    async with engine.connect() as c:
        body = await report_body(c, f"{TAG} {grid}", grid)
    r = await api.post(
        "/api/v1/cases",
        json=body,
        headers=bearer(tokens[who]),
    )
    assert r.status_code == 201, r.text
    return Case(api, tokens, r.json())


def of(events: list[dict[str, Any]], case: Case, type_: str | None = None) -> list[dict]:
    return [
        e
        for e in events
        if e["data"].get("case_id") == case.id and (type_ is None or e["event"] == type_)
    ]


# --- tests ----------------------------------------------------------------------------------


async def test_each_console_gets_the_events_in_its_scope(http, api, tokens, engine) -> None:
    cgj, zjj = await dept_id(engine, "CGJ"), await dept_id(engine, "ZJJ")
    async with (
        opened(http, headers=bearer(tokens["dept"])) as (dept, ready),
        opened(http, params={"ticket": await get_ticket(http, tokens["dept2"])}) as (dept2, _),
        in_browser(str(http.base_url), tokens["community"]) as (community, _),
    ):
        assert ready[-1]["data"]["resumed"] is False and ready[-1]["id"]
        mine = await report(api, tokens, engine, "worker", GRID)
        other_dept = await report(api, tokens, engine, "worker", GRID)
        far = await report(api, tokens, engine, "admin", FAR_GRID)
        await other_dept.do(
            "street", "dispatch", {"lead_department_id": zjj, "co_department_ids": []}
        )
        await far.do("admin", "dispatch", {"lead_department_id": cgj, "co_department_ids": []})
        await mine.do("street", "dispatch", {"lead_department_id": cgj, "co_department_ids": []})

        got = await dept.until(lambda e: bool(of([e], mine, "case.dispatch")))
        assert of(got, far, "case.dispatch") and not of(got, other_dept)
        ev = of(got, mine, "case.dispatch")[0]
        assert ev["id"] == str(ev["data"]["id"])
        assert ev["data"]["type"] == "case.dispatch" and ev["data"]["at"].endswith("+08:00")
        assert ev["data"]["payload"]["to_status"] == "dispatched"

        got = await dept2.until(lambda e: bool(of([e], other_dept, "case.dispatch")))
        assert not of(got, mine) and not of(got, far)

        got = await community.until(lambda e: bool(of([e], mine, "case.dispatch")))
        assert of(got, other_dept, "case.dispatch") and not of(got, far)
        # nothing else on the way, nothing twice
        assert len({e["id"] for e in got}) == len(got)
        assert not [e for e in await dept2.quiet(0.3) if of([e], mine) or of([e], far)]


async def test_reconnect_with_last_event_id_gets_what_it_missed_once(
    http, api, tokens, engine
) -> None:
    cgj, zjj = await dept_id(engine, "CGJ"), await dept_id(engine, "ZJJ")
    case = await report(api, tokens, engine, "worker", GRID)
    noise = await report(api, tokens, engine, "worker", GRID)
    async with opened(http, headers=bearer(tokens["dept"])) as (dept, _):
        await case.do("street", "dispatch", {"lead_department_id": cgj, "co_department_ids": []})
        [seen] = of(await dept.until(lambda e: bool(of([e], case))), case)
    # disconnected: the department works on, another department gets a case
    await case.do("dept", "sign_in")
    await noise.do("street", "dispatch", {"lead_department_id": zjj, "co_department_ids": []})
    await case.do("dept", "feedback", {"note": "已处理"})

    headers = {**bearer(tokens["dept"]), "Last-Event-ID": seen["id"]}
    async with opened(http, headers=headers) as (dept, first):
        *missed, ready = first
        assert [e["event"] for e in missed] == ["case.sign_in", "case.feedback"]
        assert all(int(e["id"]) > int(seen["id"]) for e in missed)
        assert ready["data"] == {
            "last_event_id": int(missed[-1]["id"]),
            "replayed": 2,
            "resumed": True,
        }
        assert "id" not in ready  # no id twice on a connection
        # then live, still once each
        await case.do("worker", "verify", {"passed": True})
        live = await dept.until(lambda e: e["event"] == "case.verify")
        assert [e["event"] for e in live] == ["case.verify"]
        assert not [e for e in await dept.quiet(0.3) if e.get("id") in {x["id"] for x in first}]

    # the same with the query parameter (a new EventSource after a new ticket)
    ticket = await get_ticket(http, tokens["dept"])
    params = {"ticket": ticket, "last_event_id": missed[0]["id"]}
    async with opened(http, params=params) as (_, first):
        assert [e["event"] for e in first] == ["case.feedback", "case.verify", "ready"]


async def test_tickets_and_tokens(http, api, tokens, engine, cleanup) -> None:
    problem(await http.get(STREAM), 401, "unauthenticated")
    problem(await http.get(STREAM, params={"ticket": "nonsense"}), 401, "invalid_token")
    async with httpx.AsyncClient(base_url=http.base_url, cookies={sse.COOKIE: "x"}) as browser:
        problem(await browser.get(STREAM), 401, "invalid_token")
    problem(await http.get(STREAM, headers=bearer("nonsense")), 401, "invalid_token")
    problem(await http.post(TICKET), 401, "unauthenticated")
    # an access token is not a ticket, a ticket is not an access token
    problem(await http.get(STREAM, params={"ticket": tokens["dept"]}), 401, "invalid_token")
    ticket = await get_ticket(http, tokens["dept"])
    problem(await api.get("/api/v1/me", headers=bearer(ticket)), 401, "invalid_token")
    # expired
    claims = jwt.decode(ticket, options={"verify_signature": False})
    claims["exp"] = int(time.time()) - 5
    from app.config import get_settings

    old = jwt.encode(claims, get_settings().signing_key, algorithm="HS256")
    problem(await http.get(STREAM, params={"ticket": old}), 401, "invalid_token")
    # the cookie's attributes
    r = await http.post(TICKET, headers=bearer(tokens["dept"]))
    cookie = r.headers["set-cookie"].lower()
    for part in ("httponly", "samesite=strict", "path=/api/v1/events", "max-age=60"):
        assert part in cookie, cookie
    assert r.headers["cache-control"] == "no-store"
    # one use
    async with opened(http, params={"ticket": ticket}):
        pass
    problem(await http.get(STREAM, params={"ticket": ticket}), 401, "invalid_token")
    # a malformed Last-Event-ID
    bad = {**bearer(tokens["dept"]), "Last-Event-ID": "x"}
    problem(await http.get(STREAM, headers=bad), 422, "validation_error")


async def test_logout_stops_new_and_open_streams(
    http, api, tokens, engine, cleanup, monkeypatch
) -> None:
    token = await new_session(engine, cleanup, "community")
    ticket = await get_ticket(http, token)
    monkeypatch.setattr(sse, "REVALIDATE_SECONDS", 0.3)
    async with opened(http, headers=bearer(token)) as (stream, _):
        r = await api.post("/api/v1/auth/logout", headers=bearer(token))
        assert r.status_code == 204, r.text
        end = await stream.until(lambda e: e["event"] == "end", timeout=5)
        assert end[-1]["data"]["reason"] == "session_ended"
    problem(await http.get(STREAM, params={"ticket": ticket}), 401, "invalid_token")
    problem(await http.get(STREAM, headers=bearer(token)), 401, "invalid_token")


async def _external_event(engine: AsyncEngine, case: Case, type_: str) -> int:
    """What another server does: insert an event and notify, in one transaction, on its own
    connection (not this process's pool)."""
    from app.config import get_settings

    conn = await asyncpg.connect(sse.plain_dsn(get_settings().database_url))
    try:
        async with conn.transaction():
            eid = await conn.fetchval(
                """
                INSERT INTO events (type, case_id, district_id, grid_id, area_ids,
                                    department_ids, payload)
                SELECT $1, c.id, c.district_id, c.grid_id,
                       ARRAY[c.community_id, c.street_id, c.district_id],
                       '{}', '{"from": "another server"}'
                FROM cases c WHERE c.id = $2 RETURNING id
                """,
                type_,
                case.id,
            )
            await conn.execute("SELECT pg_notify('wangge_events', $1)", str(eid))
        return int(eid)
    finally:
        await conn.close()


async def test_events_from_another_process_and_a_lost_listener(http, api, tokens, engine) -> None:
    case = await report(api, tokens, engine, "worker", GRID)
    async with opened(http, headers=bearer(tokens["community"])) as (community, _):
        eid = await _external_event(engine, case, "test.elsewhere")
        [ev] = of(await community.until(lambda e: e["event"] == "test.elsewhere"), case)
        assert ev["id"] == str(eid) and ev["data"]["payload"] == {"from": "another server"}

        # The listener's connection dies; what is committed meanwhile still arrives, once.
        connects, caught_up = sse.hub.connects, sse.hub.caught_up
        async with engine.begin() as c:
            await c.execute(
                text("SELECT pg_terminate_backend(CAST(:p AS integer))"), {"p": sse.hub.backend_pid}
            )
        deadline = time.monotonic() + 5
        while sse.hub.ready:  # it notices at once, then waits before reconnecting
            assert time.monotonic() < deadline
            await asyncio.sleep(0.005)
        missed = await _external_event(engine, case, "test.while_away")
        got = await community.until(lambda e: e["event"] == "test.while_away", timeout=8)
        assert [e["id"] for e in got] == [str(missed)]
        assert sse.hub.connects == connects + 1
        assert await sse.hub.wait_ready(2)
        assert sse.hub.caught_up == caught_up + 1  # read back from the table, not notified
        after = await _external_event(engine, case, "test.after")
        got = await community.until(lambda e: e["event"] == "test.after")
        assert [e["id"] for e in got] == [str(after)]


# --- the fan-out, without a database ---------------------------------------------------------


def _ev(i: int, **kw: Any) -> sse.HubEvent:
    base: dict[str, Any] = {
        "type": "case.x",
        "case_id": 1,
        "grid_id": None,
        "area_ids": frozenset(),
        "department_ids": frozenset(),
        "reporter_id": None,
        "data": "{}",
    }
    return sse.HubEvent(id=i, **{**base, **kw})


def test_scope_covers() -> None:
    ev = _ev(
        1, grid_id=7, area_ids=frozenset({1, 2, 3}), department_ids=frozenset({5}), reporter_id=9
    )
    assert sse.Scope(everything=True).covers(ev)
    assert sse.Scope(departments=frozenset({5})).covers(ev)
    assert not sse.Scope(departments=frozenset({6})).covers(ev)
    assert sse.Scope(areas=frozenset({2, 40})).covers(ev)
    assert sse.Scope(grids=frozenset({7})).covers(ev)
    assert sse.Scope(user_id=9).covers(ev)
    assert not sse.Scope(user_id=8, areas=frozenset({4}), grids=frozenset({8})).covers(ev)


async def test_a_slow_console_gets_resync_not_memory(monkeypatch) -> None:
    monkeypatch.setattr(sse_hub, "QUEUE_SIZE", 3)
    hub = sse.Hub()
    fast = hub.subscribe(sse.Scope(everything=True))
    slow = hub.subscribe(sse.Scope(everything=True))
    other = hub.subscribe(sse.Scope(departments=frozenset({1})))
    assert hub.dispatch([_ev(2), _ev(1)]) == 2
    assert [fast.queue.get_nowait().id for _ in range(2)] == [1, 2]  # type: ignore[union-attr]
    assert hub.dispatch([_ev(1), _ev(3)]) == 1  # 1 was already delivered
    assert slow.queue.qsize() == 3
    hub.dispatch([_ev(4)])
    assert slow.queue.qsize() == 1 and slow.queue.get_nowait() is sse.RESYNC
    assert slow.overflows == 1 and other.queue.empty()
    hub.unsubscribe(slow)
    assert hub.subscribers == 2


@pytest.mark.parametrize(
    ("url", "want"),
    [
        ("postgresql://u@h:1/d", "postgresql://u@h:1/d"),
        ("postgresql+asyncpg://u@h:1/d", "postgresql://u@h:1/d"),
        ("postgres://u@h/d", "postgresql://u@h/d"),
    ],
)
def test_plain_dsn(url: str, want: str) -> None:
    assert sse.plain_dsn(url) == want


async def test_dropped_streams_leave_no_subscriber_behind(http, tokens) -> None:
    """Consoles that come and go (one after the other, then ten at once, dropped mid-stream)
    leave nothing in the hub: what it keeps per stream lives as long as the stream."""
    before = sse.hub.subscribers

    async def settled() -> int:
        deadline = time.monotonic() + 5
        while sse.hub.subscribers != before and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return sse.hub.subscribers

    for _ in range(10):
        async with opened(http, headers=bearer(tokens["dept"])):
            assert sse.hub.subscribers == before + 1
        assert await settled() == before
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(10):
            await stack.enter_async_context(opened(http, headers=bearer(tokens["centre"])))
        assert sse.hub.subscribers == before + 10
    assert await settled() == before
