"""How long an event takes to reach the live stream after its writer answered (migration 0038:
the relay publishes committed intents; the app's listeners get a NOTIFY per event).

`Lag` LISTENs on the outbox's channel like a process's stream hub and notes when each event id
arrives; the benchmark notes when each case's 201 arrived (`answered`). `summary` pairs them
through `events.case_id` and gives the delay from the 201 to the NOTIFY (negative: the event was
out before the phone had its answer, which comes after the stored idempotent response)."""

from __future__ import annotations

import time
from typing import Any

import asyncpg
import numpy as np
import orjson

from app.events.outbox import CHANNEL


class Lag:
    def __init__(self) -> None:
        self.notified: dict[int, float] = {}
        self.answered: dict[int, float] = {}
        self._conn: asyncpg.Connection | None = None

    def _on(self, _c: Any, _pid: int, _channel: str, payload: str) -> None:
        self.notified[int(payload)] = time.monotonic()

    async def start(self, url: str) -> None:
        self._conn = await asyncpg.connect(url)
        await self._conn.add_listener(CHANNEL, self._on)

    async def stop(self) -> None:
        if self._conn is not None:
            await self._conn.close()

    def answer(self, body: bytes) -> None:
        """A 201's body: its case id, when it arrived."""
        self.answered[int(orjson.loads(body)["id"])] = time.monotonic()

    async def summary(self, conn: asyncpg.Connection) -> dict[str, Any]:
        rows = await conn.fetch(
            "SELECT id, case_id FROM events WHERE type = 'case.reported' AND id = ANY($1)",
            list(self.notified),
        )
        ms = [
            1000 * (self.notified[r["id"]] - self.answered[r["case_id"]])
            for r in rows
            if r["case_id"] in self.answered
        ]
        missing = len(self.answered) - len(ms)
        if not ms:
            return {"events": 0, "missing": missing}
        q = np.percentile(ms, [50, 99])
        return {
            "events": len(ms),
            "missing": missing,
            "p50_ms": round(float(q[0]), 2),
            "p99_ms": round(float(q[1]), 2),
            "max_ms": round(max(ms), 2),
        }
