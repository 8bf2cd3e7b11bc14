"""/api/v1/audit — the audit log, for administrators."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.audit import service
from app.auth.policy import AuditReader
from app.db import DbSession
from app.http import ApiRoute
from app.schemas import LimitQuery, LocalTime, OffsetQuery, ResponseModel, page_limit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=ApiRoute)


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


@router.get("", response_model=AuditPage, summary="Audit entries, newest first")
async def list_audit(
    session: DbSession,
    who: AuditReader,
    actor_id: int | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    limit = page_limit(limit)
    items, total = await service.list_entries(
        session,
        actor_id=actor_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/verify", response_model=ChainReport, summary="Recompute the hash chain")
async def verify(session: DbSession, who: AuditReader) -> dict[str, Any]:
    checked, broken = await service.verify_chain(session)
    return {"ok": not broken, "checked": checked, "broken": broken}
