"""Request and response bodies of /api/v1/auth."""

from __future__ import annotations

from pydantic import Field

from app.schemas import RequestModel, ResponseModel


class TokenOut(ResponseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int = Field(description="Seconds the access token is valid")
    refresh_token: str = Field(description="Use once at /auth/refresh; reuse revokes the session")
    refresh_idle_timeout: int = Field(
        description="Seconds without a refresh before the session ends"
    )


class RefreshIn(RequestModel):
    refresh_token: str = Field(min_length=10, max_length=200)
