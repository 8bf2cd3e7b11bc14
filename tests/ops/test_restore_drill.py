"""The restore drill (issue 22): pgBackRest backs up a cluster of the test's own (scripts/backup.sh:
a full backup, an incremental one, WAL archived continuously), cases with photos are written
through the API before and after a point in time T, and the backup is restored to T into a new
cluster. Exactly the cases committed up to T are there, each with its photos (restored from the
media copy taken after T: photos are content-addressed and never rewritten, so that copy holds
every photo the database had at T). The figures (backup and restore seconds) are printed.

Bounded: about a minute. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.helpers import jpeg
from tests.reliability.backup import ArchivingCluster, Drill, drill_env
from tests.reliability.cluster import PGBIN
from tests.reliability.live import Server, create_database, free_port, make_tokens

pytestmark = pytest.mark.skipif(
    not (PGBIN / "initdb").exists() or not shutil.which("pgbackrest"),
    reason="no PostgreSQL server or pgbackrest (scripts/backup.sh install)",
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def drill_dirs(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Path]:
    root = Path(tmp_path_factory.mktemp("drill"))
    yield root


async def _cases(
    client: httpx.AsyncClient, server: Server, token: str, body: dict, tag: str, n: int
) -> dict[str, tuple[int, str]]:
    """n cases, each with one photo: title → (case id, photo hash)."""
    out = {}
    for i in range(n):
        title = f"{tag} {i} {uuid.uuid4().hex[:6]}"
        r = await client.post(
            server.base + "/api/v1/cases",
            json={**body, "title": title},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 201, r.text
        case_id = r.json()["id"]
        r = await client.post(
            f"{server.base}/api/v1/cases/{case_id}/attachments",
            files={
                "files": ("p.jpg", jpeg(colour=(len(tag) * 30 % 255, i % 255, 90)), "image/jpeg")
            },
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code in (200, 201), r.text
        out[title] = (case_id, "")
    return out


async def test_restore_to_a_point_in_time(drill_dirs: Path) -> None:
    from app.cases.storage import DirStore, keys
    from app.config import async_url

    media = drill_dirs / "media"
    media.mkdir()
    source = ArchivingCluster()
    restored: ArchivingCluster | None = None
    server: Server | None = None
    env = drill_env(source, str(media))
    drill = Drill(env)
    try:
        await asyncio.to_thread(drill.run, "configure")
        source.archive_command = drill.out("archive-command")
        await asyncio.to_thread(source.init)
        await asyncio.to_thread(source.start)
        url = await create_database(source.url("postgres"), "wangge")
        tokens = await make_tokens(url)
        await asyncio.to_thread(drill.run, "stanza-create")
        full_s = await asyncio.to_thread(drill.run, "full")

        engine = create_async_engine(async_url(url))
        async with engine.connect() as c:
            lon, lat = (
                await c.execute(
                    text(
                        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.boundary) p "
                        "FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id "
                        "WHERE g.code = '360602001001001' AND b.valid_to IS NULL) x"
                    )
                )
            ).one()
            cat = (
                await c.execute(text("SELECT code FROM categories ORDER BY code LIMIT 1"))
            ).scalar()
        body = {"category": cat, "title": "", "location": {"lon": lon, "lat": lat}}
        server = Server(
            url,
            {"WANGGE_MEDIA_BACKEND": "dir", "WANGGE_MEDIA_DIR": str(media),
             "WANGGE_SCHEDULER_ENABLED": "false"},
            log=drill_dirs / "app.log",
        )  # fmt: skip
        await asyncio.to_thread(server.start)
        async with httpx.AsyncClient(timeout=30) as client:
            a = await _cases(client, server, tokens["worker"], body, "DRILL-A", 8)
            incr_s = await asyncio.to_thread(drill.run, "incr")
            a2 = await _cases(client, server, tokens["worker"], body, "DRILL-A2", 8)
            async with engine.connect() as c:
                target = (await c.execute(text("SELECT clock_timestamp()"))).scalar_one()
            await asyncio.sleep(0.5)
            b = await _cases(client, server, tokens["worker"], body, "DRILL-B", 8)
        server.stop()
        server = None
        # The photos are copied after T; `check` switches the WAL file and waits until it is
        # archived, so the archive holds a commit after T (recovery stops there).
        media_s = await asyncio.to_thread(drill.run, "media")
        await asyncio.to_thread(drill.run, "check")
        async with engine.connect() as c:
            source_db_bytes = (
                await c.execute(text("SELECT pg_database_size('wangge')"))
            ).scalar_one()
        await engine.dispose()

        # Restore to T into a new cluster (another directory and port), and its photos.
        restored = ArchivingCluster()
        restored.port = free_port()
        shutil.rmtree(restored.data)
        t0 = time.monotonic()
        await asyncio.to_thread(
            drill.run, "restore", str(restored.data), target.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        )
        await asyncio.to_thread(restored.start)
        back = create_async_engine(async_url(restored.url("wangge")))
        deadline = time.monotonic() + 120
        while True:
            async with back.connect() as c:
                recovering = (await c.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
            if not recovering or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        restore_s = time.monotonic() - t0
        assert not recovering, "the restored cluster did not finish recovery"
        media2 = drill_dirs / "media-restored"
        await asyncio.to_thread(drill.run, "restore-media", str(media2))

        async with back.connect() as c:
            rows = (
                await c.execute(
                    text(
                        "SELECT c.title, c.id, a.sha256 FROM cases c "
                        "LEFT JOIN attachments a ON a.case_id = c.id "
                        "WHERE c.title LIKE 'DRILL-%'"
                    )
                )
            ).all()
            # the restored cluster accepts writes (promoted), with the migrations' objects
            await c.execute(text("SELECT count(*) FROM event_intents"))
        await back.dispose()
    finally:
        if server is not None:
            server.stop()
        for cl in (source, restored):
            if cl is not None:
                await asyncio.to_thread(cl.destroy)

    got = {r.title: r.id for r in rows}
    want = {t: v[0] for t, v in {**a, **a2}.items()}
    print(
        f"\nrestore drill: database {source_db_bytes / 1e6:.1f} MB; full backup {full_s:.1f} s, "
        f"incremental {incr_s:.1f} s, photo copy {media_s:.2f} s; restore to T and recovery "
        f"{restore_s:.1f} s; {len(got)} cases restored ({len(want)} up to T, {len(b)} after)"
    )
    assert got == want, (
        f"missing {sorted(set(want) - set(got))[:3]}, extra {sorted(set(got) - set(want))[:3]}"
    )
    store = DirStore(str(media2))
    photos = [r.sha256 for r in rows]
    assert all(photos), "a restored case lost its photo row"
    for sha in photos:
        img, thumb = keys(sha)
        assert store.path(img).exists() and store.path(thumb).exists(), sha
