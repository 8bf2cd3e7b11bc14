"""/api/v1/cases — intake from phones (idempotent), the scoped case list, a case with its
timeline and photos, duplicates, placing; /api/v1/attachments — the photos themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import anyio
import orjson
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse
from sqlalchemy import text

from app.audit.service import record
from app.auth.policy import (
    CasePlacer,
    CaseReader,
    CaseReporter,
    CaseWorker,
)
from app.cases import intake, photos, service
from app.cases.schemas import (
    AttachmentOut,
    CaseCreate,
    CaseCreated,
    CaseDetail,
    CasePage,
    DuplicateIn,
    PlaceIn,
)
from app.config import get_settings
from app.db import DbReader, DbSession
from app.errors import ApiError, not_found
from app.geometry import CRS
from app.http import ApiRoute
from app.i18n import RequestLang
from app.idempotency import check_key, run_once
from app.responses import FastJSON
from app.schemas import SHANGHAI, parse_bbox, to_local
from geo.measure import distance_m

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=ApiRoute)

CrsQuery = Annotated[CRS, Query(description="CRS of coordinates in the answer")]


def _etag(version: int) -> str:
    return f'"{version}"'


@router.post(
    "/cases",
    response_model=CaseCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Report a case (send an Idempotency-Key: retries never make two cases)",
    responses={409: {"description": "The same Idempotency-Key is still being processed"}},
)
async def report_case(
    body: CaseCreate,
    request: Request,
    session: DbSession,
    reader: DbReader,
    who: CaseReporter,
    lang: RequestLang,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="A UUID made on the phone, kept for retries"),
    ] = None,
) -> Response:
    if body.occurred_at is not None:
        occurred = (
            body.occurred_at
            if body.occurred_at.tzinfo
            else body.occurred_at.replace(tzinfo=SHANGHAI)
        )
        if (occurred - datetime.now(SHANGHAI)).total_seconds() > 600:
            raise ApiError(
                "validation_error",
                field="occurred_at",
                detail="发生时间不能在未来",
                detail_en="occurred_at is in the future",
            )
        body.occurred_at = occurred

    async def work() -> tuple[int, bytes]:
        case_id, _, dups = await intake.insert_case(session, body, who.user_id)
        row = await service.fetch_case(session, case_id)
        out = service.case_out(row, lang, reveal_pii=service.sees_pii(who))
        out["duplicates"] = [
            {**d, "reported_at": to_local(datetime.fromisoformat(d["reported_at"]))} for d in dups
        ]
        return 201, orjson.dumps(out)

    if idempotency_key is None:
        status_code, payload = await work()
        await session.commit()
    else:
        replay = await run_once(
            reader,
            session,
            user_id=who.user_id,
            key=check_key(idempotency_key),
            method_path=f"POST {request.url.path}",
            body=await request.body(),
            work=work,
        )
        status_code, payload = replay.status, replay.body
    case_id = orjson.loads(payload)["id"]
    return FastJSON(
        payload, status_code=status_code, headers={"Location": f"/api/v1/cases/{case_id}"}
    )


@router.get("/cases", response_model=CasePage, summary="Cases in your scope, newest first")
async def list_cases(
    reader: DbReader,
    who: CaseReader,
    lang: RequestLang,
    status_: Annotated[list[str] | None, Query(alias="status")] = None,
    category: Annotated[list[str] | None, Query()] = None,
    grid_id: int | None = None,
    community_id: int | None = None,
    street_id: int | None = None,
    district_id: int | None = None,
    reporter_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    unlocated: bool | None = None,
    bbox: Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (WGS84)")] = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100, description="Text in title, description, address, or the case number"
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
    crs: CrsQuery = CRS.WGS84,
) -> Response:
    s = get_settings()
    limit = min(limit or s.page_default, s.page_max)
    filters = {
        "status": status_,
        "category": category,
        "grid_id": grid_id,
        "community_id": community_id,
        "street_id": street_id,
        "district_id": district_id,
        "reporter_id": reporter_id,
        "since": _local(since),
        "until": _local(until),
        "unlocated": unlocated,
        "bbox": parse_bbox(bbox),
        "q": q,
    }
    rows, nxt = await service.list_cases(reader, who, filters=filters, cursor=cursor, limit=limit)
    # Lists always mask personal data; opening one case reveals it (audited) to roles that need it.
    return FastJSON(
        {
            "items": [service.case_out(r, lang, crs) for r in rows],
            "next_cursor": nxt,
            "limit": limit,
        }
    )


def _local(t: datetime | None) -> datetime | None:
    return t.replace(tzinfo=SHANGHAI) if t is not None and t.tzinfo is None else t


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    summary="A case with its timeline and photos (ETag: its version)",
)
async def get_case(
    case_id: int,
    request: Request,
    session: DbSession,
    who: CaseReader,
    lang: RequestLang,
    crs: CrsQuery = CRS.WGS84,
) -> Response:
    row = await service.fetch_case(session, case_id)
    reveal = service.sees_pii(who) and bool(row.resident_phone)
    out = service.case_out(row, lang, crs, reveal_pii=reveal)
    out["timeline"] = await service.timeline(session, case_id, lang)
    out["attachments"] = await service.attachments(session, case_id)
    if reveal:
        await record(
            session,
            "pii_viewed",
            actor=who,
            request=request,
            object_type="case",
            object_id=case_id,
            detail={"fields": ["resident_phone"]},
        )
        await session.commit()
    return FastJSON(out, headers={"ETag": _etag(row.version)})


@router.post(
    "/cases/{case_id}/duplicate",
    response_model=CaseDetail,
    summary="Mark this case a duplicate of another: linked and closed, nothing lost",
)
async def mark_duplicate(
    case_id: int,
    body: DuplicateIn,
    request: Request,
    session: DbSession,
    who: CaseWorker,
    lang: RequestLang,
) -> Response:
    await service.mark_duplicate(session, case_id, body.of, who, body.note)
    return await get_case(case_id, request, session, who, lang)


@router.post(
    "/cases/{case_id}/place",
    response_model=CaseDetail,
    summary="Place a case in a grid (unlocated cases, for the centre)",
)
async def place_case(
    case_id: int,
    body: PlaceIn,
    request: Request,
    session: DbSession,
    who: CasePlacer,
    lang: RequestLang,
) -> Response:
    await service.place(session, case_id, body.grid_id, who, body.note)
    return await get_case(case_id, request, session, who, lang)


@router.post(
    "/cases/{case_id}/attachments",
    response_model=list[AttachmentOut],
    status_code=status.HTTP_201_CREATED,
    summary="Add photos to a case step (re-sending the same photo adds nothing)",
    responses={415: {"description": "Not a JPEG, PNG, HEIC or WebP photo"}},
)
async def upload(
    case_id: int,
    session: DbSession,
    who: CaseWorker,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG, HEIC or WebP photos")],
    event_id: Annotated[
        int | None, Form(description="The timeline step (default: the report)")
    ] = None,
) -> Response:
    s = get_settings()
    case = (
        await session.execute(
            text(
                "SELECT id, ST_X(location) AS lon, ST_Y(location) AS lat, "
                "coalesce(occurred_at, reported_at) AS at, evidence_flags FROM cases WHERE id = :id "
                "FOR UPDATE"
            ),
            {"id": case_id},
        )
    ).first()
    if case is None:
        raise not_found("事件", "Case", case_id)
    step = (
        await session.execute(
            text(
                "SELECT id FROM case_events WHERE case_id = :c AND (CAST(:e AS bigint) IS NULL OR id = :e) "
                "ORDER BY id LIMIT 1"
            ),
            {"c": case_id, "e": event_id},
        )
    ).scalar()
    if step is None:
        raise ApiError(
            "validation_error",
            field="event_id",
            detail="该事件没有这个步骤",
            detail_en="No such step on this case",
        )
    if len(files) > s.max_photos_per_step:
        raise ApiError(
            "too_many_photos",
            detail=f"每个步骤最多 {s.max_photos_per_step} 张照片",
            detail_en=f"At most {s.max_photos_per_step} photos per step",
        )
    processed = []
    for f in files:
        data = await f.read(s.max_upload_bytes + 1)
        if len(data) > s.max_upload_bytes:
            raise ApiError(
                "payload_too_large",
                field="files",
                detail=f"单张照片不能超过 {s.max_upload_bytes} 字节",
                detail_en=f"A photo may be at most {s.max_upload_bytes} bytes",
            )
        photo = await anyio.to_thread.run_sync(photos.process, data, s.max_image_pixels)
        photo.flags = _evidence(photo, case, s.evidence_max_m, s.evidence_max_hours)
        processed.append((f.filename, photo))
    have = set(
        (
            await session.execute(
                text("SELECT sha256 FROM attachments WHERE event_id = :e"), {"e": step}
            )
        ).scalars()
    )
    new = {p.sha256: (n, p) for n, p in processed if p.sha256 not in have}
    if len(have) + len(new) > s.max_photos_per_step:
        raise ApiError(
            "too_many_photos",
            detail=f"每个步骤最多 {s.max_photos_per_step} 张照片",
            detail_en=f"At most {s.max_photos_per_step} photos per step",
        )
    for name, p in new.values():
        await anyio.to_thread.run_sync(photos.store, s.media_dir, p)
        await session.execute(
            text(
                """
            INSERT INTO attachments (case_id, event_id, sha256, media_type, bytes, width, height,
                                     filename, taken_at, taken_lon, taken_lat, flags, uploaded_by)
            VALUES (:case, :event, :sha, :mt, :bytes, :w, :h, :name, :at, :lon, :lat, :flags, :by)
            ON CONFLICT (event_id, sha256) DO NOTHING
            """
            ),
            {
                "case": case_id,
                "event": step,
                "sha": p.sha256,
                "mt": p.media_type,
                "bytes": p.bytes,
                "w": p.width,
                "h": p.height,
                "name": (name or "")[:200],
                "at": p.taken_at,
                "lon": p.lon,
                "lat": p.lat,
                "flags": p.flags,
                "by": who.user_id,
            },
        )
    flags = sorted({*case.evidence_flags, *(fl for _, p in new.values() for fl in p.flags)})
    if new:
        await session.execute(
            text("UPDATE cases SET evidence_flags = :f, updated_at = now() WHERE id = :id"),
            {"f": flags, "id": case_id},
        )
    await session.commit()
    rows = await service.attachments(session, case_id)
    mine = [a for a in rows if a["event_id"] == step]
    return FastJSON(mine, status_code=201 if new else 200)


def _evidence(photo: photos.Photo, case: Any, max_m: float, max_hours: float) -> list[str]:
    flags = []
    if photo.lon is not None and photo.lat is not None:
        if float(distance_m(photo.lon, photo.lat, case.lon, case.lat)) > max_m:
            flags.append("photo_far_from_case")
    else:
        flags.append("photo_without_gps")
    if photo.taken_at is not None:
        if abs((photo.taken_at - case.at).total_seconds()) > max_hours * 3600:
            flags.append("photo_time_mismatch")
    else:
        flags.append("photo_without_time")
    return flags


async def _attachment_file(session: DbSession, attachment_id: int, thumb: bool) -> FileResponse:
    row = (
        await session.execute(
            text("SELECT sha256, media_type FROM attachments WHERE id = :id"), {"id": attachment_id}
        )
    ).first()
    if row is None:
        raise not_found("附件", "Attachment", attachment_id)
    img, th = photos.paths(get_settings().media_dir, row.sha256)
    path = th if thumb else img
    if not path.exists():
        raise ApiError(
            "attachment_file_missing",
            status=404,
            detail=f"附件 {attachment_id} 的文件缺失",
            detail_en=f"The file of attachment {attachment_id} is missing",
        )
    return FileResponse(
        path,
        media_type="image/jpeg" if thumb else row.media_type,
        headers={
            "Cache-Control": "private, max-age=86400",
            "ETag": f'"{row.sha256}{"t" if thumb else ""}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get(
    "/attachments/{attachment_id}",
    summary="A photo (EXIF stripped)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def get_attachment(attachment_id: int, session: DbSession, who: CaseReader) -> FileResponse:
    return await _attachment_file(session, attachment_id, thumb=False)


@router.get(
    "/attachments/{attachment_id}/thumbnail",
    summary="A photo's thumbnail (320 px)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def get_thumbnail(attachment_id: int, session: DbSession, who: CaseReader) -> FileResponse:
    return await _attachment_file(session, attachment_id, thumb=True)
