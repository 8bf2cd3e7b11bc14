"""Webhooks for departments' own systems: at-least-once delivery from the outbox, signed with
HMAC-SHA256, retried with backoff, visible to administrators when they keep failing.

Each request carries `Wangge-Event-Id` (de-duplicate on it), `Wangge-Event-Type`,
`Wangge-Timestamp` and `Wangge-Signature: t=<timestamp>,v1=<hex HMAC-SHA256 of
"<timestamp>.<body>" with the subscription's secret>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.background import every
from app.config import get_settings
from app.db import unit_of_work
from app.events.webhooks import targets
from app.observability import metrics
from app.pii import mask_json
from app.schemas import to_local

log = logging.getLogger("wangge.webhooks")

MAX_ATTEMPTS = 12
"""With the backoff below, about a day of retries before a delivery is given up."""


def backoff_seconds(attempts: int) -> int:
    return int(min(10 * 2 ** max(attempts - 1, 0), 3600))


def new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(
    secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None
) -> bool:
    """What a receiver does (and what our tests do): check the signature and its age."""
    try:
        parts = dict(p.split("=", 1) for p in header.split(","))
        ts = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - ts) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, ts, body), header)


_CLAIM = text(
    """
    UPDATE webhook_deliveries d
    SET next_attempt_at = CAST(:lease_until AS timestamptz)
    WHERE d.district_id = :district AND d.id IN (
        SELECT id FROM webhook_deliveries
        WHERE district_id = :district
          AND delivered_at IS NULL AND NOT gave_up AND next_attempt_at <= :now
        ORDER BY next_attempt_at, id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.district_id, d.attempts, d.event_id,
        (SELECT url FROM webhook_subscriptions s WHERE s.id = d.subscription_id) AS url,
        (SELECT secret FROM webhook_subscriptions s WHERE s.id = d.subscription_id) AS secret,
        (SELECT row_to_json(e) FROM (SELECT id, type, at, case_id, payload FROM events
                                     WHERE id = d.event_id AND district_id = :district) e)
            AS event
    """
)
"""One district's due deliveries: `SKIP LOCKED` works within one shard (Citus refuses it across
shards), so the job claims district by district."""
_DISTRICTS = text("SELECT id FROM areas WHERE level = 'district' ORDER BY id")
_DONE = text(
    "UPDATE webhook_deliveries SET delivered_at = :now, attempts = attempts + 1, "
    "last_status = :status, last_error = NULL WHERE id = :id AND district_id = :district"
)
_FAILED = text(
    """
    UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = :status,
           last_error = :error, next_attempt_at = CAST(:retry_at AS timestamptz),
           gave_up = attempts + 1 >= :max
    WHERE id = :id AND district_id = :district
    """
)


def body_of(event: dict[str, Any]) -> bytes:
    """The delivery's body. Subscriptions belong to departments, readers of masked personal
    data: the payload's free text (a return's reason, …) goes through the PII detector."""
    at = event["at"]
    if isinstance(at, str):
        at = datetime.fromisoformat(at)
    return orjson.dumps(
        {
            "id": event["id"],
            "type": event["type"],
            "at": to_local(at),
            "case_id": event["case_id"],
            "payload": mask_json(event["payload"]),
        }
    )


async def claim_due(
    session: AsyncSession, now: datetime | None = None, batch: int = 20
) -> tuple[datetime, list[Any]]:
    """Claim what is due under a lease (`webhook_lease_seconds`): a process killed while sending
    leaves the claim to expire, and another process (or this one, restarted) sends it again: at
    least once, de-duplicated by the receiver on Wangge-Event-Id. The job commits the claim in
    its own unit of work before sending (no transaction is held across the network)."""
    now = now or (await session.execute(text("SELECT now()"))).scalar_one()
    lease = get_settings().webhook_lease_seconds
    lease_until = now + timedelta(seconds=lease)
    claimed: list[Any] = []
    for district in (await session.execute(_DISTRICTS)).scalars().all():
        if len(claimed) >= batch:
            break
        claimed += await session.execute(
            _CLAIM,
            {
                "now": now,
                "lease_until": lease_until,
                "batch": batch - len(claimed),
                "district": district,
            },
        )
    return now, claimed


Outcome = tuple[Any, int | None, str | None]
"""(the claimed delivery, the HTTP status or None, the error or None when delivered)."""


async def send(client: httpx.AsyncClient, claimed: list[Any]) -> list[Outcome]:
    """POST each claimed delivery (no database work)."""
    out: list[Outcome] = []
    for d in claimed:
        event = d.event if isinstance(d.event, dict) else orjson.loads(d.event)
        body = body_of(event)
        ts = int(time.time())
        status, error = None, None
        refused = await targets.refusal(d.url)
        if refused is not None:  # the name now points into a private network: not sent
            out.append((d, None, f"refused: {refused[1]}"[:300]))
            continue
        try:
            r = await client.post(
                d.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Wangge-Event-Id": str(event["id"]),
                    "Wangge-Event-Type": event["type"],
                    "Wangge-Timestamp": str(ts),
                    "Wangge-Signature": sign(d.secret, ts, body),
                    "User-Agent": "wangge-webhooks/1",
                },
            )
            status = r.status_code
            if not 200 <= status < 300:
                error = f"HTTP {status}: {r.text[:200]}"
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}"[:300]
        out.append((d, status, error))
    return out


async def record_outcomes(
    session: AsyncSession, now: datetime, outcomes: list[Outcome]
) -> dict[str, int]:
    sent = failed = 0
    for d, status, error in outcomes:
        if error is None:
            await session.execute(
                _DONE, {"now": now, "status": status, "id": d.id, "district": d.district_id}
            )
            sent += 1
            continue
        await session.execute(
            _FAILED,
            {
                "status": status,
                "error": error,
                "retry_at": now + timedelta(seconds=backoff_seconds(d.attempts + 1)),
                "max": MAX_ATTEMPTS,
                "id": d.id,
                "district": d.district_id,
            },
        )
        failed += 1
    return {"sent": sent, "failed": failed}


async def deliver_due(
    session: AsyncSession, client: httpx.AsyncClient, now: datetime | None = None, batch: int = 20
) -> dict[str, int]:
    """Claim, send and record on one session (the caller's unit of work commits)."""
    now, claimed = await claim_due(session, now, batch)
    return await record_outcomes(session, now, await send(client, claimed))


async def deliver_batch(client: httpx.AsyncClient, batch: int = 20) -> dict[str, int]:
    """The job: the claim commits in one unit of work, the sending holds no connection, the
    outcomes commit in another."""
    async with unit_of_work() as session:
        now, claimed = await claim_due(session, batch=batch)
    outcomes = await send(client, claimed)
    async with unit_of_work() as session:
        return await record_outcomes(session, now, outcomes)


async def run_forever(stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:

        async def job() -> bool:
            did = await deliver_batch(client)
            metrics.webhook_results(did["sent"], did["failed"])
            return bool(did["sent"] or did["failed"])  # more may be waiting

        await every(stop, get_settings().webhook_poll_seconds, job, "webhook delivery")
