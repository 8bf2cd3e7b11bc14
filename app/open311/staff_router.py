"""/api/v1/open311/requests/{case_id} — for staff who may see the case: what its Open311
request brought besides the case (the integrator and its channel, the media link, the attribute
answers, the token, the e-mail: masked unless the role talks to residents, then audited)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import Field
from sqlalchemy import text

from app.audit.service import record
from app.auth import scope
from app.auth.policy import CaseReader
from app.cases.service import sees_pii
from app.db import DbSession
from app.errors import not_found
from app.http import ApiRoute
from app.responses import FastJSON
from app.schemas import IdPath, LocalTime, ResponseModel, to_local

router = APIRouter(prefix="/api/v1/open311", tags=["open311"], route_class=ApiRoute)


def mask_email(value: str | None) -> str | None:
    """w***@example.com: the first character of the local part and the domain."""
    if not value or "@" not in value:
        return value
    local, domain = value.split("@", 1)
    return f"{local[:1]}***@{domain}"


class IntegratorRef(ResponseModel):
    key_id: int
    name: str
    channel: str


class Open311Detail(ResponseModel):
    case_id: int
    channel: str = Field(description="The case's intake channel (app, hotline, qr, department)")
    integrator: IntegratorRef | None = Field(description="None: not an Open311 request")
    token: str | None
    media_url: str | None = Field(description="A link as sent; the server never fetches it")
    attributes: dict[str, Any]
    email: str | None = Field(description="Masked unless your role talks to residents")
    created_at: LocalTime | None


_DETAIL = text(
    """
    SELECT c.id, c.channel, o.key_id, k.integrator, k.channel AS key_channel, o.token,
           o.media_url, o.attributes, o.email, o.created_at
    FROM cases c
    LEFT JOIN open311_requests o ON o.case_id = c.id AND o.district_id = c.district_id
    LEFT JOIN open311_keys k ON k.id = o.key_id
    WHERE c.id = :id AND c.district_id = :district
    """
)


@router.get(
    "/requests/{case_id}",
    response_model=Open311Detail,
    summary="What a case's Open311 request brought (media link, attributes, contact e-mail)",
)
async def open311_detail(
    case_id: IdPath, request: Request, session: DbSession, who: CaseReader
) -> Response:
    district = await scope.district_of(session, case_id)
    row = (
        (await session.execute(_DETAIL, {"id": case_id, "district": district})).first()
        if district is not None
        else None
    )
    if row is None:
        raise not_found("事件", "Case", case_id)
    reveal = sees_pii(who) and bool(row.email)
    out = {
        "case_id": row.id,
        "channel": row.channel,
        "integrator": {"key_id": row.key_id, "name": row.integrator, "channel": row.key_channel}
        if row.key_id
        else None,
        "token": str(row.token) if row.token else None,
        "media_url": row.media_url,
        "attributes": row.attributes or {},
        "email": row.email if reveal else mask_email(row.email),
        "created_at": to_local(row.created_at) if row.created_at else None,
    }
    if reveal:
        await record(
            session,
            "pii_viewed",
            actor=who,
            request=request,
            object_type="case",
            object_id=case_id,
            detail={"fields": ["open311_email"]},
        )
    return FastJSON(out)
