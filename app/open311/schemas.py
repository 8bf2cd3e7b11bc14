from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas import Id, LocalTime, RequestModel, ResponseModel

KeyChannel = Literal["hotline", "qr", "department"]


class KeyCreate(RequestModel):
    integrator: str = Field(min_length=1, max_length=100, description="Who gets the key")
    channel: KeyChannel = Field(description="The intake channel its requests are recorded with")
    area_ids: list[Id] = Field(
        default_factory=list,
        max_length=50,
        description="Scope: requests must lie under one of these areas (empty: anywhere)",
    )
    note: str = Field("", max_length=500)


class PersonRef(ResponseModel):
    id: int
    name: str


class KeyOut(ResponseModel):
    id: int
    prefix: str = Field(description="The key's first characters (to recognise it)")
    integrator: str
    channel: KeyChannel
    area_ids: list[int]
    note: str
    builtin: bool = Field(description="The residents' QR form's own key (never shown)")
    created_by: PersonRef | None
    created_at: LocalTime
    last_used_at: LocalTime | None
    revoked_at: LocalTime | None
    active: bool


class KeyCreated(KeyOut):
    key: str = Field(description="The key: shown this once, only its hash is kept")
