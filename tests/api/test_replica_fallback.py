"""Issue 22, read replicas (app.db.Database.read_engine): a replica that cannot be reached or
lags beyond `replica_max_lag_seconds` is not read, the primary is; a reachable one is used and
its lag measured. A real standby (its lag, the fallback when it lags, read-your-writes):
tests/ops/test_replica.py (`make test-ha`)."""

from __future__ import annotations

import os

from sqlalchemy import text

from app.config import Settings
from app.db import Database
from tests.reliability.live import free_port


def _settings(replica: str, **kw: object) -> Settings:
    return Settings(
        **{"DATABASE_URL": os.environ["TEST_DATABASE_URL"]},
        database_replica_url=replica,
        replica_check_seconds=0.5,
        db_connect_timeout_seconds=1,
        **kw,
    )


async def test_a_reachable_replica_is_read_and_its_lag_measured(engine) -> None:
    d = Database()
    d.configure(_settings(os.environ["TEST_DATABASE_URL"]))
    try:
        replica = await d.read_engine()
        assert replica is not None and d.replica_lag == 0.0  # a primary has no lag
        async with replica.connect() as c:
            name = (await c.execute(text("SHOW application_name"))).scalar()
        assert name == "wangge-replica"
        # read-your-writes: the primary's position, compared on the replica
        import app.db as dbm

        saved, dbm.db = dbm.db, d
        try:
            async with d.reader.connect() as primary:
                after = await dbm.replica_after(primary)
            assert after is not None
            await after.close()
        finally:
            dbm.db = saved
    finally:
        await d.dispose()


async def test_an_unreachable_or_lagging_replica_is_not_read(engine) -> None:
    d = Database()
    d.configure(_settings(f"postgresql://wangge@127.0.0.1:{free_port()}/nowhere"))
    try:
        assert await d.read_engine() is None and d.replica_lag is None
    finally:
        await d.dispose()


async def test_without_a_replica_everything_reads_the_primary(engine) -> None:
    d = Database()
    d.configure(Settings(**{"DATABASE_URL": os.environ["TEST_DATABASE_URL"]}))
    try:
        assert d.replica is None and await d.read_engine() is None
    finally:
        await d.dispose()
