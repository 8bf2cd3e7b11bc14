"""Limits everywhere a client can make the server work: rate limits on login and intake (per
account and per address, counted in PostgreSQL so replicas share them), bbox area, vertices,
page size, body size. Each answers a clear problem+json."""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app import ratelimit
from app.auth.policy import Public
from app.config import get_settings
from app.db import DbSession
from tests.factories import report_body
from tests.helpers import problem, square


@pytest_asyncio.fixture
async def limits(monkeypatch: pytest.MonkeyPatch, conn: AsyncConnection):  # type: ignore[no-untyped-def]
    """Set limits for this test; counts committed by other tests (live ones) start from zero."""
    await conn.execute(text("DELETE FROM rate_counters"))
    ratelimit.forget()
    s = get_settings()

    def set_(**kw: int) -> None:
        for k, v in kw.items():
            monkeypatch.setattr(s, k, v)

    return set_


async def _case_body(conn: AsyncConnection, title: str) -> dict:
    return await report_body(conn, title)


async def test_login_limited_per_account(anon: httpx.AsyncClient, limits) -> None:
    limits(login_per_account_per_minute=3, login_per_ip_per_minute=1000)
    form = {"username": "nobody-here", "password": "x"}
    for _ in range(3):
        r = await anon.post("/api/v1/auth/token", data=form)
        assert r.status_code == 401, r.text
    body = problem(await anon.post("/api/v1/auth/token", data=form), 429, "rate_limited")
    assert body["limit"] == 3 and body["scope"] == "account"
    # Another account from the same address is not held up by it.
    r = await anon.post(
        "/api/v1/auth/token", data={"username": "worker", "password": "Wangge#2026"}
    )
    assert r.status_code == 200, r.text


async def test_login_limited_per_address(anon: httpx.AsyncClient, limits, conn) -> None:
    limits(login_per_account_per_minute=1000, login_per_ip_per_minute=2)
    for i in range(2):
        r = await anon.post("/api/v1/auth/token", data={"username": f"u{i}", "password": "x"})
        assert r.status_code == 401
    r = await anon.post("/api/v1/auth/token", data={"username": "u9", "password": "x"})
    body = problem(r, 429, "rate_limited")
    assert body["scope"] == "ip"
    wait = int(r.headers["retry-after"])
    assert 1 <= wait <= 60 and body["retry_after"] == wait
    # The next window starts afresh (moved back by hand instead of waiting a minute).
    await conn.execute(
        text("UPDATE rate_counters SET window_start = window_start - interval '1 minute'")
    )
    r = await anon.post("/api/v1/auth/token", data={"username": "u9", "password": "x"})
    assert r.status_code == 401


async def test_intake_limited_per_account(anon, as_user, limits, conn) -> None:
    limits(intake_per_account_per_minute=2, intake_per_ip_per_minute=1000)
    body = await _case_body(conn, "限流测试")
    for _ in range(2):
        r = await anon.post("/api/v1/cases", json=body, headers=as_user("worker"))
        assert r.status_code == 201, r.text
    r = await anon.post("/api/v1/cases", json=body, headers=as_user("worker"))
    problem(r, 429, "rate_limited")
    assert r.headers["retry-after"]
    # Someone else is not limited by the worker's count; nothing was written for the refusal.
    r = await anon.post("/api/v1/cases", json=body, headers=as_user("leader"))
    assert r.status_code == 201
    n = (await conn.execute(text("SELECT count(*) FROM cases WHERE title = '限流测试'"))).scalar()
    assert n == 3
    hits = dict(
        (
            await conn.execute(
                text("SELECT key, hits FROM rate_counters WHERE key LIKE 'intake:%'")
            )
        ).all()
    )
    assert sorted(hits.values()) == [1, 3, 4]  # worker 3 (one refused), leader 1, address 4


async def test_intake_limited_per_address(anon, as_user, limits, conn) -> None:
    limits(intake_per_account_per_minute=1000, intake_per_ip_per_minute=1)
    body = await _case_body(conn, "限流测试")
    assert (
        await anon.post("/api/v1/cases", json=body, headers=as_user("worker"))
    ).status_code == 201
    r = await anon.post("/api/v1/cases", json=body, headers=as_user("leader"))
    assert problem(r, 429, "rate_limited")["scope"] == "ip"


async def test_refused_roles_do_not_count(anon, as_user, limits, conn) -> None:
    limits(intake_per_account_per_minute=1)
    body = await _case_body(conn, "x")
    for _ in range(3):
        problem(
            await anon.post("/api/v1/cases", json=body, headers=as_user("dept")), 403, "forbidden"
        )
    n = (await conn.execute(text("SELECT count(*) FROM rate_counters"))).scalar()
    assert n == 0


