"""Limits everywhere a client can make the server work: rate limits on login and intake (per
account and per address, counted in PostgreSQL so replicas share them), bbox area, vertices,
page size, body size. Each answers a clear problem+json."""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth.policy import Public
from app.config import get_settings
from app.db import DbSession
from tests.factories import report_body
from tests.helpers import problem, square


@pytest_asyncio.fixture
async def limits(monkeypatch: pytest.MonkeyPatch, conn: AsyncConnection):  # type: ignore[no-untyped-def]
    """Set limits for this test; counts committed by other tests (live ones) start from zero."""
    await conn.execute(text("DELETE FROM rate_counters"))
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
