"""Backup and restore of a district's database at 1,000,000 cases (issue 22): how long the
operator's runbook takes (docs/operations.md, Backups).

A cluster of its own (archiving its WAL with pgBackRest, scripts/backup.sh), the demo district,
then a year of synthetic cases (app.demo.history, set-based, triggers skipped, facts rebuilt),
VACUUM (ANALYZE). Then, timed: a full backup; 1,000 more cases; an incremental backup; T; 1,000
more; a point-in-time restore to T into a new directory, replay and promotion. The restored
database must hold exactly the cases committed before T. Prints one table (and
bench/out/backup.json); the figures are wall-clock seconds on this machine, shared and noisy,
and are reported, never asserted.

    .venv/bin/python bench/bench_backup.py [--cases 1000000 | --quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import async_url
from app.demo.history import generate_history
from tests.reliability.backup import ArchivingCluster, Drill, drill_env
from tests.reliability.live import create_database, free_port

OUT = Path(__file__).resolve().parent / "out" / "backup.json"


async def _scalar(engine: AsyncEngine, sql: str) -> Any:
    async with engine.connect() as c:
        return (await c.execute(text(sql))).scalar_one()


async def _more(engine: AsyncEngine, n: int, seed: float) -> None:
    async with engine.begin() as c:
        await generate_history(c, n, seed=seed, events=False, fast=True)


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--cases", type=int, default=1_000_000)
    p.add_argument("--quick", action="store_true", help="100,000 cases (make bench ARGS=--quick)")
    a = p.parse_args()
    if a.quick and a.cases == 1_000_000:
        a.cases = 100_000
    source = ArchivingCluster()
    restored: ArchivingCluster | None = None
    env = {**drill_env(source, str(source.root / "media")), "WANGGE_BACKUP_ARCHIVE_TIMEOUT": "1800"}
    (source.root / "media").mkdir()
    drill = Drill(env, timeout=3600)
    fig: dict[str, Any] = {"cases": a.cases, "machine": platform.node()}
    try:
        await asyncio.to_thread(drill.run, "configure")
        source.archive_command = drill.out("archive-command")
        await asyncio.to_thread(source.init)
        await asyncio.to_thread(source.start)
        url = await create_database(source.url("postgres"), "wangge")
        # the stanza first: the bulk load's WAL is archived as it is written
        await asyncio.to_thread(drill.run, "stanza-create")
        engine = create_async_engine(async_url(url))
        t0 = time.monotonic()
        await _more(engine, a.cases, 0.20261130)
        async with engine.connect() as c:
            await c.execution_options(isolation_level="AUTOCOMMIT")
            await c.execute(text("SET statement_timeout = 0"))
            await c.execute(text("VACUUM (ANALYZE)"))
        fig["generate_s"] = round(time.monotonic() - t0, 1)
        fig["database_bytes"] = await _scalar(engine, "SELECT pg_database_size('wangge')")
        fig["full_backup_s"] = round(await asyncio.to_thread(drill.run, "full"), 1)
        await _more(engine, 1000, 0.5)
        fig["incremental_backup_s"] = round(await asyncio.to_thread(drill.run, "incr"), 1)
        before = await _scalar(engine, "SELECT count(*) FROM cases")
        target = await _scalar(engine, "SELECT clock_timestamp()")
        await asyncio.sleep(0.5)
        await _more(engine, 1000, 0.7)
        await asyncio.to_thread(drill.run, "check")
        await engine.dispose()
        info = drill.out("info")
        fig["repository"] = [x.strip() for x in info.splitlines() if "backup size" in x]

        restored = ArchivingCluster()
        restored.port = free_port()
        shutil.rmtree(restored.data)
        t0 = time.monotonic()
        await asyncio.to_thread(
            drill.run, "restore", str(restored.data), target.strftime("%Y-%m-%d %H:%M:%S.%f+00")
        )
        fig["restore_files_s"] = round(time.monotonic() - t0, 1)
        await asyncio.to_thread(restored.start)
        back = create_async_engine(async_url(restored.url("wangge")))
        while await _scalar(back, "SELECT pg_is_in_recovery()"):
            await asyncio.sleep(0.2)
        fig["restore_total_s"] = round(time.monotonic() - t0, 1)
        got = await _scalar(back, "SELECT count(*) FROM cases")
        await back.dispose()
        fig["cases_before_T"], fig["cases_restored"] = before, got
        if got != before:
            print(f"restore FAILED: {got} cases restored, {before} committed before T")
            return 1
    finally:
        for cluster in (source, restored):
            if cluster is not None:
                cluster.destroy()
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(fig, ensure_ascii=False, indent=2, default=str))
    print(f"\nbackup and restore at {a.cases:,} cases ({fig['database_bytes'] / 2**20:,.0f} MB):")
    for k in ("generate_s", "full_backup_s", "incremental_backup_s", "restore_files_s"):
        print(f"  {k:24} {fig[k]:>8}")
    print(
        f"  {'restore_total_s':24} {fig['restore_total_s']:>8}  (files, WAL replay to T, promotion)"
    )
    print(f"  restored {got:,} cases = the {before:,} committed before T")
    for line in fig["repository"]:
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
