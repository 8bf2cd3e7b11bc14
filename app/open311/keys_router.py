"""/api/v1/open311/keys — administrators issue Open311 API keys per integrator (hotline, QR,
a department's system), see when each was last used, and revoke them."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from app.audit.service import record
from app.auth.policy import Open311KeyAdmin
from app.db import DbSession
from app.http import ApiRoute
from app.open311 import keys
from app.open311.schemas import KeyCreate, KeyCreated, KeyOut
from app.responses import FastJSON
from app.schemas import IdPath

router = APIRouter(prefix="/api/v1/open311/keys", tags=["open311"], route_class=ApiRoute)


@router.post(
    "",
    response_model=KeyCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Issue a key (shown once; only its SHA-256 is kept)",
)
async def create_key(
    body: KeyCreate, request: Request, session: DbSession, who: Open311KeyAdmin
) -> Response:
    key_id, key = await keys.create_key(
        session,
        integrator=body.integrator,
        channel=body.channel,
        area_ids=body.area_ids,
        note=body.note,
        created_by=who.user_id,
    )
    await record(
        session,
        "open311_key_created",
        actor=who,
        request=request,
        object_type="open311_key",
        object_id=key_id,
        detail={"integrator": body.integrator, "channel": body.channel, "area_ids": body.area_ids},
    )
    await session.flush()
    out = {**keys.key_out(await keys.get_key(session, key_id)), "key": key}
    return FastJSON(out, status_code=201, headers={"Cache-Control": "no-store"})


@router.get("", response_model=list[KeyOut], summary="Every key, active and revoked")
async def list_keys(session: DbSession, who: Open311KeyAdmin) -> Response:
    return FastJSON([keys.key_out(r) for r in await keys.list_keys(session)])


@router.delete("/{key_id}", response_model=KeyOut, summary="Revoke a key (at once, for good)")
async def revoke_key(
    key_id: IdPath, request: Request, session: DbSession, who: Open311KeyAdmin
) -> Response:
    if await keys.revoke_key(session, key_id, who.user_id):
        await record(
            session,
            "open311_key_revoked",
            actor=who,
            request=request,
            object_type="open311_key",
            object_id=key_id,
        )
    await session.flush()
    return FastJSON(keys.key_out(await keys.get_key(session, key_id)))
