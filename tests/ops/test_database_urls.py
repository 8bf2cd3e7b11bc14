"""The database URL forms an operator gives: one host, or a Patroni cluster's hosts (issue 22)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import create_async_engine

from app.config import async_url, libpq_url

CLUSTER = (
    "postgresql://wangge@10.0.0.1:5432,10.0.0.2:5432,10.0.0.3:5433/wangge"
    "?target_session_attrs=read-write"
)


def test_one_host_is_unchanged() -> None:
    assert async_url("postgresql://u@h:5432/db") == "postgresql+asyncpg://u@h:5432/db"
    assert libpq_url("postgresql+asyncpg://u@h:5432/db") == "postgresql://u@h:5432/db"


def test_multi_host_url_reaches_asyncpg_as_host_and_port_lists() -> None:
    url = async_url(CLUSTER)
    assert url == (
        "postgresql+asyncpg://wangge@/wangge?host=10.0.0.1:5432&host=10.0.0.2:5432"
        "&host=10.0.0.3:5433&target_session_attrs=read-write"
    )
    engine = create_async_engine(url)
    _, kw = engine.dialect.create_connect_args(engine.url)
    assert kw["host"] == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert kw["port"] == [5432, 5432, 5433]
    assert kw["target_session_attrs"] == "read-write"
    assert kw["database"] == "wangge" and kw["user"] == "wangge"


def test_the_listener_gets_libpq_multi_host_form() -> None:
    # asyncpg.connect() reads every host of the comma form (one of the ?host= form only)
    assert libpq_url(CLUSTER) == CLUSTER
