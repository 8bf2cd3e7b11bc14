"""Request and response bodies of /api/v1/auth."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import Field

from app.schemas import CleanStr, LocalTime, RequestModel, ResponseModel


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


class ApiTokenIn(RequestModel):
    name: CleanStr = Field(min_length=1, max_length=80, description="What it is for, e.g. QGIS")
    scope: Literal["map", "read"] = Field(
        "map",
        description="`map`: the vector tiles and OGC API only; `read`: every GET your posts allow",
    )
    expires_in_days: int = Field(90, ge=1, le=365, description="Days until it stops working")


class ApiTokenOut(ResponseModel):
    id: uuid.UUID
    name: str
    scope: str
    hint: str = Field(description="The token's first characters, to tell tokens apart")
    created_at: LocalTime
    expires_at: LocalTime
    last_used_at: LocalTime | None
    revoked_at: LocalTime | None


class ApiTokenCreated(ApiTokenOut):
    token: str = Field(
        description="Shown once: send it as `Authorization: Bearer …` (read-only: GET, HEAD)"
    )
    signed_url_prefix: str = Field(
        description="For clients that cannot send headers (QGIS vector tile layers): put the "
        "API's paths of the map after it, e.g. `{prefix}/tiles/cases/{z}/{x}/{y}.mvt` or "
        "`{prefix}/ogc`. Shown once; it reads the map only and ends with the token."
    )
