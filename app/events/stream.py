"""The live event stream for consoles: Server-Sent Events at `GET /api/v1/events/stream`.

- Each process keeps ONE database connection that LISTENs on the outbox's channel (the `Hub`).
  A NOTIFY carries an event id; the hub fetches the notified rows in one query and hands each
  event to the streams whose scope covers it. Every worker of every server does the same, so an
  event committed anywhere reaches every console.
- A stream's scope is the policy's scope for reading cases (`cases:read`, as `visibility()` turns
  it into SQL): everything for an administrator; the events of cases dispatched to one's
  departments; of cases in one's areas and everything below them; of cases in one's grids; and
  of the cases one reported.
- Resume: the SSE `id` is the event id. A reconnect with `Last-Event-ID` (or `?last_event_id=`)
  first gets the events it missed from the `events` table, then live ones; an id is never sent
  twice on one connection. Replays are bounded (`REPLAY_LIMIT` events, `REPLAY_HOURS`): past
  that, the stream says `event: resync` and the console reloads its lists.
- Browsers' EventSource cannot send an Authorization header, so a console first asks
  `POST /api/v1/events/ticket` (with its bearer token) for a one-use ticket valid 60 s, also set
  as an HttpOnly cookie on /api/v1/events: the stream URL then carries nothing (or `?ticket=`
  for a client that cannot use the cookie). Non-browser clients may send their bearer token.

Events of the stream (`event:` field):
- `ready`: the subscription is live (data: `last_event_id`, `replayed`, `resumed`);
- one per outbox event, named by its type (`case.dispatch`, `case.overdue`, …), with
  `id: <event id>` and data `{"id", "at" (Asia/Shanghai), "type", "case_id", "payload"}`;
- `resync`: events may have been missed (the gap was too long, or the console too slow): reload;
- `end`: the server closes the stream (`reason`: `session_ended`, `max_age`, `shutdown`). Get a
  new ticket and reconnect with `last_event_id`.
A comment line (`: ping`) is sent every 15 s so proxies keep the connection open.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any

import asyncpg
import jwt
import orjson
from fastapi import APIRouter, Cookie, Depends, Header, Query, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.auth.policy import (
    ALGORITHM,
    Principal,
    SignedIn,
    StreamTicket,
    decode_access_token,
    load_principal,
)
from app.config import get_settings, libpq_url
from app.db import db, get_session
from app.errors import ApiError
from app.events.outbox import CHANNEL
from app.http import ApiRoute
from app.schemas import ResponseModel, to_local

log = logging.getLogger("wangge.events.stream")

TICKET_SECONDS = 60
TICKET_TYPE = "sse"
COOKIE = "wangge_sse"
PREFIX = "/api/v1/events"

QUEUE_SIZE = 1_000
"""Events waiting for one console; a slower console gets `resync` instead of more memory."""
REPLAY_LIMIT = 1_000
REPLAY_HOURS = 24
REPLAY_WINDOW_IDS = 200_000
"""A resume scans at most this many of the newest event ids (bounds the cost of an old id)."""
PING_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30.0
"""A console that takes no bytes for this long (a stalled connection) is dropped."""
RETRY_MS = 3_000
REVALIDATE_SECONDS = 60.0
"""How often a stream checks that its session still stands (logout, disabled user, new posts)."""
MAX_STREAM_SECONDS = float(get_settings().stream_max_seconds)
"""A stream ends after this long (`end`, reason max_age); the console reconnects and resumes."""
READY_WAIT_SECONDS = 5.0

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


@dataclass(frozen=True)
class Scope:
    """Which events a console receives: the policy's scope for reading cases."""

    everything: bool = False
    user_id: int | None = None
    areas: frozenset[int] = frozenset()
    """Every area at or below the caller's area posts."""
    grids: frozenset[int] = frozenset()
    departments: frozenset[int] = frozenset()

    def covers(self, ev: HubEvent) -> bool:
        return (
            self.everything
            or (ev.reporter_id is not None and ev.reporter_id == self.user_id)
            or (ev.grid_id is not None and ev.grid_id in self.grids)
            or not self.areas.isdisjoint(ev.area_ids)
            or not self.departments.isdisjoint(ev.department_ids)
        )

    def sql(self) -> tuple[str, dict[str, Any]]:
        """The same test as SQL on `e` (events) and `c` (its case), for replays."""
        if self.everything:
            return "true", {}
        return (
            "(c.reporter_id = :s_user OR e.grid_id = ANY(:s_grids) "
            "OR e.area_ids && CAST(:s_areas AS bigint[]) "
            "OR e.department_ids && CAST(:s_depts AS bigint[]))",
            {
                "s_user": self.user_id or 0,
                "s_grids": sorted(self.grids),
                "s_areas": sorted(self.areas),
                "s_depts": sorted(self.departments),
            },
        )


