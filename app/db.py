"""Database engine and sessions, and the one unit of work.

- `DbSession` is the one dependency routes (and the policy dependencies) take: one session per
  request, committed when the endpoint returns normally and rolled back on any exception, both
  *before* the response is sent (FastAPI's `scope="function"`), so a client never sees a success
  whose transaction then failed.
- `unit_of_work()` is the same for everything outside a request (scheduler, webhook deliveries,
  CLI) and for a short transaction of its own inside one (the audit record of a refusal):
  `async with unit_of_work() as session: ...`. Services take a session and never commit; they
  `flush()` when they need an id.
- A connection goes back to the pool clean: rolled back, or discarded when its state is unknown
  (a cancelled statement, a cancelled BEGIN); `checkout` refuses a dirty one as a last guard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any, TypeVar

import anyio
import asyncpg
from fastapi import Depends
from sqlalchemy import ForeignKeyConstraint, MetaData, event, exc, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.config import Settings, async_url, get_settings

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def district_key(
    column: str,
    target: str,
    ondelete: str | None = None,
    onupdate: str | None = None,
    deferrable: bool | None = None,
    initially: str | None = None,
) -> ForeignKeyConstraint:
    """A foreign key between case-side tables, which carries the district (migration 0014):
    `(column, district_id) → target (id, district_id)`, as Citus needs for co-located tables."""
    return ForeignKeyConstraint(
        [column, "district_id"],
        [f"{target}.id", f"{target}.district_id"],
        ondelete=ondelete,
        onupdate=onupdate,
        deferrable=deferrable,
        initially=initially,
    )


log = logging.getLogger("wangge.db")


def make_engine(
    settings: Settings | None = None,
    *,
    pool_size: int | None = None,
    max_overflow: int | None = None,
    server_settings: dict[str, str] | None = None,
    url: str | None = None,
    **kw: Any,
) -> AsyncEngine:
    s = settings or get_settings()
    engine = create_async_engine(
        url or s.async_database_url,
        pool_size=s.db_pool_size if pool_size is None else pool_size,
        max_overflow=s.db_max_overflow if max_overflow is None else max_overflow,
        pool_pre_ping=s.db_pre_ping,
        pool_timeout=s.db_pool_timeout_seconds,
        connect_args={
            "timeout": s.db_connect_timeout_seconds,
            "server_settings": {
                "statement_timeout": str(s.statement_timeout_ms),
                "timezone": "UTC",
                "application_name": "wangge",
                # Our statements are short and prepared; JIT compiling them costs more than it
                # saves (measured: 0.7 s of a 1.4 s queue query at 1M cases).
                "jit": "off",
                # On a Citus node, pg_class hides the shards behind a per-row function call,
                # which made asyncpg's type introspection (once per new connection, for arrays,
                # geometry, enums) take 6-9 s on the coordinator (13.2): the app never reads the
                # catalogue, so the filter is off. Plain PostgreSQL keeps it as an unknown custom
                # setting that nothing reads.
                "citus.override_table_visibility": "off",
                **(server_settings or {}),
            },
        },
        **kw,
    )
    event.listen(engine.sync_engine.pool, "checkout", _refuse_dirty)
    return engine


def dirty(raw: Any) -> str | None:
    """Why an asyncpg connection outside any transaction of ours is not clean, or None. After a
    cancelled `BEGIN` asyncpg still believes in its transaction (`_top_xact`): its next
    `transaction()` would send SAVEPOINT ("can only be used in transaction blocks", bug 15)."""
    if raw is None or raw.is_closed():
        return "closed"
    if getattr(raw, "_top_xact", None) is not None:
        return "driver transaction left open"
    if raw.is_in_transaction():
        return "server transaction left open"
    return None


def _refuse_dirty(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """Pool `checkout`: a connection in an unknown state is never handed out; the pool discards
    it and opens another (SQLAlchemy's documented DisconnectionError protocol)."""
    why = dirty(getattr(dbapi_connection, "driver_connection", None))
    if why is not None:
        log.warning("discarding a pooled connection: %s", why)
        raise exc.DisconnectionError(why)


HOT_CITUS_SETTINGS = {"citus.max_adaptive_executor_pool_size": "1"}
"""The hot pool's Citus settings: on a coordinator, one connection per worker for a statement (the
hot statements touch one district's shards), kept between statements. With Citus's default (16)
the intake statement opened 9.2 new worker sessions per intake, each closed again at its end;
with 1, 0.07 (`bench/citus_intake_trace.py`, docs/benchmarks.md). Plain PostgreSQL keeps them as
settings nothing reads."""


class Database:
    """Lazily created engine + session factory (one per process)."""

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._hot: AsyncEngine | None = None
        self._hot_base: AsyncEngine | None = None
        self._factory: async_sessionmaker[AsyncSession] | None = None
        self._settings: Settings | None = None
        self._replica: AsyncEngine | None = None
        self._replica_base: AsyncEngine | None = None
        self._replica_next_check = 0.0
        self._replica_usable = False
        self.replica_lag: float | None = None
        """The replica's lag in seconds at the last check (None: none configured, or down)."""

    def configure(self, settings: Settings | None) -> None:
        """The settings of the next engine (after `dispose`); None = the process's settings.
        For tests that need a pool of a given size."""
        self._settings = settings

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = make_engine(self._settings)
            self._factory = async_sessionmaker(self._engine, expire_on_commit=False)
        return self._engine

    @property
    def reader(self) -> AsyncEngine:
        """The same pool in autocommit: a read is one round trip (no BEGIN/ROLLBACK)."""
        if self._reader is None:
            self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._reader

    @property
    def hot(self) -> AsyncEngine:
        """A pool of its own, in autocommit, for the hottest statements run on the raw driver (the
        case intake with its key's claim and stored answer, the point lookup): its connections
        plan a prepared statement once (`plan_cache_mode = force_generic_plan`) and reuse the
        plan for every later call on the connection. On the shared pool PostgreSQL re-plans them
        on every call (its cost model keeps preferring a custom plan): 5-6 ms of planning for the
        intake statement, most of its database CPU (docs/benchmarks.md). Only statements whose
        generic plan was checked against the custom one belong here."""
        if self._hot is None:
            s = self._settings or get_settings()
            self._hot_base = make_engine(
                self._settings,
                pool_size=s.db_hot_pool_size,
                max_overflow=s.db_hot_max_overflow,
                server_settings={
                    "plan_cache_mode": "force_generic_plan" if s.db_hot_generic_plans else "auto",
                    **HOT_CITUS_SETTINGS,
                },
            )
            self._hot = self._hot_base.execution_options(isolation_level="AUTOCOMMIT")
        return self._hot

    @property
    def replica(self) -> AsyncEngine | None:
        """The read replica's pool, in autocommit (`WANGGE_DATABASE_REPLICA_URL`), or None."""
        s = self._settings or get_settings()
        if not s.database_replica_url:
            return None
        if self._replica is None:
            self._replica_base = make_engine(
                self._settings,
                url=async_url(s.database_replica_url),
                server_settings={"application_name": "wangge-replica"},
            )
            self._replica = self._replica_base.execution_options(isolation_level="AUTOCOMMIT")
        return self._replica

    async def read_engine(self) -> AsyncEngine | None:
        """The replica when one is configured, reachable and within `replica_max_lag_seconds`
        at its last check (every `replica_check_seconds`, by whichever request comes first);
        None: read the primary."""
        replica = self.replica
        if replica is None:
            return None
        s = self._settings or get_settings()
        now = time.monotonic()
        if now >= self._replica_next_check:
            self._replica_next_check = now + s.replica_check_seconds
            try:
                async with asyncio.timeout(s.db_connect_timeout_seconds + 1):
                    async with replica.connect() as c:
                        lag = (await c.execute(_REPLICA_LAG)).scalar()
                self.replica_lag = float(lag or 0)
                self._replica_usable = self.replica_lag <= s.replica_max_lag_seconds
            except Exception as e:  # down, refused, timed out: the primary serves
                self.replica_down(e)
        return replica if self._replica_usable else None

    def replica_down(self, error: BaseException) -> None:
        if self._replica_usable or self.replica_lag is not None:
            log.warning("read replica unusable (%s): reading the primary", type(error).__name__)
        self._replica_usable = False
        self.replica_lag = None

    def session(self) -> AsyncSession:
        self.engine  # noqa: B018 - creates the factory
        assert self._factory is not None
        return self._factory()

    async def dispose(self) -> None:
        if self._replica_base is not None:
            await self._replica_base.dispose()
            self._replica_base = self._replica = None
            self._replica_next_check = 0.0
            self._replica_usable = False
        if self._hot_base is not None:
            await self._hot_base.dispose()
            self._hot_base = self._hot = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._reader = None
            self._factory = None


_REPLICA_LAG = text(
    """
    SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0
                WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END
    """
)
"""Seconds the replica trails (0 when it has replayed all it received, or is a primary)."""

db = Database()


UNKNOWN_STATE: tuple[type[BaseException], ...] = (asyncio.CancelledError, TimeoutError)
"""A statement stopped from our side midway: the connection's state is unknown."""


async def _discard(session: AsyncSession, error: BaseException) -> None:
    """Undo the session's work. A plain error (a refusal, a constraint) rolls back; when the
    statement was cancelled or the connection is gone its state is unknown: the connections are
    invalidated (closed, never returned to the pool). Shielded: a cancelled request still
    cleans up."""
    with anyio.CancelScope(shield=True):
        if isinstance(error, UNKNOWN_STATE + CONNECTION_LOST):
            await session.invalidate()
            return
        try:
            await session.rollback()
        except BaseException:
            await session.invalidate()
            raise


E = TypeVar("E", bound=BaseException)


def keep(error: E) -> E:
    """Mark a refusal whose unit of work still commits: the request fails, but what it wrote is
    the record of that failure (a failed sign-in counts toward the lock-out, a reused refresh
    token revokes its session). `raise keep(ApiError(...))`."""
    error.__dict__["commit_work"] = True
    return error


def keeps_work(error: BaseException) -> bool:
    return bool(getattr(error, "commit_work", False))


def _untouched(session: AsyncSession) -> bool:
    """Nothing begun and nothing pending: a request that never used its session (the hot paths,
    which work on a raw connection, after a cached sign-in) has nothing to commit or close, and
    each would cost a hop through SQLAlchemy's greenlet (57 µs of CPU for the pair here)."""
    # (dirty and deleted objects are in the identity map; new ones are not, until flushed)
    return not (session.in_transaction() or session.new or session.identity_map)


async def _commit(session: AsyncSession) -> None:
    if _untouched(session):
        return
    try:
        await session.commit()
    except BaseException as e:
        await _discard(session, e)
        raise


@asynccontextmanager
async def transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """The unit of work's rule on a session: commit when the block ends normally, roll back (or
    discard the connection) on any exception, except one marked by `keep`, which commits, then
    propagates. (The tests run their requests through it on their own rolled-back session.)"""
    try:
        yield session
    except BaseException as e:
        if keeps_work(e):
            await _commit(session)
        else:
            await _discard(session, e)
        raise
    await _commit(session)


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[AsyncSession]:
    """One transaction on a session of its own (see `transaction`). The one place that commits,
    for requests and jobs alike: `async with unit_of_work() as session: ...`."""
    session = db.session()
    try:
        async with transaction(session):
            yield session
    finally:
        if not _untouched(session):
            with anyio.CancelScope(shield=True):
                await session.close()


@asynccontextmanager
async def standalone(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A short transaction of its own on `session`, for a record that must outlive the request's
    failure (the audit record of a refusal, a failed sign-in): what the session held is rolled
    back first (the request is being refused), the block's writes are committed alone, and the
    request's unit of work then has nothing left to undo. One connection, never two."""
    await session.rollback()
    try:
        yield session
    except BaseException as e:
        await _discard(session, e)
        raise
    await _commit(session)


@asynccontextmanager
async def short_transaction(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """For a dependency that runs before the route's work (the bearer check, the Open311 key
    check): when the session has no transaction yet, the block is a transaction of its own,
    committed at once, so the connection goes back to the pool before the route reads on one of
    its own (a request never holds two: a full pool would deadlock). Inside a transaction
    already begun, the block simply joins it."""
    if session.in_transaction():
        yield session
        return
    async with transaction(session):
        yield session


async def get_session() -> AsyncIterator[AsyncSession]:
    async with unit_of_work() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session, scope="function")]
"""The request's session. `scope="function"`: the commit (or rollback) runs when the endpoint
returns, before the response is sent. Every dependency must take the session through this one
alias: FastAPI caches a dependency per (callable, scope), so a `Depends(get_session)` with
another scope would open a second session in the same request."""


async def get_reader() -> AsyncIterator[AsyncConnection]:
    async with db.reader.connect() as conn:
        yield conn


DbReader = Annotated[AsyncConnection, Depends(get_reader)]


async def get_replica_reader() -> AsyncIterator[AsyncConnection]:
    """An autocommit connection to the read replica (`Database.read_engine`), or to the primary
    when there is none, it lags or it cannot be reached."""
    engine = await db.read_engine()
    conn: AsyncConnection | None = None
    if engine is not None:
        try:
            conn = await engine.connect()
        except Exception as e:
            db.replica_down(e)
    if conn is None:
        conn = await db.reader.connect()
    try:
        yield conn
    finally:
        await conn.close()


ReplicaReader = Annotated[AsyncConnection, Depends(get_replica_reader)]
"""`DbReader` for the reads that may trail the primary by a moment (tiles, OGC, figures): on the
replica when one is configured and fresh enough (docs/operations.md, read replicas)."""


_LSN = text("SELECT pg_current_wal_lsn()::text")
_REPLAYED = text(
    "SELECT NOT pg_is_in_recovery() "
    "OR pg_last_wal_replay_lsn() >= CAST(CAST(:lsn AS text) AS pg_lsn)"
)


async def replica_after(primary: AsyncConnection) -> AsyncConnection | None:
    """Read-your-writes on the replica: a connection to it once it has replayed everything the
    primary has written so far (polled for at most `replica_wait_ms`), or None (read the
    primary). The caller closes the connection."""
    engine = await db.read_engine()
    if engine is None:
        return None
    lsn = (await primary.execute(_LSN)).scalar()
    wait = (db._settings or get_settings()).replica_wait_ms / 1000
    try:
        conn = await engine.connect()
    except Exception as e:
        db.replica_down(e)
        return None
    deadline = time.monotonic() + wait
    try:
        while not (await conn.execute(_REPLAYED, {"lsn": lsn})).scalar():
            if time.monotonic() >= deadline:
                await conn.close()
                return None
            await asyncio.sleep(0.01)
    except Exception as e:
        db.replica_down(e)
        await conn.close()
        return None
    return conn


async def get_reader_factory() -> Callable[[], AbstractAsyncContextManager[AsyncConnection]]:
    """For a short autocommit statement in the middle of a request (then the connection is
    returned): callers never hold it together with the session's."""
    return db.reader.connect


async def get_hot_reader() -> AsyncIterator[AsyncConnection]:
    async with db.hot.connect() as conn:
        yield conn


HotReader = Annotated[AsyncConnection, Depends(get_hot_reader)]
"""`DbReader` on `Database.hot`: for the hot read paths whose statements were checked to plan
well generically (the case list, the sync, the service card); re-planned on every call on the
shared pool, the case list's statement cost 28 ms of database CPU for 0.3 ms of execution."""


async def get_hot_factory() -> Callable[[], AbstractAsyncContextManager[AsyncConnection]]:
    """`Database.hot`'s connections, one at a time, for the hot paths' raw statements."""
    return db.hot.connect


HotFactory = Annotated[
    Callable[[], AbstractAsyncContextManager[AsyncConnection]], Depends(get_hot_factory)
]


ReaderFactory = Annotated[
    Callable[[], AbstractAsyncContextManager[AsyncConnection]], Depends(get_reader_factory)
]
"""Hot read paths (lookup, card): one autocommit connection, one statement, no ORM session."""


# --- the raw driver, for the hottest paths --------------------------------------------------------


class RawSql:
    """A statement written with `:name` binds, compiled once for asyncpg (`$1`, `$2`, ...), to run
    on the raw driver connection where SQLAlchemy's per-call work would dominate (case intake).
    Values are always sent as bind parameters, never pasted into the text."""

    def __init__(self, sql: str) -> None:
        compiled = text(sql).compile(dialect=asyncpg_dialect())
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(compiled.positiontup or ())

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        return [params[n] for n in self.names]


async def driver(conn: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a pooled SQLAlchemy connection (it stays checked out)."""
    raw = await conn.get_raw_connection()
    return raw.driver_connection  # type: ignore[no-any-return]


CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
    OSError,
)
"""What the raw driver raises when its connection is gone or left mid-operation."""


@asynccontextmanager
async def raw_connection(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection used through the raw driver. SQLAlchemy does not see what happens on
    it, so when the driver finds the connection lost it is invalidated here: the pool then opens
    a fresh one instead of handing the broken one to the next request."""
    async with connect() as conn, raw_of(conn) as raw:
        yield raw


@asynccontextmanager
async def raw_of(conn: AsyncConnection) -> AsyncIterator[asyncpg.Connection]:
    """The raw driver under `conn`. SQLAlchemy does not see what runs on it, so `conn` is
    invalidated (never returned to the pool) when the driver finds it lost, when a statement
    was cancelled midway (client gone, timeout), or when the block left a transaction open."""
    raw = await driver(conn)
    try:
        yield raw
    except BaseException as e:
        if isinstance(e, CONNECTION_LOST + UNKNOWN_STATE) or (
            not conn.in_transaction() and dirty(raw) is not None
        ):
            with anyio.CancelScope(shield=True):
                await conn.invalidate()
        raise
    if not conn.in_transaction() and dirty(raw) is not None:
        with anyio.CancelScope(shield=True):
            await conn.invalidate()


class RecordView:
    """Attribute access (`row.id`) over an asyncpg Record, as SQLAlchemy rows have."""

    __slots__ = ("_r",)

    def __init__(self, record: Mapping[str, Any]) -> None:
        self._r = record

    def __getattr__(self, name: str) -> Any:
        try:
            return self._r[name]
        except KeyError:
            raise AttributeError(name) from None


async def is_citus(conn: AsyncConnection | AsyncSession) -> bool:
    """Is this database a Citus cluster's (the extension installed)? For the few things one
    engine allows and the other does not (e.g. moving a row to another district)."""
    return bool(
        (await conn.execute(text("SELECT 1 FROM pg_extension WHERE extname = 'citus'"))).scalar()
    )
