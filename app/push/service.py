"""Push notifications from the outbox: the events (written in the same transaction as the change
they describe) are read after a cursor and turned into one message per device of each recipient
(`push_deliveries`, at most one per event and device), which are sent at least once, retried with
the webhooks' backoff, and held outside the recipient's duty time until their next duty starts
(quiet hours, `app.duty.service.deliver_from`). A device the push service says is gone (404/410)
or that expired is deactivated.

What is pushed (`recipients`): a new task (`task.created`), an overdue or soon-due task
(`task.overdue`, `task.deadline_soon`) to its worker; a case sent back to its reporter (not
registered, `case.reject`; an on-the-spot handling that failed its check, `case.verify`); a joint
meeting's resolution (`community.task_created` of a meeting) to the community's staff and, when
the responsible unit is a department, that department's staff."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.auth.scope import districts_of
from app.background import every
from app.config import get_settings
from app.db import unit_of_work
from app.duty.service import deliver_from
from app.errors import ApiError, not_found
from app.events.webhooks import targets
from app.events.webhooks.delivery import MAX_ATTEMPTS, backoff_seconds
from app.push import channel as channels
from app.push.channel import Device, Sent
from app.push.schemas import PushSubscriptionIn
from app.push.webpush import WebPush

log = logging.getLogger("wangge.push")

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "invalid_subscription": (422, "推送订阅无效", "The push subscription is not valid"),
}
FANOUT_LOCK = 7_246_003
WINDOW = 5_000
"""Events read per fan-out pass."""
TASK_TITLES = {
    "task.created": "新任务",
    "task.overdue": "任务已逾期",
    "task.deadline_soon": "任务即将到期",
}
KIND_LABELS = {
    "verification": "现场核查",
    "callback": "回访",
    "inspection": "检查",
    "meeting_resolution": "会议决议",
}
TYPES = [*TASK_TITLES, "case.reject", "case.verify", "community.task_created"]

channels.register(WebPush())


# --- devices --------------------------------------------------------------------------------

_UPSERT = text(
    """
    INSERT INTO push_subscriptions (district_id, user_id, channel, endpoint, p256dh, auth,
                                    expires_at, user_agent)
    VALUES (:district, :user, 'webpush', :endpoint, :p256dh, :auth, :expires, :ua)
    ON CONFLICT (endpoint) DO UPDATE SET district_id = EXCLUDED.district_id,
        user_id = EXCLUDED.user_id, p256dh = EXCLUDED.p256dh, auth = EXCLUDED.auth,
        expires_at = EXCLUDED.expires_at, user_agent = EXCLUDED.user_agent, active = true,
        gone_at = NULL
    RETURNING id
    """
)
_MINE = """
    SELECT * FROM push_subscriptions
    WHERE district_id = ANY(CAST(:districts AS bigint[])) AND user_id = :user
