"""The evaluation facts' consumer (migration 0025): the writers only mark changed cases
(`case_changes`, in their own transaction); this recomputes their facts off the request path.

- `app.events.outbox.catch_up` runs `stats_catch_up`: one statement that takes the pending cases
  and refreshes their facts (and so the monthly rollups). Catch-ups are serialised in the
  database, and one that starts after a change committed includes it, so figures read after it
  are exact. Every reader of the facts (the stats endpoints via `FactsReader`, the case list's
  `indicator=` filter) calls it first.
- `run_forever` is the background loop each server process runs every `derive_seconds`, so the
  pending set (and a reader's wait) stays short.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends
from sqlalchemy.ext.asyncio import AsyncConnection

from app.background import every
from app.config import get_settings
from app.db import DbReader, replica_after, unit_of_work
from app.events.outbox import catch_up

log = logging.getLogger("wangge.derive")


async def run_forever(stop: asyncio.Event) -> None:

    async def job() -> bool:
        async with unit_of_work() as session:
            await catch_up(session)
        return False

    await every(stop, get_settings().derive_seconds, job, "evaluation facts catch-up")


async def fresh_reader(reader: DbReader) -> AsyncIterator[AsyncConnection]:
    """An autocommit reader after the facts have caught up (on the primary, its own
    transaction): the read replica once it has replayed that catch-up (`app.db.replica_after`),
    else the primary. Figures are exact either way."""
    await catch_up(reader)
    replica = await replica_after(reader)
    if replica is None:
        yield reader
        return
    try:
        yield replica
    finally:
        await replica.close()


FactsReader = Annotated[AsyncConnection, Depends(fresh_reader)]
"""For every endpoint that reads the evaluation facts or their rollups."""