async def scope_of(conn: AsyncConnection, who: Principal) -> Scope:
    """The caller's scope, resolved once (areas expanded down the tree) by the cases' own rule."""
    from app.cases.service import visibility

    cond, params = await visibility(conn, who)
    if cond == "true":
        return Scope(everything=True, user_id=who.user_id)
    return Scope(
        user_id=params["vis_user"],
        areas=frozenset(params["vis_areas"] or ()),
        grids=frozenset(params["vis_grids"] or ()),
        departments=frozenset(params["vis_depts"] or ()),
    )


# --- reading events --------------------------------------------------------------------------

_COLUMNS = """
    e.id, e.at, e.type, e.case_id, e.grid_id, e.area_ids, e.department_ids,
    e.payload::text AS payload, c.reporter_id
"""
_BY_IDS = f"""
    SELECT {_COLUMNS} FROM events e LEFT JOIN cases c ON c.id = e.case_id
    WHERE e.id = ANY($1::bigint[]) ORDER BY e.id
"""
_AFTER = f"""
    SELECT {_COLUMNS} FROM events e LEFT JOIN cases c ON c.id = e.case_id
    WHERE e.id > $1 ORDER BY e.id LIMIT $2
"""


def to_event(r: Any) -> HubEvent:
    """An events row (an asyncpg Record or a SQLAlchemy Row), its SSE data encoded once."""
    m = r._mapping if hasattr(r, "_mapping") else r
    at: datetime = m["at"]
    data = orjson.dumps(
        {
            "id": m["id"],
            "at": to_local(at),
            "type": m["type"],
            "case_id": m["case_id"],
            "payload": orjson.Fragment(m["payload"] or "{}"),
        }
    ).decode()
    return HubEvent(
        id=int(m["id"]),
        type=m["type"],
        case_id=m["case_id"],
        grid_id=m["grid_id"],
        area_ids=frozenset(m["area_ids"] or ()),
        department_ids=frozenset(m["department_ids"] or ()),
        reporter_id=m["reporter_id"],
        data=data,
    )


