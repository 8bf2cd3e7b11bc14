"""The lookup's in-process index: the live boundaries in a shapely STRtree, with each grid's
answer row beside it, so that "which grid is this point in?" for now (no `at=`) is answered
without a database round trip (issue 23; docs/benchmarks.md, "Grid lookup").

The index is the same data as the SQL lookup (`service.LOOKUP_NOW`: the same columns, from one
statement over every live boundary) and the same rule: a point on an edge shared by several
grids resolves to the lowest code. What the SQL answers that the index does not: a point in no
grid (the nearest grid: a KNN in the database), a time in the past (`at=`), and anything while
the index is missing or being rebuilt — the endpoint then runs its statement as before.

Freshness: every `lookup_index_refresh_seconds` each process reads a fingerprint of what the
answer is made of (the count and the sum of row versions (`xmin`) of the boundaries, grids, areas,
posts, their grids and users, and the date that decides which posts are current): one cheap
statement, no trigger, no write path changed, and it sees every write (the API, the CLI, a
migration, `psql`). When it moved, the index is rebuilt beside the old one and swapped in. So a
boundary, a community's phone or a worker's post changes the answer within that interval plus a
rebuild (`tests/api/test_lookup_index.py`), and after a rebuild the next check waits four
rebuilds' time more (at 50,000 grids a rebuild took 2.7 s in `bench/bench_lookup.py`): a
registry edited without pause cannot keep a process rebuilding. The HTTP answer says
`max-age=60` already.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from shapely.strtree import STRtree
from sqlalchemy.ext.asyncio import AsyncConnection

from app.background import every
from app.db import RawSql, RecordView, raw_of
from app.grids.service import LOOKUP_INDEX_ROWS

log = logging.getLogger("wangge.grids.lookup_index")

_TABLES = ("grid_boundaries", "grids", "areas", "posts", "post_grids", "users")

_FINGERPRINT = (
    "SELECT concat_ws('|', current_date::text, "
    + ", ".join(
        f"(SELECT count(*) || ':' || coalesce(sum(xmin::text::bigint), 0) FROM {t})"
        for t in _TABLES
    )
    + ") AS fingerprint"
)
FINGERPRINT = RawSql(_FINGERPRINT)
"""One row: what the answers are made of, as a string that moves with any insert, update or
delete in those tables (a new row version has a new `xmin`) and with the date."""

ROWS = RawSql(
    f"WITH fp AS ({_FINGERPRINT}), rows AS ({LOOKUP_INDEX_ROWS} ORDER BY g.code LIMIT :limit) "
    "SELECT fp.fingerprint, rows.* FROM fp LEFT JOIN rows ON true"
)
"""The fingerprint and every live boundary's answer row, in one statement (one snapshot): one
row with NULLs but the fingerprint when there is no grid."""


@dataclass(frozen=True)
class Index:
    fingerprint: str
    tree: STRtree
    codes: np.ndarray
    rows: list[RecordView]

    def lookup(self, lon: float, lat: float) -> RecordView | None:
        """The row of the grid containing (lon, lat) (WGS84), lowest code on a shared edge;
        None when the point is in no grid (the caller asks the database for the nearest)."""
        hits = self.tree.query(shapely.points(lon, lat), predicate="intersects")
        if len(hits) == 0:
            return None
        if len(hits) == 1:
            return self.rows[int(hits[0])]
        return self.rows[int(hits[np.argmin(self.codes[hits])])]

    def __len__(self) -> int:
        return len(self.rows)


current: Index | None = None
"""This process's index (None until the first build, or when disabled or too large)."""


def answer(lon: float, lat: float) -> RecordView | None:
    """The index's row for (lon, lat), or None when the SQL must answer (no index, no grid)."""
    index = current
    return None if index is None else index.lookup(lon, lat)


async def fingerprint(conn: AsyncConnection) -> str:
    async with raw_of(conn) as raw:
        value = await raw.fetchval(FINGERPRINT.sql)
    return str(value)


def _index(fp: str, records: list[Any]) -> Index:
    geoms = shapely.from_wkb([r["wkb"] for r in records])
    return Index(
        fingerprint=fp,
        tree=STRtree(geoms),
        codes=np.array([r["code"] for r in records], dtype=object),
        rows=[RecordView(r) for r in records],
    )


async def build(conn: AsyncConnection, max_grids: int) -> Index | None:
    """Read every live boundary with its answer row (one statement, in one snapshot with the
    fingerprint) and index them; None beyond `max_grids` (the SQL answers then)."""
    async with raw_of(conn) as raw:
        records = await raw.fetch(ROWS.sql, *ROWS.args({"limit": max_grids + 1}))
    if len(records) > max_grids:
        log.warning("lookup index off: more than %s live grids", max_grids)
        return None
    fp = str(records[0]["fingerprint"])
    live = [r for r in records if r["id"] is not None]
    # Parsing the boundaries and building the tree: off the event loop.
    return await asyncio.to_thread(_index, fp, live)


_built_from: str | None = None
"""The fingerprint of the last build (also when it gave no index: too many grids)."""


async def refresh(conn: AsyncConnection, max_grids: int) -> bool:
    """Rebuild when the fingerprint moved since the last build; True when rebuilt."""
    global current, _built_from
    if _built_from is not None and await fingerprint(conn) == _built_from:
        return False
    index = await build(conn, max_grids)
    current = index
    _built_from = index.fingerprint if index is not None else await fingerprint(conn)
    return True


def clear() -> None:
    global current, _built_from
    current = None
    _built_from = None


async def run_forever(
    stop: asyncio.Event,
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    seconds: float,
    max_grids: int,
) -> None:
    """The process's refresher: build at start, then check the fingerprint every `seconds`."""

    async def job() -> bool:
        started = time.monotonic()
        async with connect() as conn:
            rebuilt = await refresh(conn, max_grids)
        if rebuilt:
            # A registry edited all the time (a base-data import recounting grids) must not keep
            # a large index rebuilding: after a rebuild the next check waits four builds more.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=4 * (time.monotonic() - started))
        return False

    try:
        await every(stop, seconds, job, "lookup index refresh")
    finally:
        clear()
