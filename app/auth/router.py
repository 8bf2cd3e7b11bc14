"""/api/v1/auth — OAuth2 password login, refresh rotation, logout (the caller: `/api/v1/me`,
in `app.users.router`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response, status

from app.auth import service
from app.auth.policy import Public, SignedIn
from app.auth.schemas import RefreshIn, TokenOut
from app.db import DbSession, ReaderFactory
from app.http import ApiRoute
from app.ratelimit import check, login_limits

router = APIRouter(prefix="/api/v1", tags=["auth"], route_class=ApiRoute)


@router.post(
    "/auth/token",
    response_model=TokenOut,
    summary="Log in (OAuth2 password flow)",
    responses={
        401: {"description": "Wrong user name or password"},
        403: {"description": "Account locked or disabled"},
        429: {"description": "Too many logins from this address or for this account"},
    },
)
async def token(
    request: Request,
    session: DbSession,
    connect: ReaderFactory,
    _: Public,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
) -> dict[str, Any]:
    await check(connect, login_limits(request, username))
    return await service.login(session, username, password, request)


@router.post(
    "/auth/refresh",
    response_model=TokenOut,
    summary="Swap a refresh token for new tokens",
    responses={401: {"description": "The refresh token is invalid, expired, used or revoked"}},
)
async def refresh(
    body: RefreshIn, request: Request, session: DbSession, _: Public
) -> dict[str, Any]:
    return await service.refresh(session, body.refresh_token, request)


@router.post("/auth/logout", status_code=status.HTTP_204_NO_CONTENT, summary="End this session")
async def logout(request: Request, session: DbSession, who: SignedIn) -> Response:
    await service.logout(session, who, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