async def replay(conn: AsyncConnection, scope: Scope, after: int) -> tuple[list[HubEvent], bool]:
    """The caller's events with id > `after`, oldest first, and whether some were left out
    (more than `REPLAY_LIMIT`, older than `REPLAY_HOURS`, or beyond the scanned window)."""
    cond, params = scope.sql()
    top = (
        await conn.execute(
            text(
                "SELECT coalesce(max(id), 0) AS top, "
                "(SELECT at < now() - make_interval(hours => :hours) FROM events WHERE id = :after)"
                " AS stale FROM events"
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
                f"SELECT {_COLUMNS} FROM events e LEFT JOIN cases c ON c.id = e.case_id "
                "WHERE e.id > :floor AND e.id <= :top "
                "AND e.at > now() - make_interval(hours => :hours) "
                f"AND {cond} ORDER BY e.id DESC LIMIT :limit"
            ),
            {
                "floor": floor,
                "top": top.top,
                "hours": REPLAY_HOURS,
                "limit": REPLAY_LIMIT + 1,
                **params,
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

    def subscribe(self, scope: Scope) -> Subscriber:
        sub = Subscriber(scope)
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
            rows = await conn.fetch(_AFTER, after, 1_000)
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
                rows = await conn.fetch(_BY_IDS, sorted(ids), timeout=10)
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


# --- tickets ---------------------------------------------------------------------------------


def create_ticket(user_id: int, session_id: uuid.UUID) -> tuple[str, int]:
    now = int(time.time())
    claims = {
        "sub": str(user_id),
        "sid": str(session_id),
        "iat": now,
        "exp": now + TICKET_SECONDS,
        "jti": uuid.uuid4().hex,
        "typ": TICKET_TYPE,
    }
    return jwt.encode(claims, get_settings().signing_key, algorithm=ALGORITHM), TICKET_SECONDS


def _bad_ticket() -> ApiError:
    return ApiError(
        "invalid_token",
        detail="事件流票据无效、已过期或已使用",
        detail_en="The stream ticket is invalid, expired or already used",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def decode_ticket(ticket: str) -> tuple[int, uuid.UUID, str]:
    try:
        claims = jwt.decode(
            ticket,
            get_settings().signing_key,
            algorithms=[ALGORITHM],
            options={"require": ["exp", "sub", "sid", "jti"]},
        )
        if claims.get("typ") != TICKET_TYPE:
            raise ValueError("not a stream ticket")
        return int(claims["sub"]), uuid.UUID(claims["sid"]), str(claims["jti"])
    except (jwt.PyJWTError, ValueError, KeyError):
        raise _bad_ticket() from None


_USE_TICKET = text(
    """
    INSERT INTO idempotency_keys (user_id, key, method_path, request_hash, state, lease_until,
                                  status_code)
    VALUES (:uid, :key, 'GET /api/v1/events/stream', :jti, 'done', now(), 200)
    ON CONFLICT (user_id, key) DO NOTHING
    RETURNING true
    """
)
"""A ticket is used once, whichever worker sees it: its id is claimed like an Idempotency-Key
(kept, then purged, with them)."""


async def authenticate(
    session: AsyncSession, ticket: str | None, bearer: str | None, cookie: str | None
) -> Principal:
    """A stream's caller: `?ticket=`, else a bearer token, else the ticket cookie."""
    if ticket or (not bearer and cookie):
        uid, sid, jti = decode_ticket(ticket or cookie or "")
        who = await load_principal(session, uid, sid)
        used = (
            await session.execute(_USE_TICKET, {"uid": uid, "key": f"sse-ticket:{jti}", "jti": jti})
        ).first()
        await session.commit()
        if used is None:
            raise _bad_ticket()
        return who
    if bearer:
        uid, sid = decode_access_token(bearer)
        return await load_principal(session, uid, sid)
    raise ApiError("unauthenticated", headers={"WWW-Authenticate": "Bearer"})


def bearer_of(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


# --- the stream ------------------------------------------------------------------------------


def _sse(ev: HubEvent) -> ServerSentEvent:
    return ServerSentEvent(data=ev.data, event=ev.type, id=str(ev.id))


def _control(name: str, data: dict[str, Any], **kw: Any) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(data).decode(), event=name, **kw)


async def _still_valid(who: Principal) -> Principal | None:
    """The caller reloaded (None when the session ended); the old one if the database is down."""
    try:
        async with db.session() as s:
            return await load_principal(s, who.user_id, who.session_id)
    except ApiError:
        return None
    except (DBAPIError, OSError, TimeoutError) as e:
        log.warning("event stream: cannot check session %s: %s", who.session_id, e)
        return who


async def events_for(
    who: Principal, scope: Scope, after: int, resumed: bool
) -> AsyncIterator[ServerSentEvent]:
    """One console's stream: the missed events since `after`, `ready`, then live events."""
    sub = hub.subscribe(scope)
    sent = _Recent(4 * QUEUE_SIZE)
    cursor = after
    try:
        # Subscribed first, replayed second: an event committed meanwhile is in one or both,
        # and `sent` drops the second copy.
        async with db.reader.connect() as conn:
            batch, truncated = await replay(conn, scope, after)
        if truncated and resumed:
            yield _control("resync", {"reason": "gap", "last_event_id": after})
        for ev in batch:
            sent.add(ev.id)
            cursor = max(cursor, ev.id)
            yield _sse(ev)
        if after:
            sent.add(after)
        yield _control(
            "ready",
            {"last_event_id": cursor, "replayed": len(batch), "resumed": resumed},
            id=None if (batch or resumed) else str(cursor),
            retry=RETRY_MS,
        )
        started = time.monotonic()
        next_check = started + REVALIDATE_SECONDS
        while True:
            now = time.monotonic()
            if now - started >= MAX_STREAM_SECONDS:
                yield _control("end", {"reason": "max_age", "last_event_id": cursor})
                return
            if now >= next_check:
                fresh = await _still_valid(who)
                if fresh is None:
                    yield _control("end", {"reason": "session_ended", "last_event_id": cursor})
                    return
                if fresh.posts != who.posts:
                    who = fresh
                    async with db.reader.connect() as conn:
                        sub.scope = await scope_of(conn, who)
                next_check = time.monotonic() + REVALIDATE_SECONDS
            wait = min(started + MAX_STREAM_SECONDS, next_check) - time.monotonic()
            try:
                item = await asyncio.wait_for(sub.queue.get(), max(wait, 0))
            except TimeoutError:
                continue
            if item is SHUTDOWN:
                yield _control("end", {"reason": "shutdown", "last_event_id": cursor})
                return
            if item is RESYNC:
                async with db.reader.connect() as conn:
                    batch, truncated = await replay(conn, sub.scope, cursor)
                if truncated:
                    yield _control("resync", {"reason": "overflow", "last_event_id": cursor})
                batch = [ev for ev in batch if ev.id not in sent]
            elif isinstance(item, HubEvent):
                batch = [item] if item.id not in sent else []
            else:
                continue
            for ev in batch:
                sent.add(ev.id)
                cursor = max(cursor, ev.id)
                yield _sse(ev)
    finally:
        hub.unsubscribe(sub)


# --- routes ----------------------------------------------------------------------------------

router = APIRouter(prefix=PREFIX, tags=["events"], route_class=ApiRoute)


class TicketOut(ResponseModel):
    ticket: str
    expires_in: int


@router.post(
    "/ticket",
    response_model=TicketOut,
    summary="A one-use ticket (60 s) to open the event stream from a browser",
    description=(
        "Also set as the HttpOnly cookie `wangge_sse` on /api/v1/events, so a browser on the "
        "same origin opens `new EventSource('/api/v1/events/stream')` with nothing in the URL. "
        "Otherwise pass it as `?ticket=`. A ticket opens one stream, once."
    ),
)
async def ticket(request: Request, response: Response, who: SignedIn) -> dict[str, Any]:
    token, ttl = create_ticket(who.user_id, who.session_id)
    response.set_cookie(
        COOKIE,
        token,
        max_age=ttl,
        path=PREFIX,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https" or get_settings().env == "production",
    )
    response.headers["Cache-Control"] = "no-store"
    return {"ticket": token, "expires_in": ttl}


# Ends before the response streams: the stream holds no pooled connection while it waits.
AuthSession = Annotated[AsyncSession, Depends(get_session, scope="function")]


@router.get(
    "/stream",
    summary="Live events in your scope (Server-Sent Events), resumable with Last-Event-ID",
    description=(
        "Authenticate with a ticket from POST /api/v1/events/ticket (its cookie, or "
        "`?ticket=`), or a bearer token. Each event is `id: <event id>`, `event: <type>`, "
        "`data: {id, at, type, case_id, payload}`; control events are `ready`, `resync` "
        "(reload your lists) and `end`. Reconnect with `Last-Event-ID` or `?last_event_id=` "
        "to get what was missed."
    ),
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "A stream of events; each item is one Server-Sent Event",
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "string"},
                            "event": {"type": "string"},
                            "data": {"type": "string", "contentMediaType": "application/json"},
                            "retry": {"type": "integer"},
                        },
                    }
                }
            },
        },
        401: {"description": "No ticket, cookie or token; or it is invalid, expired or used"},
    },
)
async def stream(
    request: Request,
    session: AuthSession,
    _: StreamTicket,
    ticket: Annotated[str | None, Query(max_length=2048, description="A stream ticket")] = None,
    last_event_id: Annotated[
        int | None,
        Query(ge=0, le=2**63 - 1, description="Resume after this event id (as Last-Event-ID)"),
    ] = None,
    last_event_id_header: Annotated[
        int | None,
        Header(
            alias="Last-Event-ID",
            ge=0,
            le=2**63 - 1,
            description="Sent by EventSource when it reconnects",
        ),
    ] = None,
    ticket_cookie: Annotated[
        str | None,
        Cookie(alias=COOKIE, max_length=2048, description="Set by POST /api/v1/events/ticket"),
    ] = None,
) -> EventSourceResponse:
    # The route is declared public so that a ticket can stand in for the bearer token; the
    # caller is authenticated here all the same (permission: signed in, via ticket or token).
    who = await authenticate(session, ticket, bearer_of(request), ticket_cookie)
    request.state.principal = who
    resume = max(x for x in (last_event_id, last_event_id_header, -1) if x is not None)
    scope = await scope_of(await session.connection(), who)
    if resume < 0:
        resume = int(
            (await session.execute(text("SELECT coalesce(max(id), 0) FROM events"))).scalar_one()
        )
    if not await hub.wait_ready(READY_WAIT_SECONDS):
        raise ApiError("database_unavailable", headers={"Retry-After": "5"})
    resumed = last_event_id is not None or last_event_id_header is not None
    return EventSourceResponse(
        events_for(who, scope, resume, resumed),
        ping=PING_SECONDS,
        send_timeout=SEND_TIMEOUT_SECONDS,
        headers={"Cache-Control": "no-store"},
    )
