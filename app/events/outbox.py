"""Writing events: queued in the caller's transaction, published by a relay once it commits.

A writer only queues an intent (`event_intents`, no lock), committed with its own changes: the
outbox. At COMMIT a deferred trigger completes a case's intent with who sees it then (the case's
places and departments). The relay (`publish`, the database's `events_publish`, migration 0038)
then takes the order lock, gives each committed intent its event id, writes the `events` row
with a webhook delivery for each subscribing department, sends the NOTIFY and deletes the
intent, and commits. Only relays take the lock, and each holds it through its own commit, so event
ids follow the order in which events become visible: "everything after id N" (Last-Event-ID
resume, the listener catching up, push and webhook cursors) can never skip one. Writers no
longer commit one after another.

Every process runs the relay (`run_forever`): at once after one of its own transactions queued
an event (`queued` and `kick`), and every `events_publish_seconds` for intents another process
committed and did not publish (it stopped in between, say).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import orjson
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Session

from app.background import every
from app.config import get_settings

CHANNEL = "wangge_events"
ORDER_LOCK = 7_246_002
"""The advisory lock the relay takes (its number is written in migrations 0012 and 0038)."""
PUBLISH_BATCH = 500
"""Intents one relay transaction publishes at most."""

_PUBLISH = text("SELECT events_publish(:n)")
_wake: asyncio.Event | None = None


async def publish(db: AsyncConnection | AsyncSession, batch: int = PUBLISH_BATCH) -> int:
    """Publish up to `batch` committed intents (oldest first) in the caller's transaction;
    returns how many. An autocommit connection publishes them at once."""
    return int((await db.execute(_PUBLISH, {"n": batch})).scalar_one())


def kick() -> None:
    """Wake this process's relay: something was committed with an event."""
    if _wake is not None:
        _wake.set()


def queued(session: AsyncSession) -> None:
    """Note that `session` queued an event: the relay is woken when it commits."""
    session.sync_session.info["outbox"] = True


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.info.pop("outbox", False):
        kick()


async def run_forever(
    stop: asyncio.Event, connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]]
) -> None:
    """The process's relay: publish whenever woken and every `events_publish_seconds`, in
    batches of PUBLISH_BATCH on an autocommit connection, until no intent is left."""
    global _wake
    _wake = wake = asyncio.Event()

    async def job() -> bool:
        async with connect() as conn:
            done = await publish(conn)
            await conn.commit()  # nothing to do on an autocommit connection
        return done == PUBLISH_BATCH

    try:
        await every(stop, get_settings().events_publish_seconds, job, "event relay", wake)
    finally:
        _wake = None


_EMIT = text(
    "INSERT INTO event_intents (type, case_id, district_id, payload) "
    "VALUES (:type, :case_id, :district, CAST(:payload AS jsonb))"
)
_DISTRICT = text("SELECT district_id FROM cases WHERE id = :id")


async def emit(
    session: AsyncSession,
    type_: str,
    case_id: int,
    payload: dict[str, Any],
    *,
    district_id: int | None = None,
) -> None:
    """Record an event about a case: published (with its id) once the transaction commits. A
    writer that knows the case's district passes it (on Citus the intent is a table of the
    coordinator, written without reading the case's shard); else it is looked up."""
    if district_id is None:
        district_id = (await session.execute(_DISTRICT, {"id": case_id})).scalar()
        if district_id is None:  # no such case: no event (as before)
            return
    await session.execute(
        _EMIT,
        {
            "type": type_,
            "case_id": case_id,
            "district": district_id,
            "payload": orjson.dumps(payload, default=str).decode(),
        },
    )
    queued(session)


# --- derived data: the cases whose evaluation facts must be recomputed --------------------------

CHANGED_SQL = (
    "INSERT INTO case_changes (district_id, case_id) "
    "SELECT c.district_id, c.id FROM cases c WHERE c.id = ANY(CAST(:ids AS bigint[])) "
)
"""Mark cases as changed (migration 0025); `stats_catch_up` recomputes their facts later, off
the request's path. The writers that run one statement of their own (the intake, the loop's
timeline step) add the same row in a CTE of that statement instead."""

_CHANGED = text(CHANGED_SQL)


async def changed(session: AsyncSession, case_ids: list[int]) -> None:
    """Record, in the caller's transaction, that these cases' facts are out of date: every write
    to `cases` or `case_assignments` outside the loop's actions and the intake calls this."""
    if case_ids:
        await session.execute(_CHANGED, {"ids": list(case_ids)})


_CATCH_UP = text("SELECT stats_catch_up(CAST(:districts AS bigint[]))")


async def catch_up(db: AsyncConnection | AsyncSession, districts: list[int] | None = None) -> int:
    """Recompute the evaluation facts of the changed cases (of these districts; None: all), in
    one statement: catch-ups are serialised in the database, and one that starts after a change
    committed includes it, so what the facts say after it is exact. Every reader of the facts
    calls it first; `app.stats.derive` runs it in the background too. Returns the cases done."""
    return int((await db.execute(_CATCH_UP, {"districts": districts})).scalar_one())
