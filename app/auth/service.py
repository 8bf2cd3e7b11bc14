"""Login, refresh-token rotation with reuse detection, logout, lockout."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta
from typing import Any

from fastapi import Request
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import client_ip, record
from app.auth.models import AuthSession, RefreshToken, User
from app.auth.passwords import hash_password, needs_rehash, verify_password
from app.auth.policy import Principal, create_access_token, principal_cache
from app.config import get_settings
from app.db import keep
from app.errors import ApiError


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


async def login(
    session: AsyncSession, username: str, password: str, request: Request
) -> dict[str, Any]:
    s = get_settings()
    user = (
        await session.execute(
            select(User)
            .where(func.lower(User.username) == username.strip().lower())
            .with_for_update()
        )
    ).scalar_one_or_none()
    now = (await session.execute(select(func.now()))).scalar_one()
    if user is None:
        verify_password(None, password)  # same cost as a real check
        await record(
            session,
            "login_failed",
            actor_name=username[:64],
            request=request,
            detail={"reason": "unknown_user"},
        )
        raise keep(ApiError("invalid_credentials", headers={"WWW-Authenticate": "Bearer"}))
    if user.locked_until is not None and user.locked_until > now:
        left = int((user.locked_until - now).total_seconds()) + 1
        await record(
            session,
            "login_refused_locked",
            actor_id=user.id,
            actor_name=user.username,
            request=request,
            detail={"seconds_left": left},
        )
        raise keep(
            ApiError(
                "account_locked",
                headers={"Retry-After": str(left)},
                detail=f"连续登录失败次数过多，账号已锁定，请 {left // 60 + 1} 分钟后再试",
                detail_en=f"Too many failed logins; try again in {left // 60 + 1} minutes",
            )
        )
    if not verify_password(user.password_hash, password):
        user.failed_logins += 1
        detail: dict[str, Any] = {"reason": "bad_password", "failures": user.failed_logins}
        await record(
            session,
            "login_failed",
            actor_id=user.id,
            actor_name=user.username,
            request=request,
            detail=detail,
        )
        if user.failed_logins >= s.lockout_threshold:
            user.locked_until = now + timedelta(minutes=s.lockout_minutes)
            user.failed_logins = 0
            await record(
                session,
                "account_locked",
                actor_id=user.id,
                actor_name=user.username,
                request=request,
                object_type="user",
                object_id=user.id,
                detail={"minutes": s.lockout_minutes},
            )
        raise keep(ApiError("invalid_credentials", headers={"WWW-Authenticate": "Bearer"}))
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