async def test_limits_can_be_switched_off(anon, as_user, limits, conn) -> None:
    limits(intake_per_account_per_minute=1, rate_limits=False)  # type: ignore[arg-type]
    body = await _case_body(conn, "x")
    for _ in range(2):
        r = await anon.post("/api/v1/cases", json=body, headers=as_user("worker"))
        assert r.status_code == 201


async def test_bbox_area_is_capped(client: httpx.AsyncClient, limits) -> None:
    for path in ("/api/v1/areas", "/api/v1/grids", "/api/v1/buildings", "/api/v1/cases"):
        r = await client.get(path, params={"bbox": "100,20,120,40"})
        body = problem(r, 422, "validation_error")
        assert body["field"] == "bbox" and body["limit_km2"] == get_settings().max_bbox_km2
        ok = await client.get(path, params={"bbox": "117.0,28.2,117.1,28.3"})
        assert ok.status_code == 200, (path, ok.text)
    limits(max_bbox_km2=10)
    problem(
        await client.get("/api/v1/grids", params={"bbox": "117.0,28.2,117.1,28.3"}),
        422,
        "validation_error",
    )


async def test_vertex_count_is_capped(client: httpx.AsyncClient, demo, limits) -> None:
    limits(max_vertices=8)
    ring = [[117.5 + 0.001 * i, 28.5 + 0.0001 * (i % 2)] for i in range(10)]
    ring += [[117.51, 28.51], [117.5, 28.51], ring[0]]
    r = await client.post(
        "/api/v1/grids",
        json={
            "code": "360602001001901",
            "name": "x",
            "community_id": demo["360602001001"],
            "kind": "city",
            "boundary": {"type": "Polygon", "coordinates": [ring]},
        },
    )
    body = problem(r, 422, "invalid_geometry")
    assert body["errors"][0]["code"] == "too_many_vertices"


