"""Integrators' API keys: made by admins, one per integrator and intake channel, stored as a
SHA-256 hash (the key is high-entropy random, shown once), revocable. The policy layer
(`app.auth.policy`, permission `open311:submit`) calls `verify_key` for every Open311 POST."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import short_transaction
from app.errors import ApiError, not_found
from app.schemas import to_local

KEY_PREFIX = "o311_"
QR_INTEGRATOR = "网格服务卡二维码"


@dataclass(frozen=True)
class Integrator:
    """Who is posting through the Open311 door: a key, its channel and scope, and the service
    account that reports its cases (and scopes its Idempotency-Keys)."""

    key_id: int
    user_id: int
    integrator: str
    channel: str
    area_ids: tuple[int, ...]

    def covers(self, *area_ids: int | None) -> bool:
        """May this key report a case placed in these areas (community, street, district)?"""
        if not self.area_ids:
            return True
        return bool(set(self.area_ids).intersection(a for a in area_ids if a is not None))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """256 bits from the OS's CSPRNG: a plain SHA-256 of it cannot be searched."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


_VERIFY = text(
    """
    UPDATE open311_keys SET last_used_at = now()
    WHERE key_hash = :h AND revoked_at IS NULL
    RETURNING id, user_id, integrator, channel, area_ids
    """
)


def _integrator(row: Any) -> Integrator:
    return Integrator(
        key_id=row.id,
        user_id=row.user_id,
        integrator=row.integrator,
        channel=row.channel,
        area_ids=tuple(row.area_ids or ()),
    )


async def verify_key(session: AsyncSession, key: str | None) -> Integrator | None:
    """The integrator holding this key, or None (unknown, malformed or revoked)."""
    if not key or len(key) > 200 or not key.isascii():
        return None
    # A transaction of its own (as the bearer check): the key's use is recorded even when the
    # request then fails, and the route's own work may claim an Idempotency-Key on another
    # connection first.
    async with short_transaction(session):
        row = (await session.execute(_VERIFY, {"h": hash_key(key.strip())})).first()
    return _integrator(row) if row is not None else None


_SERVICE_USER = text(
    """
    INSERT INTO users (username, display_name, password_hash, is_active)
    VALUES (:username, :name, '!', false) RETURNING id
    """
)
_INSERT_KEY = text(
    """
    INSERT INTO open311_keys (prefix, key_hash, integrator, channel, area_ids, note, builtin,
                              user_id, created_by)
    VALUES (:prefix, :hash, :integrator, :channel, :areas, :note, :builtin, :user_id, :by)
    RETURNING id
    """
)
KEY_COLUMNS = """
    k.id, k.prefix, k.integrator, k.channel, k.area_ids, k.note, k.builtin, k.user_id,
    k.created_by, cu.display_name AS created_by_name, k.created_at, k.last_used_at,
    k.revoked_at, k.revoked_by
"""
KEY_FROM = "FROM open311_keys k LEFT JOIN users cu ON cu.id = k.created_by"


async def create_key(
    session: AsyncSession,
    *,
    integrator: str,
    channel: str,
    area_ids: list[int],
    note: str,
    created_by: int | None,
    builtin: bool = False,
) -> tuple[int, str]:
    """A new key and its service account (inactive: it can never log in). Not committed.
    Returns (key id, the key itself: shown once, only its hash is kept)."""
    if area_ids:
        found = (
            await session.execute(
                text("SELECT array_agg(id) FROM areas WHERE id = ANY(:ids)"), {"ids": area_ids}
            )
        ).scalar() or []
        missing = sorted(set(area_ids) - set(found))
        if missing:
            raise ApiError(
                "validation_error",
                field="area_ids",
                detail=f"区域不存在：{missing}",
                detail_en=f"Unknown areas: {missing}",
            )
    key = new_key()
    user_id = (
        await session.execute(
            _SERVICE_USER,
            {"username": f"open311-{uuid.uuid4().hex[:12]}", "name": integrator[:100]},
        )
    ).scalar_one()
    key_id = (
        await session.execute(
            _INSERT_KEY,
            {
                "prefix": key[:12],
                "hash": hash_key(key),
                "integrator": integrator,
                "channel": channel,
                "areas": sorted(set(area_ids)),
                "note": note,
                "builtin": builtin,
                "user_id": user_id,
                "by": created_by,
            },
        )
    ).scalar_one()
    return key_id, key


async def list_keys(session: AsyncSession) -> list[Any]:
    return list(
        (await session.execute(text(f"SELECT {KEY_COLUMNS} {KEY_FROM} ORDER BY k.id"))).all()
    )


async def get_key(session: AsyncSession, key_id: int) -> Any:
    row = (
        await session.execute(
            text(f"SELECT {KEY_COLUMNS} {KEY_FROM} WHERE k.id = :id"), {"id": key_id}
        )
    ).first()
    if row is None:
        raise not_found("API key", "API key", key_id)
    return row


async def revoke_key(session: AsyncSession, key_id: int, by: int) -> bool:
    """Revoke (idempotent). Returns whether it was active until now. Not committed."""
    await get_key(session, key_id)
    done = (
        await session.execute(
            text(
                "UPDATE open311_keys SET revoked_at = now(), revoked_by = :by "
                "WHERE id = :id AND revoked_at IS NULL RETURNING id"
            ),
            {"id": key_id, "by": by},
        )
    ).first()
    return done is not None


def key_out(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "prefix": row.prefix,
        "integrator": row.integrator,
        "channel": row.channel,
        "area_ids": list(row.area_ids or []),
        "note": row.note,
        "builtin": row.builtin,
        "created_by": {"id": row.created_by, "name": row.created_by_name}
        if row.created_by
        else None,
        "created_at": to_local(row.created_at),
        "last_used_at": to_local(row.last_used_at) if row.last_used_at else None,
        "revoked_at": to_local(row.revoked_at) if row.revoked_at else None,
        "active": row.revoked_at is None,
    }


_QR = text(
    "SELECT id, user_id, integrator, channel, area_ids, revoked_at FROM open311_keys WHERE builtin"
)


async def qr_integrator(session: AsyncSession) -> Integrator | None:
    """The key the residents' QR form posts with: made on first use (its secret is never shown:
    the server uses it directly); None when an admin has revoked it (the form is closed)."""
    row = (await session.execute(_QR)).first()
    if row is None:
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('open311_qr_key'))"))
        row = (await session.execute(_QR)).first()
        if row is None:
            await create_key(
                session,
                integrator=QR_INTEGRATOR,
                channel="qr",
                area_ids=[],
                note="居民扫描网格服务卡二维码上报（服务器内部使用）",
                created_by=None,
                builtin=True,
            )
            row = (await session.execute(_QR)).one()
    if row.revoked_at is not None:
        return None
    return _integrator(row)
