"""Database engine and sessions. `DbSession` is the one dependency routes take."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, Any

import asyncpg
from fastapi import Depends
from sqlalchemy import ForeignKeyConstraint, MetaData, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase

from app.config import Settings, get_settings

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


def make_engine(settings: Settings | None = None, **kw: Any) -> AsyncEngine:
    s = settings or get_settings()
    return create_async_engine(
        s.async_database_url,
        pool_size=s.db_pool_size,
        max_overflow=s.db_max_overflow,
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
            },
        },
        **kw,
    )


class Database:
    """Lazily created engine + session factory (one per process)."""

    def __init__(self) -> None:
        self._engine: AsyncEngine | None = None
        self._reader: AsyncEngine | None = None
        self._factory: async_sessionmaker[AsyncSession] | None = None

    @property
    def engine(self) -> AsyncEngine:
        if self._engine is None:
            self._engine = make_engine()
            self._factory = async_sessionmaker(self._engine, expire_on_commit=False)
        return self._engine

    @property
    def reader(self) -> AsyncEngine:
        """The same pool in autocommit: a read is one round trip (no BEGIN/ROLLBACK)."""
        if self._reader is None:
            self._reader = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        return self._reader

    def session(self) -> AsyncSession:
        self.engine  # noqa: B018 - creates the factory
        assert self._factory is not None
        return self._factory()

    async def dispose(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None
            self._reader = None
            self._factory = None


db = Database()


async def get_session() -> AsyncIterator[AsyncSession]:
    async with db.session() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session)]


async def get_reader() -> AsyncIterator[AsyncConnection]:
    async with db.reader.connect() as conn:
        yield conn


DbReader = Annotated[AsyncConnection, Depends(get_reader)]


async def get_reader_factory() -> Callable[[], AbstractAsyncContextManager[AsyncConnection]]:
    """For a short autocommit statement in the middle of a request (then the connection is
    returned): callers never hold it together with the session's."""
    return db.reader.connect


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
    """The raw driver under `conn`; `conn` is invalidated when the driver finds it lost."""
    try:
        yield await driver(conn)
    except CONNECTION_LOST:
        await conn.invalidate()
        raise


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
