"""Login, refresh-token rotation with reuse detection, logout, lockout."""

from __future__ import annotations

import hashlib
import math
import secrets
import uuid
from datetime import timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit.service import client_ip, record
from app.auth.models import ApiToken, AuthSession, RefreshToken, User
from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.auth.policy import Principal, create_access_token, principal_cache, token_cache
from app.auth.tokens import new_personal_token, signed_credential, token_digest
from app.config import get_settings
from app.db import keep
from app.errors import ApiError, not_found


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def _issue(session: AsyncSession, user_id: int, auth_session: uuid.UUID) -> dict[str, Any]:
    refresh = secrets.token_urlsafe(32)
    session.add(RefreshToken(session_id=auth_session, token_hash=_hash_token(refresh)))
    access, ttl = create_access_token(user_id, auth_session)
    s = get_settings()
    return {
        "access_token": access,
        "token_type": "bearer",
        "expires_in": ttl,
        "refresh_token": refresh,
        "refresh_idle_timeout": s.idle_minutes * 60,
    }


_FAILURES = text(
    "SELECT failures, locked_until FROM login_failures "
    "WHERE username = :u AND source = :s FOR UPDATE"
)
_FAIL = text(
    """
    INSERT INTO login_failures AS f (username, source, failures, last_at)
    VALUES (:u, :s, 1, :now)
    ON CONFLICT (username, source) DO UPDATE
       SET failures = CASE WHEN f.locked_until IS NOT NULL THEN 1 ELSE f.failures + 1 END,
           locked_until = NULL, last_at = :now
    RETURNING failures
    """
)
_LOCK = text(
    "UPDATE login_failures SET locked_until = :until, failures = 0 "
    "WHERE username = :u AND source = :s"
)
_FORGET = text("DELETE FROM login_failures WHERE username = :u AND source = :s")


def _minutes(seconds: float) -> int:
    """Whole minutes to wait, rounded up: 900 s is 15 minutes, 61 s is 2."""
    return max(1, math.ceil(seconds / 60))


async def purge_login_failures(conn: AsyncConnection) -> int:
    """`wangge purge`: forget failure counts idle for a day and locks that have ended (a spray
    of names from many addresses leaves no lasting rows)."""
    result = await conn.execute(
        text(
            "DELETE FROM login_failures WHERE last_at < now() - interval '1 day' "
            "AND (locked_until IS NULL OR locked_until < now())"
        )
    )
    return result.rowcount or 0


async def clear_lockouts(session: AsyncSession, username: str) -> None:
    """An administrator's unlock: every address's lock and count for this user name."""
    await session.execute(
        text("DELETE FROM login_failures WHERE username = :u"), {"u": username.strip().lower()}
    )


async def login(
    session: AsyncSession, username: str, password: str, request: Request
) -> dict[str, Any]:
    """Sign in. The lockout counts failures per user name (known or not) and source address:
    `lockout_threshold` failures in a row from one address lock that name for that address for
    `lockout_minutes`; from any other address the person still signs in. An unknown name is
    counted, locked and answered exactly as a known one (the same codes, the same cost)."""
    s = get_settings()
    name = username.strip().lower()[:64]
    source = (client_ip(request) or "unknown")[:64]
    pair = {"u": name, "s": source}
    user = (
        await session.execute(
            select(User).where(func.lower(User.username) == name).with_for_update()
        )
    ).scalar_one_or_none()
    now = (await session.execute(select(func.now()))).scalar_one()
    failures = (await session.execute(_FAILURES, pair)).first()
    if failures is not None and failures.locked_until is not None and failures.locked_until > now:
        left = (failures.locked_until - now).total_seconds()
        await record(
            session,
            "login_refused_locked",
            actor_id=user.id if user else None,
            actor_name=user.username if user else username[:64],
            request=request,
            detail={"seconds_left": math.ceil(left)},
        )
        minutes = _minutes(left)
        raise keep(
            ApiError(
                "account_locked",
                headers={"Retry-After": str(math.ceil(left))},
                detail=f"连续登录失败次数过多，该账号在此地址已锁定，请 {minutes} 分钟后再试",
                detail_en=f"Too many failed logins from this address; try again in {minutes} "
                f"minute{'s' if minutes != 1 else ''}",
                extra={"retry_after": math.ceil(left)},
            )
        )
    if user is None or not verify_password(user.password_hash, password):
        if user is None:
            verify_password(None, password)  # same cost as a real check
        count = int((await session.execute(_FAIL, {**pair, "now": now})).scalar_one())
        await record(
            session,
            "login_failed",
            actor_id=user.id if user else None,
            actor_name=user.username if user else username[:64],
            request=request,
            detail={
                "reason": "bad_password" if user else "unknown_user",
                "failures": count,
            },
        )
        if count >= s.lockout_threshold:
            until = now + timedelta(minutes=s.lockout_minutes)
            await session.execute(_LOCK, {**pair, "until": until})
            if user is not None:  # the administrators' view: locked somewhere until then
                user.locked_until = until
            await record(
                session,
                "account_locked",
                actor_id=user.id if user else None,
                actor_name=user.username if user else username[:64],
                request=request,
                object_type="user" if user else None,
                object_id=user.id if user else None,
                detail={"minutes": s.lockout_minutes, "source": source},
            )
        raise keep(ApiError("invalid_credentials", headers={"WWW-Authenticate": "Bearer"}))
    if failures is not None:
        await session.execute(_FORGET, pair)
    if not user.is_active:
        await record(
            session,
            "login_refused_disabled",
            actor_id=user.id,
            actor_name=user.username,
            request=request,
        )
        raise keep(ApiError("account_disabled"))
    if user.is_demo and s.env == "production":
        await record(
            session,
            "login_refused_demo",
            actor_id=user.id,
            actor_name=user.username,
            request=request,
        )
        raise keep(ApiError("demo_account_refused"))
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    sid = uuid.uuid4()
    session.add(
        AuthSession(
            id=sid,
            user_id=user.id,
            expires_at=now + timedelta(days=s.session_days),
            ip=client_ip(request),
            user_agent=(request.headers.get("user-agent") or "")[:300],
        )
    )
    await session.flush()
    tokens = await _issue(session, user.id, sid)
    await record(
        session,
        "login",
        actor_id=user.id,
        actor_name=user.username,
        request=request,
        detail={"session": str(sid)},
    )
    return tokens


