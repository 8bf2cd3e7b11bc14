"""The live stream's per-process listener (the `Hub`), its events and their replay.

Each process keeps ONE database connection that LISTENs on the outbox's channel. A NOTIFY carries
an event id; the hub fetches the notified rows in one query and hands each event to the streams
whose scope covers it (the scope module's predicate, `app.auth.scope.CaseScope.covers`, on the
places and departments the case had when the event happened). Replays (`replay`) read the same
events with the same predicate as SQL (`CaseScope.events_sql`). Every worker of every server does
the same, so an event committed anywhere reaches every console.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import scope
from app.auth.policy import Principal
from app.config import get_settings, libpq_url
from app.db import RawSql
from app.events.outbox import CHANNEL
from app.pii import mask_json
from app.schemas import to_local

log = logging.getLogger("wangge.events.stream")

QUEUE_SIZE = 1_000
"""Events waiting for one console; a slower console gets `resync` instead of more memory."""
REPLAY_LIMIT = 1_000
REPLAY_HOURS = 24
REPLAY_WINDOW_IDS = 200_000
"""A resume scans at most this many of the newest event ids (bounds the cost of an old id)."""
RECONNECT_SLACK_IDS = 1_000
"""After the listener reconnects it re-reads this many ids below the newest it saw (skipping the
ones it delivered), so an event whose transaction committed late is not lost."""
CATCH_UP_MAX = 10_000
SEEN_MAX = 50_000
HEALTH_SECONDS = 30.0
BACKOFF_FIRST = 0.2
BACKOFF_MAX = 30.0


# --- scope -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HubEvent:
    id: int
    type: str
    case_id: int | None
    grid_id: int | None
    area_ids: frozenset[int]
    department_ids: frozenset[int]
    reporter_id: int | None
    data: str
    """The SSE data (JSON), encoded once for every console."""
    masked_data: str | None = None
    """The same with the free text of its payload through the PII detector (None: the same)."""

    # The case the event is about, as the scope module's predicate reads it (`scope.CaseLike`).
    @property
    def areas(self) -> frozenset[int]:
        return self.area_ids

    @property
    def departments(self) -> frozenset[int]:
        return self.department_ids

    def data_for(self, masked: bool) -> str:
        return self.masked_data if masked and self.masked_data is not None else self.data


Scope = scope.CaseScope
"""Which events a console receives: the scope module's scope for reading cases."""


async def scope_of(conn: AsyncConnection, who: Principal) -> Scope:
    """The caller's scope, resolved once (areas expanded down the tree)."""
    return await scope.resolve(conn, who)


# --- reading events --------------------------------------------------------------------------

_COLUMNS = """
    e.id, e.at, e.type, e.case_id, e.grid_id, e.area_ids, e.department_ids,
    e.payload::text AS payload, c.reporter_id
"""
_BY_IDS = RawSql(
    f"""
    SELECT {_COLUMNS} FROM events e
    LEFT JOIN cases c ON c.id = e.case_id AND c.district_id = e.district_id
    WHERE e.id = ANY(CAST(:ids AS bigint[])) ORDER BY e.id
    """
)
_AFTER = RawSql(
    f"""
    SELECT {_COLUMNS} FROM events e
    LEFT JOIN cases c ON c.id = e.case_id AND c.district_id = e.district_id
    WHERE e.id > :after ORDER BY e.id LIMIT :limit
    """
)


def to_event(r: Any) -> HubEvent:
    """An events row (an asyncpg Record or a SQLAlchemy Row), its SSE data encoded once."""
    m = r._mapping if hasattr(r, "_mapping") else r
    at: datetime = m["at"]
    head = {"id": m["id"], "at": to_local(at), "type": m["type"], "case_id": m["case_id"]}
    payload = m["payload"] or "{}"
    data = orjson.dumps({**head, "payload": orjson.Fragment(payload)}).decode()
    masked = mask_json(orjson.loads(payload))
    masked_data = None
    if orjson.dumps(masked) != orjson.dumps(orjson.loads(payload)):
        masked_data = orjson.dumps({**head, "payload": masked}).decode()
    return HubEvent(
        id=int(m["id"]),
        type=m["type"],
        case_id=m["case_id"],
        grid_id=m["grid_id"],
        area_ids=frozenset(m["area_ids"] or ()),
        department_ids=frozenset(m["department_ids"] or ()),
        reporter_id=m["reporter_id"],
        data=data,
        masked_data=masked_data,
    )