"""


def _bad(field: str, zh: str, en: str) -> ApiError:
    return ApiError("invalid_subscription", detail=zh, detail_en=en, field=field)


async def subscribe(session: AsyncSession, who: Principal, body: PushSubscriptionIn) -> int:
    """Register (or move to the caller) one device; the same endpoint is one row."""
    try:
        parts = urlsplit(body.endpoint)
        host = parts.hostname
    except ValueError:
        raise _bad("endpoint", "推送地址无效", "The endpoint is not a URL") from None
    production = get_settings().env == "production"
    schemes = ("https",) if production else ("https", "http")
    if parts.scheme not in schemes or not host:
        raise _bad("endpoint", "推送地址须为 https 地址", "The endpoint must be an https URL")
    refused = await targets.refusal(body.endpoint)
    if refused is not None:
        raise _bad("endpoint", *refused)
    from app.push.vapid import unb64url

    try:
        point = unb64url(body.keys.p256dh)
        auth = unb64url(body.keys.auth)
    except ValueError:
        raise _bad("keys", "密钥不是 base64url", "The keys are not base64url") from None
    if len(point) != 65 or point[0] != 4:
        raise _bad("keys.p256dh", "p256dh 须为 P-256 公钥", "p256dh must be a P-256 public key")
    if len(auth) != 16:
        raise _bad("keys.auth", "auth 须为 16 字节", "auth must be 16 bytes")
    districts = await districts_of(session, who)
    if not districts:
        raise _bad("endpoint", "账号不属于任何区县", "The account is in no district")
    expires = (
        datetime.fromtimestamp(body.expirationTime / 1000, UTC)
        if body.expirationTime is not None
        else None
    )
    return int(
        (
            await session.execute(
                _UPSERT,
                {
                    "district": districts[0],
                    "user": who.user_id,
                    "endpoint": body.endpoint,
                    "p256dh": body.keys.p256dh,
                    "auth": body.keys.auth,
                    "expires": expires,
                    "ua": body.user_agent,
                },
            )
        ).scalar_one()
    )


async def mine(session: AsyncSession, who: Principal, sub_id: int | None = None) -> list[Any]:
    sql = _MINE + (" AND id = :id" if sub_id is not None else "") + " ORDER BY id"
    params: dict[str, Any] = {
        "districts": await districts_of(session, who),
        "user": who.user_id,
        "id": sub_id,
    }
    if sub_id is None:
        params.pop("id")
    return list(await session.execute(text(sql), params))


async def unsubscribe(session: AsyncSession, who: Principal, sub_id: int) -> None:
    gone = (
        await session.execute(
            text(
                "DELETE FROM push_subscriptions WHERE id = :id AND user_id = :user "
                "AND district_id = ANY(CAST(:districts AS bigint[])) RETURNING id"
            ),
            {"id": sub_id, "user": who.user_id, "districts": await districts_of(session, who)},
        )
    ).scalar()
    if gone is None:
        raise not_found("推送订阅", "Push subscription", sub_id)


# --- from events to messages ------------------------------------------------------------------

_CURSOR = text("SELECT last_event_id FROM push_cursor WHERE id = 1 FOR UPDATE SKIP LOCKED")
_TOP = text("SELECT coalesce(max(id), 0) FROM events WHERE id > :after")
_EVENTS = text(
    """
    SELECT e.id, e.type, e.district_id, e.case_id, e.area_ids, e.department_ids, e.payload
    FROM events e
    WHERE e.id > :after AND e.id <= :top AND e.type = ANY(:types)
    ORDER BY e.id
    """
)
_REPORTER = text("SELECT reporter_id, number FROM cases WHERE id = :id AND district_id = :district")
_COMMUNITY_STAFF = text(
    """
    SELECT DISTINCT p.user_id FROM posts p JOIN areas a ON a.id = p.area_id
    WHERE p.role = 'community' AND a.level = 'community' AND p.area_id = ANY(:areas)
      AND p.starts_on <= current_date AND (p.ends_on IS NULL OR p.ends_on >= current_date)
    """
)
_DEPARTMENT_STAFF = text(
    """
    SELECT DISTINCT p.user_id FROM posts p
    WHERE p.role = 'department' AND p.department_id = ANY(CAST(:depts AS bigint[]))
      AND p.starts_on <= current_date AND (p.ends_on IS NULL OR p.ends_on >= current_date)
    """
)
_COMMUNITY_TASK = text(
    "SELECT title FROM community_tasks WHERE id = :id AND district_id = :district"
)
_DEVICES = text(
    """
    SELECT id FROM push_subscriptions
    WHERE district_id = :district AND user_id = :user AND active
      AND (expires_at IS NULL OR expires_at > :now)
    """
)
_QUEUE = text(
    """
    INSERT INTO push_deliveries (district_id, subscription_id, user_id, event_id, event_type,
                                 message, deferred_until, next_attempt_at)
    VALUES (:district, :sub, :user, :event, :type, CAST(:message AS jsonb), :deferred, :at)
    ON CONFLICT (subscription_id, event_id) DO NOTHING
    """
)


async def recipients(session: AsyncSession, e: Any) -> tuple[list[int], dict[str, Any] | None]:
    """Who gets this event on their phone, and what it says (None: nobody)."""
    p = e.payload if isinstance(e.payload, dict) else orjson.loads(e.payload)
    if e.type in TASK_TITLES:
        kind = KIND_LABELS.get(p.get("kind", ""), "")
        return [int(p["worker_id"])], {
            "title": f"{TASK_TITLES[e.type]}（{kind}）",
            "body": p.get("title", ""),
            "url": f"/app#task/{p['task_id']}",
            "tag": f"task-{p['task_id']}",
            "task_id": p["task_id"],
            "urgent": e.type == "task.overdue",
        }
    if e.type in ("case.reject", "case.verify"):
        if e.type == "case.verify" and not (
            p.get("passed") is False and p.get("to_status") == "registered"
        ):
            return [], None
        row = (
            await session.execute(_REPORTER, {"id": e.case_id, "district": e.district_id})
        ).first()
        if row is None or row.reporter_id is None:
            return [], None
        what = "未予立案" if e.type == "case.reject" else "核查未通过，退回重新处置"
        return [int(row.reporter_id)], {
            "title": f"事件{what}",
            "body": f"{row.number}" + (f"：{p['reason']}" if p.get("reason") else ""),
            "url": f"/app#case/{e.case_id}",
            "tag": f"case-{e.case_id}",
            "case_id": e.case_id,
        }
    if e.type == "community.task_created" and p.get("source") == "meeting":
        users = set(
            (await session.execute(_COMMUNITY_STAFF, {"areas": list(e.area_ids)})).scalars()
        )
        if e.department_ids:  # the responsible unit is a department: its staff are named too
            users |= set(
                (
                    await session.execute(_DEPARTMENT_STAFF, {"depts": list(e.department_ids)})
                ).scalars()
            )
        title = (
            await session.execute(
                _COMMUNITY_TASK, {"id": p.get("task_id"), "district": e.district_id}
            )
        ).scalar()
        return sorted(users), {
            "title": "联席会议决议任务",
            "body": f"{title or '任务 ' + str(p.get('task_id'))}，"
            f"期限 {str(p.get('due_at', ''))[:16]}",
            "url": "/console/",
            "tag": f"community-task-{p.get('task_id')}",
        }
    return [], None


async def fan_out(session: AsyncSession, now: datetime) -> tuple[int, bool]:
    """Turn the events after the cursor into deliveries: (how many were queued, whether more
    events wait beyond this pass's window). One runner at a time (the cursor's row lock; the
    others skip)."""
    after = (await session.execute(_CURSOR)).scalar()
    if after is None:
        return 0, False
    newest = int((await session.execute(_TOP, {"after": after})).scalar_one())
    top = min(newest, after + WINDOW)
    if top <= after:
        return 0, False
    queued = 0
    for e in list(await session.execute(_EVENTS, {"after": after, "top": top, "types": TYPES})):
        users, message = await recipients(session, e)
        if message is None:
            continue
        message = {**message, "type": e.type, "event_id": e.id}
        for user in users:
            at = await deliver_from(session, e.district_id, user, now)
            for sub in (
                await session.execute(
                    _DEVICES, {"district": e.district_id, "user": user, "now": now}
                )
            ).scalars():
                r = await session.execute(
                    _QUEUE,
                    {
                        "district": e.district_id,
                        "sub": sub,
                        "user": user,
                        "event": e.id,
                        "type": e.type,
                        "message": orjson.dumps(message, default=str).decode(),
                        "deferred": at if at > now else None,
                        "at": at,
                    },
                )
                queued += r.rowcount  # type: ignore[attr-defined]
    await session.execute(
        text("UPDATE push_cursor SET last_event_id = :top WHERE id = 1"), {"top": top}
    )
    return queued, newest > top


# --- sending -----------------------------------------------------------------------------------

_CLAIM = text(
    """
    UPDATE push_deliveries d
    SET next_attempt_at = CAST(:now AS timestamptz) + make_interval(secs => :lease)
    FROM push_subscriptions s
    WHERE s.id = d.subscription_id AND s.district_id = d.district_id AND d.id IN (
        SELECT id FROM push_deliveries
        WHERE delivered_at IS NULL AND NOT gave_up AND next_attempt_at <= :now
        ORDER BY next_attempt_at, id
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING d.id, d.district_id, d.attempts, d.message, d.subscription_id, s.channel,
              s.endpoint, s.p256dh, s.auth, s.active, s.expires_at
    """
)
_DONE = text(
    """
    WITH d AS (
        UPDATE push_deliveries SET delivered_at = :now, attempts = attempts + 1,
               last_status = :status, last_error = NULL
        WHERE id = :id AND district_id = :district RETURNING subscription_id
    )
    UPDATE push_subscriptions s SET last_success_at = :now, last_status = :status
    FROM d WHERE s.id = d.subscription_id AND s.district_id = :district
    """
)
_FAILED = text(
    """
    UPDATE push_deliveries SET attempts = attempts + 1, last_status = :status,
           last_error = :error,
           next_attempt_at = CAST(:now AS timestamptz) + make_interval(secs => :wait),
           gave_up = :gone OR attempts + 1 >= :max
    WHERE id = :id AND district_id = :district
    """
)
_GONE = text(
    """
    WITH s AS (
        UPDATE push_subscriptions SET active = false, gone_at = :now, last_status = :status
        WHERE id = :sub AND district_id = :district RETURNING id
    )
    UPDATE push_deliveries d SET gave_up = true, last_error = 'device gone'
    FROM s WHERE d.subscription_id = s.id AND d.district_id = :district
      AND d.delivered_at IS NULL AND NOT d.gave_up
    """
)

Outcome = tuple[Any, Sent]


async def claim_due(
    session: AsyncSession, now: datetime | None = None, batch: int = 50
) -> tuple[datetime, list[Any]]:
    now = now or (await session.execute(text("SELECT now()"))).scalar_one()
    lease = get_settings().webhook_lease_seconds
    return now, list(await session.execute(_CLAIM, {"now": now, "batch": batch, "lease": lease}))


async def send(claimed: list[Any], now: datetime) -> list[Outcome]:
    ttl = get_settings().push_ttl_seconds
    out: list[Outcome] = []
    for d in claimed:
        if not d.active or (d.expires_at is not None and d.expires_at <= now):
            out.append((d, Sent(None, "device inactive or expired", gone=True)))
            continue
        ch = channels.channel(d.channel)
        if ch is None:
            out.append((d, Sent(None, f"no channel {d.channel}")))
            continue
        refused = await targets.refusal(d.endpoint)
        if refused is not None:
            out.append((d, Sent(None, f"refused: {refused[1]}"[:300])))
            continue
        message = d.message if isinstance(d.message, dict) else orjson.loads(d.message)
        device = Device(
            d.subscription_id, d.channel, d.endpoint, {"p256dh": d.p256dh, "auth": d.auth}
        )
        try:
            out.append((d, await ch.send(device, message, ttl)))
        except Exception as e:  # one device's failure never stops the batch
            out.append((d, Sent(None, f"{type(e).__name__}: {e}"[:300])))
    return out


async def record(session: AsyncSession, now: datetime, outcomes: list[Outcome]) -> dict[str, int]:
    sent = failed = gone = 0
    for d, r in outcomes:
        base = {"now": now, "id": d.id, "district": d.district_id, "status": r.status}
        if r.error is None:
            await session.execute(_DONE, base)
            sent += 1
            continue
        await session.execute(
            _FAILED,
            {
                **base,
                "error": r.error,
                "wait": backoff_seconds(d.attempts + 1),
                "max": MAX_ATTEMPTS,
                "gone": r.gone,
            },
        )
        if r.gone:
            await session.execute(
                _GONE,
                {
                    "now": now,
                    "sub": d.subscription_id,
                    "district": d.district_id,
                    "status": r.status,
                },
            )
            gone += 1
        else:
            failed += 1
    return {"sent": sent, "failed": failed, "gone": gone}


async def deliver_due(session: AsyncSession, now: datetime | None = None) -> dict[str, int]:
    """Fan out, claim, send and record on one session (tests; the caller commits)."""
    now = now or (await session.execute(text("SELECT now()"))).scalar_one()
    queued, more = await fan_out(session, now)
    now, claimed = await claim_due(session, now)
    return {
        "queued": queued,
        "more": int(more),
        **await record(session, now, await send(claimed, now)),
    }


async def deliver_batch() -> dict[str, int]:
    """The job: fan-out and claim commit in one unit of work, sending holds no connection, the
    outcomes commit in another."""
    async with unit_of_work() as session:
        now = (await session.execute(text("SELECT now()"))).scalar_one()
        queued, more = await fan_out(session, now)
        now, claimed = await claim_due(session, now)
    outcomes = await send(claimed, now)
    async with unit_of_work() as session:
        return {"queued": queued, "more": int(more), **await record(session, now, outcomes)}


async def run_forever(stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(timeout=10.0, follow_redirects=False) as client:
        channels.register(WebPush(client))

        async def job() -> bool:
            did = await deliver_batch()
            return bool(did["more"] or did["sent"] or did["failed"] or did["gone"])

        await every(stop, get_settings().push_poll_seconds, job, "push delivery")
