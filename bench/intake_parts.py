"""Where an intake's database CPU goes, quiet: one connection, one thing at a time, its backend's
CPU from /proc (plain PostgreSQL on this machine; on Citus the work is on the workers' backends,
which `bench_intake.py` counts as a whole instead).

Measured in turn, each over the same bodies:

* the floor statement (one INSERT … SELECT with the grid lookup), as `bench_floor` runs it;
* the intake statement rolled back: its own work without the commit (no WAL flush);
* the intake as `app.cases.intake.report` does it with an Idempotency-Key: the statement (the
  key's claim, the case, its first step with the timeline's hash, its event intent, the
  duplicate search, the case read back; committed), then the stored answer (committed);
* the relay (`events_publish`) per event those intakes queued;
* the evaluation facts' catch-up (`stats_catch_up`) per case they marked.

The sum of the last three is the database's share of one intake without contention: what the
≤ 1.0 ms target is measured against."""

from __future__ import annotations

import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import orjson

from app.cases import intake
from app.cases.schemas import CaseCreate
from app.idempotency import Claim

TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(f[11]) + int(f[12])) / TICK


def _render(row: Any, dups: list[dict[str, Any]]) -> bytes:
    """An answer of about the size the app stores (the row's columns and the suggestions)."""
    return orjson.dumps({**dict(row._r), "duplicates": dups}, default=str)


async def intake_parts(
    url: str, floor_sql: str, params: list[dict[str, Any]], reporter_id: int, n: int
) -> dict[str, Any]:
    conn = await asyncpg.connect(url, server_settings={"application_name": "wangge-parts"})
    try:
        # As the app's hot pool plans (app.db.HOT_SETTINGS): one generic plan per statement.
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        pid = int(await conn.fetchval("SELECT pg_backend_pid()"))
        bodies = [CaseCreate.model_validate(params[(i * 7) % len(params)]) for i in range(n)]

        async def timed(one: Callable[[int], Awaitable[Any]]) -> float:
            for i in range(min(20, n)):  # plans and caches, outside the clock
                await one(i)
            c0 = _cpu_s(pid)
            for i in range(n):
                await one(i)
            return 1000 * (_cpu_s(pid) - c0) / n

        async def floor(i: int) -> None:
            b = params[(i * 7) % len(params)]
            await conn.execute(
                floor_sql, f"P{uuid.uuid4().hex[:23]}", b["category"], b["title"],
                b["location"]["lon"], b["location"]["lat"],
            )  # fmt: skip

        async def rolled_back(i: int) -> None:
            stmt, args = intake._params(bodies[i], reporter_id, "app", None)
            tr = conn.transaction()
            await tr.start()
            try:
                await conn.fetchrow(stmt.sql, *args)
            finally:
                await tr.rollback()

        async def report(i: int) -> None:
            body = orjson.dumps(params[(i * 7) % len(params)])
            claim = Claim.of(reporter_id, str(uuid.uuid4()), "POST /api/v1/cases", body)
            await intake.report(conn, bodies[i], reporter_id, _render, claim)

        out: dict[str, Any] = {"calls": n}
        out["floor_ms"] = await timed(floor)
        out["statement_rolled_back_ms"] = await timed(rolled_back)
        out["intake_ms"] = await timed(report)

        async def drain(sql: str) -> tuple[float, int]:
            c0, done = _cpu_s(pid), 0
            while k := int(await conn.fetchval(sql)):
                done += k
            return 1000 * (_cpu_s(pid) - c0), done

        ms, events = await drain("SELECT events_publish(500)")
        out["relay_ms_per_event"] = ms / events if events else None
        ms, cases = await drain("SELECT stats_catch_up(NULL)")
        out["facts_ms_per_case"] = ms / cases if cases else None
        out["per_intake_ms"] = (
            out["intake_ms"] + (out["relay_ms_per_event"] or 0) + (out["facts_ms_per_case"] or 0)
        )
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in out.items()}
    finally:
        await conn.close()


def print_parts(p: dict[str, Any] | None, target_ms: float) -> None:
    if p is None:
        print("database CPU by part: not on Citus (the work runs on the workers' backends)")
        return
    print(
        f"database CPU by part, quiet (one connection, {p['calls']} calls each, ms): floor "
        f"{p['floor_ms']}; intake statement rolled back {p['statement_rolled_back_ms']}; intake "
        f"with its key, committed, and its stored answer {p['intake_ms']}; relay "
        f"{p['relay_ms_per_event']} per event; facts catch-up {p['facts_ms_per_case']} per case: "
        f"{p['per_intake_ms']} per intake against the target {target_ms:g}, with no contention"
    )