async def replay(conn: AsyncConnection, within: Scope, after: int) -> tuple[list[HubEvent], bool]:
    """The caller's events with id > `after`, oldest first, and whether some were left out
    (more than `REPLAY_LIMIT`, older than `REPLAY_HOURS`, or beyond the scanned window)."""
    vis = within.events_sql("e", "c")
    top = (
        await conn.execute(
            text(
                # Two uncorrelated subqueries (on Citus each runs across the shards on its own).
                "SELECT (SELECT coalesce(max(id), 0) FROM events) AS top, "
                "(SELECT at < now() - make_interval(hours => :hours) FROM events WHERE id = :after)"
                " AS stale"
            ),
            {"after": after, "hours": REPLAY_HOURS},
        )
    ).one()
    if top.top <= after:
        return [], False
    floor = max(after, top.top - REPLAY_WINDOW_IDS)
    rows = (
        await conn.execute(
            text(
                f"SELECT {_COLUMNS} FROM events e "
                "LEFT JOIN cases c ON c.id = e.case_id AND c.district_id = e.district_id "
                "WHERE e.id > :floor AND e.id <= :top "
                "AND e.at > now() - make_interval(hours => :hours) "
                f"AND {vis.sql} ORDER BY e.id DESC LIMIT :limit"
            ),
            {
                "floor": floor,
                "top": top.top,
                "hours": REPLAY_HOURS,
                "limit": REPLAY_LIMIT + 1,
                **vis.binds,
            },
        )
    ).all()
    truncated = len(rows) > REPLAY_LIMIT or floor > after or bool(top.stale)
    return [to_event(r) for r in reversed(rows[:REPLAY_LIMIT])], truncated


# --- the per-process listener ----------------------------------------------------------------


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"


RESYNC = _Marker("resync")
"""Put in a console's queue in place of the events it was too slow to take."""
SHUTDOWN = _Marker("shutdown")

QueueItem = HubEvent | _Marker


@dataclass(eq=False)
class Subscriber:
    scope: Scope
    masked: bool = False
    """The console's reader sees masked personal data: it gets `HubEvent.masked_data`."""
    queue: asyncio.Queue[QueueItem] = field(
        default_factory=lambda: asyncio.Queue(maxsize=QUEUE_SIZE)
    )
    overflows: int = 0

    def offer(self, item: QueueItem) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflows += 1
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(RESYNC)


