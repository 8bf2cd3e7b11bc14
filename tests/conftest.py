"""Test fixtures: a real PostGIS database built by the migrations, each test in a rolled-back
transaction. Pure tests (tests/geo, tests/demo) need no database and never touch these fixtures.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from tests.helpers import DEMO_USERS

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")
# The app reads its settings at import: point it at the throwaway database before that.
if TEST_DATABASE_URL:
    os.environ["DATABASE_URL"] = TEST_DATABASE_URL
os.environ.setdefault("ENV", "test")


def _need_db() -> str:
    if not TEST_DATABASE_URL:
        pytest.fail("TEST_DATABASE_URL is not set: run the suite with `make test`")
    return TEST_DATABASE_URL


@pytest.fixture(scope="session", autouse=True)
def extensions() -> None:
    """What `create_app` registers (error codes, labels, jobs), for tests that call services
    without the app."""
    from app import extensions

    extensions.register()


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """Each test's rate-limit counts roll back with its transaction; what the process admitted
    on its own (`app.ratelimit`'s batched keys) is forgotten with them."""
    from app import ratelimit

    ratelimit.forget()
    yield
    ratelimit.forget()


@pytest_asyncio.fixture(scope="session")
async def engine() -> AsyncIterator[AsyncEngine]:
    from app.config import async_url
    from app.demo.load import load_demo
    from app.migrate import upgrade

    url = _need_db()
    await asyncio.to_thread(upgrade, url)
    eng = create_async_engine(async_url(url), pool_size=5)
    async with eng.begin() as conn:
        # Every transaction of the suite's database publishes its own events at its commit
        # (migration 0038), so that a test in one rolled-back transaction sees them at once;
        # the relay (`app.events.outbox.publish`) has its own tests, on databases without it.
        await conn.execute(
            text(
                "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET wangge.publish_now = on', "
                "current_database()); END $$"
            )
        )
        await conn.execute(text("SELECT events_publish(2147483647)"))  # what a seed queued
    await eng.dispose()
    async with eng.begin() as conn:
        await load_demo(conn)
    yield eng
    await eng.dispose()
    from app.db import db

    await db.dispose()


@pytest_asyncio.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as c:
        trans = await c.begin()
        # The test's transaction never commits: publish queued events (a deferred trigger that
        # runs at COMMIT, migrations 0012 and 0038) at the end of each statement instead.
        await c.execute(text("SET CONSTRAINTS publish_at_commit IMMEDIATE"))
        if os.environ.get("WANGGE_CITUS_URL"):
            # A test is one transaction of many requests: on Citus, a reference table written
            # after a multi-shard statement in the same transaction needs one connection per node.
            await c.execute(text("SET LOCAL citus.multi_shard_modify_mode = 'sequential'"))
        try:
            yield c
        finally:
            await trans.rollback()


@pytest_asyncio.fixture
async def session(conn: AsyncConnection) -> AsyncIterator[AsyncSession]:
    s = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    try:
        yield s
    finally:
        await s.close()


@pytest_asyncio.fixture(scope="session")
async def tokens(engine: AsyncEngine) -> dict[str, str]:
    """An access token for each demo account, on a committed session (no argon2 per test).

    The tokens live a day, not the app's 15 minutes: on a loaded machine the suite runs longer
    than that, and its last tests (fuzz findings, limits, replicas) got 401 `invalid_token`."""
    import time
    import uuid

    import jwt

    from app.auth.tokens import ALGORITHM
    from app.config import get_settings

    def create_access_token(uid: int, sid: uuid.UUID) -> tuple[str, int]:
        now = int(time.time())
        claims = {"sub": str(uid), "sid": str(sid), "iat": now, "exp": now + 86400, "typ": "access"}
        return jwt.encode(claims, get_settings().signing_key, algorithm=ALGORITHM), 86400

    out: dict[str, str] = {}
    async with engine.begin() as c:
        for name in DEMO_USERS:
            uid = (
                await c.execute(text("SELECT id FROM users WHERE username = :u"), {"u": name})
            ).scalar_one()
            sid = uuid.uuid4()
            await c.execute(
                text(
                    "INSERT INTO auth_sessions (id, user_id, expires_at) "
                    "VALUES (:sid, :uid, now() + interval '1 day')"
                ),
                {"sid": sid, "uid": uid},
            )
            out[name] = create_access_token(uid, sid)[0]
    return out


@pytest_asyncio.fixture
async def anon(session: AsyncSession, conn: AsyncConnection) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no credentials, on the test's transaction."""
    from app.db import (
        get_hot_factory,
        get_hot_reader,
        get_reader,
        get_reader_factory,
        get_replica_reader,
        get_session,
        transaction,
    )
    from app.main import app

    async def _session() -> AsyncIterator[AsyncSession]:
        # The request's unit of work, on the test's session: commit → release the savepoint
        # (kept in the test's transaction), an error → roll back to it.
        async with transaction(session):
            yield session

    # The reader and the raw driver's connections: the test's connection itself, outside the
    # request session's savepoint when none is open (as their autocommit statements are outside
    # the request's transaction in the app).
    async def _reader() -> AsyncIterator[AsyncConnection]:
        yield conn

    @asynccontextmanager
    async def _connect() -> AsyncIterator[AsyncConnection]:
        yield conn

    app.dependency_overrides[get_session] = _session
    app.dependency_overrides[get_reader] = _reader
    app.dependency_overrides[get_hot_reader] = _reader
    app.dependency_overrides[get_replica_reader] = _reader
    app.dependency_overrides[get_reader_factory] = lambda: _connect
    app.dependency_overrides[get_hot_factory] = lambda: _connect
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c
    app.dependency_overrides.pop(get_session, None)
    app.dependency_overrides.pop(get_reader, None)
    app.dependency_overrides.pop(get_hot_reader, None)
    app.dependency_overrides.pop(get_replica_reader, None)
    app.dependency_overrides.pop(get_reader_factory, None)
    app.dependency_overrides.pop(get_hot_factory, None)


@pytest.fixture
def as_user(anon: httpx.AsyncClient, tokens: dict[str, str]):  # type: ignore[no-untyped-def]
    """`as_user("worker")` → headers that authenticate as that demo account."""

    def headers(name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens[name]}"}

    return headers


@pytest_asyncio.fixture
async def client(anon: httpx.AsyncClient, tokens: dict[str, str]) -> httpx.AsyncClient:
    """A client signed in as the demo admin."""
    anon.headers["Authorization"] = f"Bearer {tokens['admin']}"
    return anon


class Demo:
    """Ids of well-known demo places, looked up by code."""

    def __init__(self, ids: dict[str, int]) -> None:
        self.ids = ids

    def __getitem__(self, code: str) -> int:
        return self.ids[code]


@pytest_asyncio.fixture
async def demo(conn: AsyncConnection) -> Demo:
    rows = await conn.execute(
        text("SELECT code, id FROM areas UNION ALL SELECT code, id FROM grids")
    )
    return Demo({r.code: r.id for r in rows})
