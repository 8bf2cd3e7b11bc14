"""The live event stream for consoles: Server-Sent Events at `GET /api/v1/events/stream`.

- Each process keeps ONE database connection that LISTENs on the outbox's channel (the `Hub`,
  `app.events.hub`), handing each event to the streams whose scope covers it.
- A stream's scope is the scope module's scope for reading cases (`app.auth.scope`, the rule of
  `cases:read`): everything for an administrator; the events of cases dispatched to one's
  departments; of cases in one's areas and everything below them; of cases in one's grids; and
  of the cases one reported. Readers of masked personal data (departments) get the events' free
  text through the PII detector.
- Resume: the SSE `id` is the event id. A reconnect with `Last-Event-ID` (or `?last_event_id=`)
  first gets the events it missed from the `events` table, then live ones; an id is never sent
  twice on one connection. Replays are bounded (`REPLAY_LIMIT` events, `REPLAY_HOURS`): past
  that, the stream says `event: resync` and the console reloads its lists.
- Browsers' EventSource cannot send an Authorization header, so a console first asks
  `POST /api/v1/events/ticket` (with its bearer token) for a one-use ticket valid 60 s, also set
  as an HttpOnly cookie on /api/v1/events (`app.events.tickets`): the stream URL then carries
  nothing (or `?ticket=` for a client that cannot use the cookie). Non-browser clients may send
  their bearer token.

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
import logging
import re
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Cookie, Header, Query, Request, Response
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sse_starlette import EventSourceResponse, ServerSentEvent

from app.auth.policy import Principal, SignedIn, StreamTicket, load_principal
from app.cases.service import sees_pii
from app.config import get_settings
from app.db import DbSession, db
from app.errors import ApiError
from app.events.hub import (
    RESYNC,
    SHUTDOWN,
    Hub,
    HubEvent,
    Scope,
    Subscriber,
    _Recent,
    hub,
    listening,
    plain_dsn,
    replay,
    scope_of,
)
from app.events.tickets import authenticate, bearer_of, create_ticket
from app.http import ApiRoute
from app.schemas import ResponseModel

__all__ = ["RESYNC", "Hub", "HubEvent", "Scope", "Subscriber", "hub", "listening", "plain_dsn"]

log = logging.getLogger("wangge.events.stream")

COOKIE = "wangge_sse"
TICKET_COOKIE_MAX = 2048
TICKET_PATTERN = r"^[A-Za-z0-9_.-]*$"
_TICKET_CHARS = re.compile(TICKET_PATTERN[1:-1])
PREFIX = "/api/v1/events"
PING_SECONDS = 15
SEND_TIMEOUT_SECONDS = 30.0
"""A console that takes no bytes for this long (a stalled connection) is dropped."""
RETRY_MS = 3_000
REVALIDATE_SECONDS = 60.0
"""How often a stream checks that its session still stands (logout, disabled user, new posts)."""
MAX_STREAM_SECONDS = float(get_settings().stream_max_seconds)
"""A stream ends after this long (`end`, reason max_age); the console reconnects and resumes."""
READY_WAIT_SECONDS = 5.0
QUEUE_SIZE = 1_000
"""Of `sent` below: ids remembered per connection (4 × the hub's queue of one console)."""


# --- the stream ------------------------------------------------------------------------------


def _sse(ev: HubEvent, masked: bool) -> ServerSentEvent:
    return ServerSentEvent(data=ev.data_for(masked), event=ev.type, id=str(ev.id))


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
    sub = hub.subscribe(scope, masked=not sees_pii(who))
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
            yield _sse(ev, sub.masked)
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
                    sub.masked = not sees_pii(who)
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
                yield _sse(ev, sub.masked)
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


def _one_ticket_cookie(request: Request) -> None:
    """The ticket cookie as sent, not as parsed: the parser keeps the last of several cookies of
    one name, cuts a value at a `;` and unquotes and strips it, so a value that breaks the
    documented schema could arrive as a valid one. Read by the header's grammar (RFC 6265
    §4.2.1: pairs separated by `; `), the cookie sent twice, a value of other characters than a
    ticket's (base64url and dots), longer than 2,048, or running into a malformed next pair is
    refused (422), whoever the bearer token says the caller is."""
    raw = request.headers.get("cookie")
    if raw is None or COOKIE not in raw:
        return
    chunks = raw.split(";")
    values = []
    for i, chunk in enumerate(chunks):
        name, eq, value = (chunk[1:] if i and chunk.startswith(" ") else chunk).partition("=")
        if name != COOKIE:
            continue
        rest = chunks[i + 1] if i + 1 < len(chunks) else None
        if (
            not eq
            or len(value) > TICKET_COOKIE_MAX
            or not _TICKET_CHARS.fullmatch(value)
            or (rest is not None and not (rest.startswith(" ") and "=" in rest))
        ):
            raise ApiError(
                "validation_error",
                field=COOKIE,
                detail=f"Cookie {COOKIE} 不是有效的票据（至多 {TICKET_COOKIE_MAX} 个字符："
                "字母、数字、-、_、.）",
                detail_en=f"The cookie {COOKIE} is not a ticket (at most {TICKET_COOKIE_MAX} "
                "characters: letters, digits, -, _ and .)",
            )
        values.append(value)
    if len(values) > 1:
        raise ApiError(
            "validation_error",
            field=COOKIE,
            detail=f"Cookie {COOKIE} 出现了 {len(values)} 次，只能有一个",
            detail_en=f"The cookie {COOKIE} is sent {len(values)} times; send one",
        )


# Ends before the response streams: the stream holds no pooled connection while it waits.
AuthSession = DbSession


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
    ticket: Annotated[
        str | None,
        Query(max_length=TICKET_COOKIE_MAX, pattern=TICKET_PATTERN, description="A stream ticket"),
    ] = None,
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
        Cookie(
            alias=COOKIE,
            max_length=TICKET_COOKIE_MAX,
            pattern=TICKET_PATTERN,
            description="Set by POST /api/v1/events/ticket; sent once",
        ),
    ] = None,
) -> EventSourceResponse:
    # The route is declared public so that a ticket can stand in for the bearer token; the
    # caller is authenticated here all the same (permission: signed in, via ticket or token).
    _one_ticket_cookie(request)
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
