"""/api/v1/auth — OAuth2 password login, refresh rotation, logout (the caller: `/api/v1/me`,
in `app.users.router`)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response, status

from app.auth import service
from app.auth.policy import Public, SignedIn
from app.auth.schemas import ApiTokenCreated, ApiTokenIn, ApiTokenOut, RefreshIn, TokenOut
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


@router.post(
    "/me/api-tokens",
    response_model=ApiTokenCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a personal API token (read-only, for GIS tools), shown once",
    responses={403: {"description": "A personal API token cannot create tokens"}},
)
async def create_api_token(
    body: ApiTokenIn, request: Request, session: DbSession, who: SignedIn
) -> dict[str, Any]:
    return await service.create_api_token(
        session, who, body.name, body.scope, body.expires_in_days, request
    )


@router.get(
    "/me/api-tokens",
    response_model=list[ApiTokenOut],
    summary="Your personal API tokens (never their secrets)",
)
async def list_api_tokens(session: DbSession, who: SignedIn) -> list[dict[str, Any]]:
    return await service.list_api_tokens(session, who)


@router.delete(
    "/me/api-tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke one of your personal API tokens (and its signed URLs)",
    responses={404: {"description": "No such token of yours"}},
)
async def revoke_api_token(
    token_id: uuid.UUID, request: Request, session: DbSession, who: SignedIn
) -> Response:
    await service.revoke_api_token(session, who, token_id, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
