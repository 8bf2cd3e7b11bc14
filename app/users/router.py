"""/api/v1/users — accounts and posts (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status

from app.audit.service import record
from app.auth.policy import SignedIn, UserAdmin
from app.db import DbSession
from app.http import ApiRoute
from app.i18n import RequestLang
from app.schemas import IdPath, LimitQuery, OffsetQuery, page_limit
from app.users import service
from app.users.schemas import PasswordReset, PostIn, Role, UserCreate, UserOut, UserPage, UserUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"], route_class=ApiRoute)
me_router = APIRouter(prefix="/api/v1", tags=["auth"], route_class=ApiRoute)
"""`/api/v1/me`: the caller as a person of the registry (auth knows accounts, not posts)."""


@me_router.get("/me", response_model=UserOut, summary="The caller: user, posts, roles and scope")
async def me(session: DbSession, who: SignedIn, lang: RequestLang) -> dict[str, Any]:
    return await _out(session, who.user_id, lang, reveal=True)


async def _out(session: DbSession, user_id: int, lang: Any, reveal: bool = False) -> dict[str, Any]:
    u = await service.get_user(session, user_id)
    posts = await service.posts_of(session, [u.id], lang)
    return service.user_out(u, posts.get(u.id, []), reveal)


@router.get("", response_model=UserPage, summary="List users")
async def list_users(
    session: DbSession,
    who: UserAdmin,
    lang: RequestLang,
    q: Annotated[str | None, Query(max_length=64)] = None,
    role: Role | None = None,
    active: bool | None = None,
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    limit = page_limit(limit)
    users, total = await service.list_users(
        session, q=q, role=role, active=active, limit=limit, offset=offset
    )
    posts = await service.posts_of(session, [u.id for u in users], lang)
    return {
        "items": [service.user_out(u, posts.get(u.id, [])) for u in users],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post(
    "", response_model=UserOut, status_code=status.HTTP_201_CREATED, summary="Create a user"
)
async def create_user(
    body: UserCreate,
    request: Request,
    session: DbSession,
    who: UserAdmin,
    lang: RequestLang,
    response: Response,
) -> dict[str, Any]:
    u = await service.create_user(session, body, who, request)
    response.headers["Location"] = f"/api/v1/users/{u.id}"
    return await _out(session, u.id, lang)


@router.get("/{user_id}", response_model=UserOut, summary="Get a user (reveal_pii is audited)")
async def get_user(
    user_id: IdPath,
    request: Request,
    session: DbSession,
    who: UserAdmin,
    lang: RequestLang,
    reveal_pii: bool = False,
) -> dict[str, Any]:
    out = await _out(session, user_id, lang, reveal=reveal_pii)
    if reveal_pii:
        await record(
            session,
            "pii_viewed",
            actor=who,
            request=request,
            object_type="user",
            object_id=user_id,
            detail={"fields": ["mobile"]},
        )
    return out


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    summary="Change a user; is_active=false disables at once, unlock clears a lockout",
)
async def update_user(
    user_id: IdPath,
    body: UserUpdate,
    request: Request,
    session: DbSession,
    who: UserAdmin,
    lang: RequestLang,
) -> dict[str, Any]:
    await service.update_user(session, user_id, body, who, request)
    return await _out(session, user_id, lang)


@router.post(
    "/{user_id}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password (ends the user's sessions)",
)
async def reset_password(
    user_id: IdPath, body: PasswordReset, request: Request, session: DbSession, who: UserAdmin
) -> Response:
    await service.reset_password(session, user_id, body.password, who, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{user_id}/posts",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    summary="Give the user a post",
)
async def add_post(
    user_id: IdPath,
    body: PostIn,
    request: Request,
    session: DbSession,
    who: UserAdmin,
    lang: RequestLang,
) -> dict[str, Any]:
    await service.add_post(session, user_id, body, who, request)
    return await _out(session, user_id, lang)


@router.delete(
    "/{user_id}/posts/{post_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="End a post (kept as history)",
)
async def end_post(
    user_id: IdPath, post_id: IdPath, request: Request, session: DbSession, who: UserAdmin
) -> Response:
    await service.end_post(session, user_id, post_id, who, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
