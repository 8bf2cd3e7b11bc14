"""The lookup's in-process index: the live boundaries in a `geo.locate.PolygonIndex`, with each
grid's answer row beside it, so that "which grid is this point in?" for now (no `at=`) is
answered without a database round trip (issue 23; docs/benchmarks.md, "Grid lookup").

The index is the same data as the SQL lookup (`service.LOOKUP_NOW`: the same columns, from one
statement over every live boundary) and the same rule: a point on an edge shared by several
grids resolves to the lowest code; a point in no grid names the nearest grid and its geodesic
distance as the statement measures it (`geo.locate.PolygonIndex.nearest`). What the SQL answers
that the index does not: a time in the past (`at=`), a point more than about 50 km from every
grid, and anything while the index is missing or being rebuilt — the endpoint then runs its
statement as before.

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
import functools
import logging
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any

import shapely
from sqlalchemy.ext.asyncio import AsyncConnection

from app.background import every
from app.db import RawSql, RecordView, raw_of
from app.grids.service import LOOKUP_INDEX_ROWS, lookup_place
from app.i18n import Lang
from geo.locate import PolygonIndex

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


PLACES_CACHED = 8192
"""How many encoded answers (a grid in a language, about 1.3 KB each) an index keeps, least
recently used first out: every grid of a district in both languages, the busiest of a city."""


@dataclass(frozen=True)
class Index:
    fingerprint: str
    polygons: PolygonIndex
    rows: list[RecordView]
    place: Callable[[int, Lang], bytes] = field(init=False, repr=False, compare=False)
    """The grid's members of the lookup answer (`service.lookup_place`), encoded once."""

    def __post_init__(self) -> None:
        rows = self.rows

        def place(i: int, lang: Lang) -> bytes:
            return lookup_place(rows[i], lang)

        object.__setattr__(self, "place", functools.lru_cache(maxsize=PLACES_CACHED)(place))

    def hit(self, lon: float, lat: float) -> int | None:
        """The position of the grid containing (lon, lat) (WGS84), lowest code on a shared
        edge; None when the point is in no grid (the caller asks the database for the nearest)."""
        return self.polygons.find(lon, lat)

    def lookup(self, lon: float, lat: float) -> RecordView | None:
        """The row of the grid containing (lon, lat), as `hit` finds it."""
        i = self.hit(lon, lat)
        return None if i is None else self.rows[i]

    def __len__(self) -> int:
        return len(self.rows)


current: Index | None = None
"""This process's index (None until the first build, or when disabled or too large)."""


def answer(lon: float, lat: float) -> RecordView | None:
    """The index's row for (lon, lat), or None when the SQL must answer (no index, no grid)."""
    index = current
    return None if index is None else index.lookup(lon, lat)


def locate(
    lon: float, lat: float, lang: Lang
) -> tuple[RecordView, bytes | None, float | None] | None:
    """The endpoint's answer from the index: inside a grid, its row and its encoded members of
    the answer in `lang` (distance None); in no grid, the nearest grid's row and its distance in
    metres (no members), chosen as the statement's `near` step chooses (the least distance
    among the eight planar nearest, then the lowest id). None when the SQL must answer (no
    index, or nothing within `geo.locate.NEAREST_MAX_DEGREES`)."""
    index = current
    if index is None:
        return None
    i = index.hit(lon, lat)
    if i is not None:
        return index.rows[i], index.place(i, lang), None
    near = index.polygons.nearest(lon, lat)
    if not near:
        return None
    j, metres = min(near, key=lambda c: (c[1], index.rows[c[0]].id))
    return index.rows[j], None, metres


async def fingerprint(conn: AsyncConnection) -> str:
    async with raw_of(conn) as raw:
        value = await raw.fetchval(FINGERPRINT.sql)
    return str(value)


def _index(fp: str, records: list[Any]) -> Index:
    geoms = shapely.from_wkb([r["wkb"] for r in records])
    # The rows come in code order (the statement's ORDER BY, in the database's collation, as
    # the SQL lookup's): the lowest position is the lowest code.
    return Index(
        fingerprint=fp,
        polygons=PolygonIndex(geoms, range(len(geoms))),
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
