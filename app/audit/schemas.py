"""Response bodies of /api/v1/audit."""

from __future__ import annotations

from typing import Any

from app.schemas import LocalTime, ResponseModel


class AuditOut(ResponseModel):
    id: int
    at: LocalTime
    actor_id: int | None
    actor: str | None
    action: str
    object_type: str | None
    object_id: str | None
    ip: str | None
    user_agent: str | None
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(ResponseModel):
    items: list[AuditOut]
    total: int
    limit: int
    offset: int


class ChainReport(ResponseModel):
    ok: bool
    checked: int
    broken: list[dict[str, Any]]