async def test_page_size_is_capped(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/cases", params={"limit": 100_000})
    assert r.status_code == 200 and r.json()["limit"] == get_settings().page_max
    problem(await client.get("/api/v1/cases", params={"limit": 0}), 422, "validation_error")


async def test_body_size_is_capped(client: httpx.AsyncClient, demo) -> None:
    big = square(117.5, 28.5)
    big["padding"] = "x" * (get_settings().max_body_bytes + 10)
    r = await client.post("/api/v1/areas", json={"boundary": big})
    body = problem(r, 413, "payload_too_large")
    assert body["limit_bytes"] == get_settings().max_body_bytes


async def test_statement_timeout_is_set_on_every_connection() -> None:
    from app.db import make_engine

    eng = make_engine()
    try:
        async with eng.connect() as c:
            got = (await c.execute(text("SHOW statement_timeout"))).scalar()
        assert got == f"{get_settings().statement_timeout_ms}ms" or got.endswith("s")
    finally:
        await eng.dispose()


async def test_a_slow_query_answers_503_query_timeout(anon, session, monkeypatch) -> None:
    """The timeout cancels the statement; the answer is a problem, never a hang or a 500."""
    from fastapi import APIRouter

    from app.http import ApiRoute
    from app.main import app

    router = APIRouter(route_class=ApiRoute)
    router.add_api_route("/__slow", _slow)
    app.include_router(router)
    try:
        r = await anon.get("/__slow")
    finally:
        app.router.routes.pop()
    problem(r, 503, "query_timeout")


async def _slow(s: DbSession, _: Public) -> dict:
    await s.execute(text("SET LOCAL statement_timeout = 50"))
    await s.execute(text("SELECT pg_sleep(1)"))
    return {}


async def _counts(conn: AsyncConnection, like: str) -> dict[str, int]:
    rows = await conn.execute(
        text("SELECT key, hits FROM rate_counters WHERE key LIKE :k"), {"k": like}
    )
    return {k.split(":", 1)[1].split(":", 1)[0]: v for k, v in rows.all()}


async def test_intake_far_below_its_limits_is_counted_in_batches(
    anon, as_user, limits, conn
) -> None:
    """Below a quarter of every limit the process admits a report itself and writes the hit in
    its next batch; from there on each report is counted in PostgreSQL with the batch before it,
    so the counts in the database are exact whenever a limit is near."""
    limits(intake_per_account_per_minute=8, intake_per_ip_per_minute=1000)
    monkey = get_settings()
    assert monkey.rate_local_share == 0.25
    body = await _case_body(conn, "批量计数")
    h = as_user("worker")
    # 8 × 0.25: the first two are admitted here, nothing written yet
    for _ in range(2):
        assert (await anon.post("/api/v1/cases", json=body, headers=h)).status_code == 201
    assert await _counts(conn, "intake:%") == {}
    assert await ratelimit.flush(conn) == 2  # the account and the address
    assert await _counts(conn, "intake:%") == {"account": 2, "ip": 2}
    assert await ratelimit.flush(conn) == 0  # nothing left to write
    # the third is at the share: counted in the database at once
    assert (await anon.post("/api/v1/cases", json=body, headers=h)).status_code == 201
    assert await _counts(conn, "intake:%") == {"account": 3, "ip": 3}
    # and the limit holds exactly: five more, then 429
    for _ in range(5):
        assert (await anon.post("/api/v1/cases", json=body, headers=h)).status_code == 201
    problem(await anon.post("/api/v1/cases", json=body, headers=h), 429, "rate_limited")
    n = (await conn.execute(text("SELECT count(*) FROM cases WHERE title = '批量计数'"))).scalar()
    assert n == 8
    assert await _counts(conn, "intake:%") == {"account": 9, "ip": 9}


async def test_unwritten_hits_go_with_the_next_exact_check(anon, as_user, limits, conn) -> None:
    """Hits admitted here and not yet flushed are written with the first exact check of the same
    key: the database never undercounts once a limit is near. The share 0 makes every check
    exact."""
    limits(intake_per_account_per_minute=40, intake_per_ip_per_minute=1000)
    body = await _case_body(conn, "批量计数")
    h = as_user("worker")
    for _ in range(10):  # 40 × 0.25 = 10 admitted here
        assert (await anon.post("/api/v1/cases", json=body, headers=h)).status_code == 201
    assert await _counts(conn, "intake:%") == {}
    assert (await anon.post("/api/v1/cases", json=body, headers=h)).status_code == 201
    assert await _counts(conn, "intake:%") == {"account": 11, "ip": 11}

    ratelimit.forget()
    await conn.execute(text("DELETE FROM rate_counters"))
    limits(rate_local_share=0)  # type: ignore[arg-type]
    assert (await anon.post("/api/v1/cases", json=body, headers=h)).status_code == 201
    assert await _counts(conn, "intake:%") == {"account": 1, "ip": 1}


async def test_login_is_never_batched(anon, limits, conn) -> None:
    limits(login_per_account_per_minute=1000, login_per_ip_per_minute=1000)
    r = await anon.post("/api/v1/auth/token", data={"username": "nobody", "password": "x"})
    assert r.status_code == 401
    assert await _counts(conn, "login:%") == {"account": 1, "ip": 1}
    assert ratelimit._seen == {}  # and the process keeps nothing of the names tried


async def test_the_keys_kept_for_batches_are_bounded(
    anon, as_user, limits, conn, monkeypatch
) -> None:
    """A process keeps at most `_SEEN_MAX` keys for batches; a new key beyond is counted in the
    database at once."""
    monkeypatch.setattr(ratelimit, "_SEEN_MAX", 0)
    limits(intake_per_account_per_minute=1000, intake_per_ip_per_minute=1000)
    body = await _case_body(conn, "批量计数")
    assert (
        await anon.post("/api/v1/cases", json=body, headers=as_user("worker"))
    ).status_code == 201
    assert await _counts(conn, "intake:%") == {"account": 1, "ip": 1}
    assert ratelimit._seen == {}


async def test_the_servers_loop_writes_the_batch(anon, as_user, limits, conn) -> None:
    """`run_forever` (started by the server's lifespan) writes what was admitted here within
    its period, and once more when the server stops."""
    import asyncio
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def connect():  # type: ignore[no-untyped-def]
        yield conn

    def unwritten() -> int:
        return sum(e.pending for e in ratelimit._seen.values())

    limits(intake_per_account_per_minute=1000, intake_per_ip_per_minute=1000)
    body = await _case_body(conn, "批量计数")
    h = as_user("worker")
    assert (await anon.post("/api/v1/cases", json=body, headers=h)).status_code == 201
    assert unwritten() == 2  # the account's hit and the address's
    stop = asyncio.Event()
    loop = asyncio.create_task(ratelimit.run_forever(stop, connect))
    for _ in range(40):  # FLUSH_SECONDS is 0.5; the test's connection is the loop's meanwhile
        if not unwritten():
            break
        await asyncio.sleep(0.1)
    stop.set()
    await loop
    assert await _counts(conn, "intake:%") == {"account": 1, "ip": 1}
    assert (await anon.post("/api/v1/cases", json=body, headers=h)).status_code == 201
    assert unwritten() == 2
    await ratelimit.run_forever(stop, connect)  # a server stopping: its last batch
    assert unwritten() == 0
    assert await _counts(conn, "intake:%") == {"account": 2, "ip": 2}
