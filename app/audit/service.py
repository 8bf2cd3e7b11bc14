"""Writing, reading and verifying the audit log (the chain itself is kept by the database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from fastapi import Request
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.models import AuditEntry


class Actor(Protocol):
    """Who acted (an `app.auth.policy.Principal`; the audit log sits below auth and knows only
    these two fields)."""

    @property
    def user_id(self) -> int: ...

    @property
    def username(self) -> str: ...


def client_ip(request: Request | None) -> str | None:
    if request is None or request.client is None:
        return None
    return request.client.host


async def record(
    session: AsyncSession,
    action: str,
    *,
    actor: Actor | None = None,
    actor_id: int | None = None,
    actor_name: str | None = None,
    request: Request | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit row to the session's transaction (it commits with the change it records)."""
    session.add(
        AuditEntry(
            actor_id=actor.user_id if actor else actor_id,
            actor=actor.username if actor else actor_name,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
            ip=client_ip(request),
            user_agent=(request.headers.get("user-agent") or "")[:300] if request else None,
            detail=detail or {},
        )
    )


async def list_entries(
    session: AsyncSession,
    *,
    actor_id: int | None,
    action: str | None,
    object_type: str | None,
    object_id: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEntry], int]:
    stmt = select(AuditEntry, func.count().over().label("total"))
    if actor_id is not None:
        stmt = stmt.where(AuditEntry.actor_id == actor_id)
    if action:
        stmt = stmt.where(AuditEntry.action == action)
    if object_type:
        stmt = stmt.where(AuditEntry.object_type == object_type)
    if object_id:
        stmt = stmt.where(AuditEntry.object_id == object_id)
    if since:
        stmt = stmt.where(AuditEntry.at >= since)
    if until:
        stmt = stmt.where(AuditEntry.at < until)
    rows = (
        await session.execute(stmt.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    ).all()
    return [r.AuditEntry for r in rows], (rows[0].total if rows else 0)


_VERIFY = text(
    """
    SELECT id, hash = audit_row_hash(a) AS hash_ok,
           prev_hash = coalesce(lag(hash) OVER (ORDER BY id), repeat('0', 64)) AS link_ok
    FROM audit_log a
    ORDER BY id
    """
)


async def verify_chain(session: AsyncSession) -> tuple[int, list[dict[str, Any]]]:
    """Recompute every row's hash and link. Returns (rows checked, broken rows)."""
    broken = []
    n = 0
    for row in await session.execute(_VERIFY):
        n += 1
        if not (row.hash_ok and row.link_ok):
            broken.append({"id": row.id, "hash_ok": row.hash_ok, "link_ok": row.link_ok})
    return n, broken