class _Recent:
    """A bounded set of the most recent ids (insertion order)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.ids: set[int] = set()
        self.order: deque[int] = deque()

    def add(self, i: int) -> None:
        if i in self.ids:
            return
        self.ids.add(i)
        self.order.append(i)
        if len(self.order) > self.size:
            self.ids.discard(self.order.popleft())

    def __contains__(self, i: object) -> bool:
        return i in self.ids


def plain_dsn(url: str) -> str:
    """asyncpg wants libpq's postgresql:// (not SQLAlchemy's postgresql+asyncpg://); a libpq
    multi-host URL (a Patroni cluster) is kept as it is: asyncpg reads its hosts."""
    return libpq_url(url)


class Hub:
    """One LISTEN connection per process, fanning events out to this process's streams."""

    def __init__(self, dsn: Callable[[], str] | None = None) -> None:
        self._dsn = dsn or (lambda: plain_dsn(get_settings().database_url))
        self._subs: set[Subscriber] = set()
        self._task: asyncio.Task[None] | None = None
        self._ready: asyncio.Event | None = None
        self._wake: asyncio.Event | None = None
        self._pending: set[int] = set()
        self._seen = _Recent(SEEN_MAX)
        self._top = 0
        self._anchored = False
        """Whether `_top` has been read from the table (on the first connection)."""
        self._stopping = False
        self.connects = 0
        """How many times the listener connected (1 + reconnections): for tests and metrics."""
        self.caught_up = 0
        """Events delivered by re-reading the table after a reconnection."""
        self.backend_pid: int | None = None

    # -- lifecycle --

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    @property
    def ready(self) -> bool:
        return self._ready is not None and self._ready.is_set()

    async def start(self) -> None:
        """Start listening (returns at once; the connection is made in the background)."""
        if self.running:
            return
        self._stopping = False
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="wangge-events-listener")

    async def stop(self) -> None:
        self._stopping = True
        for sub in list(self._subs):
            sub.offer(SHUTDOWN)
        task, self._task = self._task, None
        if task is not None:
            assert self._wake is not None
            self._wake.set()
            try:
                await asyncio.wait_for(task, 10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if self._ready is not None:
            self._ready.clear()

    async def wait_ready(self, timeout: float) -> bool:
        if not self.running:
            await self.start()
        assert self._ready is not None
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # -- subscribers --

    def subscribe(self, within: Scope, masked: bool = False) -> Subscriber:
        sub = Subscriber(within, masked)
        self._subs.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self._subs.discard(sub)

    @property
    def subscribers(self) -> int:
        return len(self._subs)

    def dispatch(self, events: Iterable[HubEvent]) -> int:
        """Hand each event (once) to every subscriber whose scope covers it."""
        n = 0
        for ev in sorted(events, key=lambda e: e.id):
            if ev.id in self._seen:
                continue
            self._seen.add(ev.id)
            self._top = max(self._top, ev.id)
            n += 1
            for sub in list(self._subs):
                if sub.scope.covers(ev):
                    sub.offer(ev)
        return n

    # -- the connection --

    def _on_notify(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._pending.add(int(payload))
        except ValueError:
            return
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        delay = BACKOFF_FIRST
        while not self._stopping:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(
                    self._dsn(),
                    timeout=10,
                    server_settings={
                        "application_name": "wangge-events",
                        "timezone": "UTC",
                        "statement_timeout": "10000",
                    },
                )
                lost = asyncio.Event()

                def on_lost(_c: Any, lost: asyncio.Event = lost) -> None:
                    lost.set()
                    if self._wake is not None:
                        self._wake.set()

                conn.add_termination_listener(on_lost)
                await conn.add_listener(CHANNEL, self._on_notify)
                self.backend_pid = conn.get_server_pid()
                self.connects += 1
                await self._catch_up(conn)
                delay = BACKOFF_FIRST
                assert self._ready is not None
                self._ready.set()
                await self._pump(conn, lost)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any failure: reconnect with backoff
                if not self._stopping:
                    log.warning("event listener: %s: %s; reconnecting in %.1fs", type(e), e, delay)
            finally:
                if self._ready is not None:
                    self._ready.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), 2)
                    if not conn.is_closed():
                        conn.terminate()
            if self._stopping:
                return
            await self._sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def _catch_up(self, conn: asyncpg.Connection) -> None:
        """First connection: start from the newest event. Later ones: deliver what was committed
        while the listener was away (and a slack below, for late commits)."""
        if not self._anchored:
            self._top = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM events"))
            self._anchored = True
            return
        after = max(self._top - RECONNECT_SLACK_IDS, 0)
        fetched = 0
        while fetched < CATCH_UP_MAX:
            rows = await conn.fetch(_AFTER.sql, *_AFTER.args({"after": after, "limit": 1_000}))
            if not rows:
                return
            self.caught_up += self.dispatch(to_event(r) for r in rows)
            fetched += len(rows)
            after = int(rows[-1]["id"])
        # Too much was missed to replay it event by event: let each console resynchronise.
        self._top = int(await conn.fetchval("SELECT coalesce(max(id), 0) FROM events"))
        for sub in list(self._subs):
            sub.offer(RESYNC)

    async def _pump(self, conn: asyncpg.Connection, lost: asyncio.Event) -> None:
        assert self._wake is not None
        while not self._stopping:
            if not self._pending:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), HEALTH_SECONDS)
                except TimeoutError:
                    await conn.fetchval("SELECT 1", timeout=10)  # a silent network drop
                    continue
            if lost.is_set() or conn.is_closed():
                raise ConnectionError("the listener's connection was closed")
            ids, self._pending = self._pending, set()
            if not ids:
                continue
            if not self._subs:  # nobody to hand them to: note them as handled, read nothing
                for i in ids:
                    self._seen.add(i)
                self._top = max(self._top, *ids)
                continue
            try:
                rows = await conn.fetch(
                    _BY_IDS.sql, *_BY_IDS.args({"ids": sorted(ids)}), timeout=10
                )
            except BaseException:
                self._pending |= ids
                raise
            self.dispatch(to_event(r) for r in rows)


hub = Hub()


@asynccontextmanager
async def listening(_app: Any = None) -> AsyncIterator[None]:
    """The listener for the span of `async with` (usable as an app's `lifespan` itself)."""
    await hub.start()
    try:
        yield
    finally:
        await hub.stop()
