"""Bug 15 (issue 16): a pooled connection never goes back to the pool in a broken state.

Before, one statement cancelled at the wrong moment (a client gone while the session's BEGIN was
in flight, a statement timeout) left asyncpg believing in a transaction the server did not have:
the connection's next transaction was sent as SAVEPOINT ("can only be used in transaction
blocks") or ran, unseen, inside a transaction nobody would ever commit.

Here a real uvicorn server (in this process, so the test sees its pool) runs the app with a pool
of two connections and a few routes of the test's own that cancel statements midway: a
statement timeout on the ORM session and on the raw driver, a driver-side timeout, a client that
disconnects mid-statement, a BEGIN cancelled in flight. After each, the next hundred requests on
the same pool all succeed, and no connection of the app is left idle in a transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.config import get_settings
from app.db import DbSession, db, raw_connection

POOL = 2
router = APIRouter(prefix="/pool-test")


def _cancel_on_disconnect(request: Request) -> asyncio.Task[None]:
    """What a server does when the client goes away mid-request: the handler is cancelled."""
    handler = asyncio.current_task()
    assert handler is not None

    async def watch() -> None:
        while not await request.is_disconnected():
            await asyncio.sleep(0.02)
        handler.cancel()

    return asyncio.create_task(watch())


@router.get("/statement-timeout")
async def statement_timeout(session: DbSession) -> dict[str, Any]:
    await session.execute(text("SET LOCAL statement_timeout = '50ms'"))
    await session.execute(text("SELECT pg_sleep(2)"))
    return {"unreachable": True}


@router.get("/raw-statement-timeout")
async def raw_statement_timeout() -> dict[str, Any]:
    async with raw_connection(db.reader.connect) as raw, raw.transaction():
        await raw.execute("SET LOCAL statement_timeout = '50ms'")
        await raw.fetchval("SELECT pg_sleep(2)")
    return {"unreachable": True}


@router.get("/raw-driver-timeout")
async def raw_driver_timeout() -> dict[str, Any]:
    async with raw_connection(db.reader.connect) as raw:
        await raw.fetchval("SELECT pg_sleep(2)", timeout=0.05)
    return {"unreachable": True}


@router.get("/disconnect")
async def disconnect(request: Request, session: DbSession) -> dict[str, Any]:
    watcher = _cancel_on_disconnect(request)
    try:
        await session.execute(text("SELECT pg_sleep(5)"))
    finally:
        watcher.cancel()
    return {"unreachable": True}


@router.get("/disconnect-raw")
async def disconnect_raw(request: Request) -> dict[str, Any]:
    watcher = _cancel_on_disconnect(request)
    try:
        async with raw_connection(db.reader.connect) as raw, raw.transaction():
            await raw.fetchval("SELECT pg_sleep(5)")
    finally:
        watcher.cancel()
    return {"unreachable": True}


@router.get("/cancelled-begin")
async def cancelled_begin(session: DbSession) -> dict[str, Any]:
    """The request is cancelled while the session's BEGIN is on the wire (its first await)."""
    await session.connection()  # checked out; the driver's BEGIN is sent with the first statement
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().call_soon(task.cancel)
    await session.execute(text("SELECT 1"))
    return {"unreachable": True}


@router.get("/cancelled-driver-begin")
async def cancelled_driver_begin() -> dict[str, Any]:
    """The same on the raw driver: a transaction whose BEGIN is cancelled in flight."""
    async with raw_connection(db.reader.connect) as raw:
        start = asyncio.ensure_future(raw.transaction().start())
        await asyncio.sleep(0)  # BEGIN is written; its answer is awaited
        start.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await start
        raise asyncio.CancelledError
    return {"unreachable": True}  # pragma: no cover


@router.get("/write")
async def write(session: DbSession) -> dict[str, Any]:
    """A write through the unit of work: it must be committed, visible from outside."""
    n = (
        await session.execute(
            text(
                "INSERT INTO audit_log (actor, action, detail) "
                "VALUES ('pool-test', 'pool_test_write', '{}') RETURNING id"
            )
        )
    ).scalar_one()
    return {"id": n}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest_asyncio.fixture
async def live(engine: AsyncEngine) -> AsyncIterator[str]:
    from app.main import create_app

    await db.dispose()
    db.configure(
        get_settings().model_copy(
            update={"db_pool_size": POOL, "db_max_overflow": 0, "db_pool_timeout_seconds": 5}
        )
    )
    app: FastAPI = create_app()
    app.include_router(router)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.05)
        assert server.started
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        await db.dispose()
        db.configure(None)


async def _idle_in_transaction(engine: AsyncEngine) -> int:
    async with engine.connect() as c:
        return int(
            (
                await c.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'wangge' "
                        "AND datname = current_database() AND state LIKE 'idle in transaction%'"
                    )
                )
            ).scalar_one()
        )


async def _hundred_ok(base: str, token: str, engine: AsyncEngine) -> None:
    """The next hundred requests on the same pool (readiness, the caller, a write) succeed."""
    h = {"Authorization": f"Bearer {token}"}
    got: list[tuple[str, int, str]] = []
    async with httpx.AsyncClient(base_url=base, timeout=10) as c:
        for i in range(100):
            path = ("/readyz", "/api/v1/me", "/pool-test/write")[i % 3]
            r = await c.get(path, headers=h)
            got.append((path, r.status_code, r.text[:200]))
    bad = [g for g in got if g[1] != 200]
    assert not bad, bad
    assert await _idle_in_transaction(engine) == 0
    async with engine.connect() as c:
        ids = [int(r[2].split(":")[1].strip("}")) for r in got if r[0] == "/pool-test/write"]
        seen = (
            await c.execute(
                text("SELECT count(*) FROM audit_log WHERE id = ANY(:ids)"), {"ids": ids}
            )
        ).scalar_one()
    assert seen == len(ids)  # every acknowledged write was committed


async def test_statement_timeouts_leave_the_pool_clean(
    live: str, tokens: dict[str, str], engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=live, timeout=10) as c:
        for path in ("statement-timeout", "raw-statement-timeout", "raw-driver-timeout") * POOL:
            r = await c.get(f"/pool-test/{path}")
            assert r.status_code >= 500, (path, r.status_code, r.text)
    await _hundred_ok(live, tokens["admin"], engine)


async def test_client_disconnect_mid_statement_leaves_the_pool_clean(
    live: str, tokens: dict[str, str], engine: AsyncEngine
) -> None:
    for path in ("disconnect", "disconnect-raw") * POOL:
        async with httpx.AsyncClient(base_url=live, timeout=0.3) as c:
            with contextlib.suppress(httpx.TimeoutException):
                await c.get(f"/pool-test/{path}")
                raise AssertionError(f"{path} answered before its statement ended")
        await asyncio.sleep(0.2)  # the server sees the disconnect and cancels the handler
    await _hundred_ok(live, tokens["admin"], engine)


async def test_a_cancelled_begin_leaves_the_pool_clean(
    live: str, tokens: dict[str, str], engine: AsyncEngine
) -> None:
    async with httpx.AsyncClient(base_url=live, timeout=10) as c:
        for path in ("cancelled-begin", "cancelled-driver-begin") * POOL:
            r = await c.get(f"/pool-test/{path}")
            assert r.status_code == 500, (path, r.status_code, r.text)
    await _hundred_ok(live, tokens["admin"], engine)