async def refresh(session: AsyncSession, token: str, request: Request) -> dict[str, Any]:
    s = get_settings()
    row = (
        await session.execute(
            select(RefreshToken, AuthSession)
            .join(AuthSession, AuthSession.id == RefreshToken.session_id)
            .where(RefreshToken.token_hash == _hash_token(token))
            .with_for_update()
        )
    ).first()
    if row is None:
        raise ApiError("invalid_token")
    rt, auth = row.RefreshToken, row.AuthSession
    now = (await session.execute(select(func.now()))).scalar_one()
    if rt.used_at is not None:
        if auth.revoked_at is None:
            auth.revoked_at = now
            auth.revoked_reason = "refresh_reuse"
            principal_cache.evict(sid=auth.id)
            await record(
                session,
                "refresh_token_reused",
                actor_id=auth.user_id,
                request=request,
                detail={"session": str(auth.id)},
            )
        raise keep(ApiError("token_reused"))
    idle = now - auth.last_seen_at > timedelta(minutes=s.idle_minutes)
    if auth.revoked_at is not None or auth.expires_at <= now or idle:
        if idle and auth.revoked_at is None:
            auth.revoked_at = now
            auth.revoked_reason = "idle"
            await record(
                session,
                "session_idle_expired",
                actor_id=auth.user_id,
                request=request,
                detail={"session": str(auth.id)},
            )
        raise keep(ApiError("session_expired"))
    user = await session.get(User, auth.user_id)
    if user is None or not user.is_active:
        raise ApiError("session_expired")
    rt.used_at = now
    auth.last_seen_at = now
    tokens = await _issue(session, auth.user_id, auth.id)
    return tokens


async def logout(session: AsyncSession, who: Principal, request: Request) -> None:
    sid = who.session_id
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == sid, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason="logout")
    )
    principal_cache.evict(sid=sid)
    await record(session, "logout", actor=who, request=request, detail={"session": str(sid)})


async def revoke_user_sessions(session: AsyncSession, user_id: int, reason: str) -> None:
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=func.now(), revoked_reason=reason)
    )
    principal_cache.evict(user_id=user_id)
    token_cache.evict(user_id=user_id)


# --- personal API tokens ---------------------------------------------------------------------


async def create_api_token(
    session: AsyncSession, who: Principal, name: str, scope: str, days: int, request: Request
) -> dict[str, Any]:
    """A personal API token of the caller (read-only, on the caller's posts), shown once with
    its signed URL prefix. Audited."""
    if who.token_scope is not None:
        raise ApiError("read_only_token")
    secret = new_personal_token()
    digest = token_digest(secret)
    row = ApiToken(
        id=uuid.uuid4(),
        user_id=who.user_id,
        name=name,
        scope=scope,
        token_hash=digest,
        hint=secret[:10],
        expires_at=(await session.execute(select(func.now()))).scalar_one() + timedelta(days=days),
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    await record(
        session,
        "api_token_created",
        actor=who,
        request=request,
        object_type="api_token",
        object_id=str(row.id),
        detail={"name": name, "scope": scope, "expires_at": row.expires_at.isoformat()},
    )
    base = str(request.base_url).rstrip("/")
    return {
        **_token_out(row),
        "token": secret,
        "signed_url_prefix": f"{base}/s/{signed_credential(row.id, digest)}",
    }


_TOKEN_FIELDS = (
    *("id", "name", "scope", "hint", "created_at", "expires_at"),
    *("last_used_at", "revoked_at"),
)


def _token_out(row: ApiToken) -> dict[str, Any]:
    return {k: getattr(row, k) for k in _TOKEN_FIELDS}


async def list_api_tokens(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(ApiToken).where(ApiToken.user_id == who.user_id).order_by(ApiToken.created_at)
    )
    return [_token_out(r) for r in rows.scalars()]


async def revoke_api_token(
    session: AsyncSession, who: Principal, token_id: uuid.UUID, request: Request
) -> None:
    """End one of the caller's tokens (and its signed URLs) at once in this process, within
    `auth_cache_seconds` in the others. Someone else's token is a 404, like one that does not
    exist. A token cannot revoke itself or others (read-only)."""
    if who.token_scope is not None:
        raise ApiError("read_only_token")
    done = await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            ApiToken.user_id == who.user_id,
            ApiToken.revoked_at.is_(None),
        )
        .values(revoked_at=func.now())
        .returning(ApiToken.id)
    )
    if done.scalar_one_or_none() is None:
        exists = await session.execute(
            select(ApiToken.id).where(ApiToken.id == token_id, ApiToken.user_id == who.user_id)
        )
        if exists.scalar_one_or_none() is None:
            raise not_found("令牌", "Token", token_id)
        return  # already revoked: revoking again changes nothing
    token_cache.evict(user_id=who.user_id)
    await record(
        session,
        "api_token_revoked",
        actor=who,
        request=request,
        object_type="api_token",
        object_id=str(token_id),
    )
