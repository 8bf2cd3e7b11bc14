"""/api/v1/audit — the audit log, for administrators."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.audit import service
from app.audit.schemas import AuditPage, ChainReport
from app.auth.policy import AuditReader
from app.db import DbSession
from app.http import ApiRoute
from app.schemas import IdQuery, LimitQuery, OffsetQuery, TimeQuery, page_limit

router = APIRouter(prefix="/api/v1/audit", tags=["audit"], route_class=ApiRoute)


@router.get("", response_model=AuditPage, summary="Audit entries, newest first")
async def list_audit(
    session: DbSession,
    who: AuditReader,
    actor_id: IdQuery = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    object_type: Annotated[str | None, Query(max_length=40)] = None,
    object_id: Annotated[str | None, Query(max_length=64)] = None,
    since: TimeQuery = None,
    until: TimeQuery = None,
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
