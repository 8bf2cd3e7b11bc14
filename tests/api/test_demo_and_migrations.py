"""The migrations (up, down, up; models agree) and the demo district in the database."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import async_url
from tests.helpers import DEMO_DISTRICT


async def test_migrations_up_down_up_on_a_fresh_database(engine) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from app.migrate import downgrade, upgrade
    from app.models import Base

    base_url = os.environ["TEST_DATABASE_URL"]
    name = f"wangge_mig_{uuid.uuid4().hex[:8]}"
    async with engine.connect() as c:
        await c.execution_options(isolation_level="AUTOCOMMIT")
        await c.execute(text(f'CREATE DATABASE "{name}"'))
    url = base_url.rsplit("/", 1)[0] + "/" + name
    try:
        await asyncio.to_thread(upgrade, url)
        await asyncio.to_thread(downgrade, url, "base")
        await asyncio.to_thread(upgrade, url)
        eng = create_async_engine(async_url(url))
        async with eng.connect() as c:

            def diff(sync_conn):  # type: ignore[no-untyped-def]
                ctx = MigrationContext.configure(
                    sync_conn,
                    opts={
                        "include_object": lambda o, n, t, r, ct: (
                            not (t == "table" and n == "spatial_ref_sys")
                        )
                    },
                )
                return compare_metadata(ctx, Base.metadata)

            assert await c.run_sync(diff) == []
            tables = set(
                (
                    await c.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                    )
                ).scalars()
            )
            assert {"areas", "grids", "grid_boundaries", "buildings"} <= tables
        await eng.dispose()
    finally:
        async with engine.connect() as c:
            await c.execution_options(isolation_level="AUTOCOMMIT")
            await c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def test_demo_district_is_loaded_and_idempotent(conn) -> None:
    from app.demo.load import load_demo

    counts = (
        await conn.execute(
            text(
                # the demo district's grids (by code): the Citus suite also loads 另一区
                "SELECT (SELECT count(*) FROM areas), (SELECT count(*) FROM grids WHERE code LIKE :d),"
                " (SELECT count(*) FROM buildings),"
                " (SELECT count(*) FROM grids WHERE code LIKE :d AND kind = 'city'),"
                " (SELECT count(*) FROM grids WHERE code LIKE :d AND kind = 'rural'),"
                " (SELECT count(*) FROM grids WHERE code LIKE :d AND kind = 'special')"
            ),
            {"d": DEMO_DISTRICT + "%"},
        )
    ).one()
    assert tuple(counts)[1:] == (273, counts[2], 213, 57, 3)
    report = await load_demo(conn)
    assert (report.areas, report.grids, report.buildings) == (0, 0, 0)


async def test_every_demo_community_is_tiled(client: httpx.AsyncClient) -> None:
    areas = (await client.get("/api/v1/areas", params={"limit": 500})).json()["items"]
    for a in areas:
        if a["level"] in ("community", "street", "district"):
            fc = (await client.get(f"/api/v1/areas/{a['id']}/coverage")).json()
            assert fc["properties"]["ok"], (a["name"], fc["properties"])
