"""The background loops each server process runs (the clock, webhook and push deliveries, the
evaluation facts' catch-up): one way to repeat a job until the process stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger("wangge.background")


async def every(
    stop: asyncio.Event,
    seconds: float,
    job: Callable[[], Awaitable[bool]],
    what: str,
    wake: asyncio.Event | None = None,
) -> None:
    """Run `job` until `stop` is set: again at once while it says more work is waiting (True),
    else after `seconds` (or as soon as `stop`, or `wake` if given, is set). A run that fails is
    logged and the next one comes after `seconds`: a job never stops the loop."""
    while not stop.is_set():
        if wake is not None:
            wake.clear()
        try:
            if await job():
                continue
        except Exception:
            log.exception("%s failed", what)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            continue
        if wake is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=seconds)
            continue
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(waits, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
