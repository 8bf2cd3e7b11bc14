"""/api/v1/cases — intake from phones (idempotent), the scoped case list, a case with its
timeline and photos, duplicates, placing; /api/v1/attachments — the photos themselves."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, File, Form, Header, Query, Request, Response, UploadFile, status
from fastapi.responses import FileResponse
from pydantic import BeforeValidator

from app.auth.policy import (
    AuditReader,
    CasePlacer,
    CaseReader,
    CaseReporter,
    CaseWorker,
)
from app.cases import attachments, chain, detail, intake, service
from app.cases.models import CaseChannel
from app.cases.schemas import (
    AttachmentOut,
    CaseCreate,
    CaseCreated,
    CaseDetail,
    CasePage,
    DuplicateIn,
    PlaceIn,
    StatusesQuery,
    TimelineChain,
)
from app.categories.schemas import CategoryCodesQuery
from app.config import get_settings
from app.db import DbSession, HotFactory, HotReader, raw_connection
from app.errors import ApiError
from app.geometry import CRS, CrsQuery
from app.http import ApiRoute
from app.i18n import RequestLang, use_lang
from app.idempotency import Claim
from app.responses import FastJSON
from app.schemas import (
    SHANGHAI,
    BboxQuery,
    IdPath,
    IdQuery,
    LimitQuery,
    TimeQuery,
    page_limit,
    parse_bbox,
    strict_integer,
    to_local,
)
from app.stats.definitions import Indicator

router = APIRouter(prefix="/api/v1", tags=["cases"], route_class=ApiRoute)


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
    connect: HotFactory,
    who: CaseReporter,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", description="A UUID made on the phone, kept for retries"),
    ] = None,
) -> Response:
    # The hot write path: the language read here rather than resolved as a dependency (one
    # fewer for FastAPI to solve on every report; the header is not in the schema either way).
    lang = use_lang(request.headers.get("accept-language"))
    if body.occurred_at is not None:
        occurred = body.occurred_at
        if (occurred - datetime.now(SHANGHAI)).total_seconds() > 600:
            raise ApiError(
                "validation_error",
                field="occurred_at",
                detail="发生时间不能在未来",
                detail_en="occurred_at is in the future",
            )
        body.occurred_at = occurred
    claim = Claim.of(who.user_id, idempotency_key, f"POST {request.url.path}", await request.body())
    reveal = service.sees_pii(who)

    def render(row: Any, dups: list[dict[str, Any]]) -> bytes:
        out = service.case_out(row, lang, reveal_pii=reveal, masked_text=not reveal)
        out["duplicates"] = [
            {**d, "reported_at": to_local(datetime.fromisoformat(d["reported_at"]))} for d in dups
        ]
        return orjson.dumps(out)

    # One pooled connection, used raw (the hot path): the intake statement (key, case, first
    # step, event, duplicates) commits on its own, then the response is stored for replays.
    async with raw_connection(connect) as conn:
        status_code, payload = await intake.report(conn, body, who.user_id, render, claim)
    case_id = orjson.loads(payload)["id"]
    return FastJSON(
        payload, status_code=status_code, headers={"Location": f"/api/v1/cases/{case_id}"}
    )


@router.get("/cases", response_model=CasePage, summary="Cases in your scope, newest first")
async def list_cases(
    reader: HotReader,
    who: CaseReader,
    lang: RequestLang,
    status_: StatusesQuery = None,
    category: CategoryCodesQuery = None,
    grid_id: IdQuery = None,
    community_id: IdQuery = None,
    street_id: IdQuery = None,
    district_id: IdQuery = None,
    reporter_id: IdQuery = None,
    since: TimeQuery = None,
    until: TimeQuery = None,
    unlocated: bool | None = None,
    department_id: Annotated[
        int | None,
        BeforeValidator(strict_integer),
        Query(description="Dispatched to this department"),
    ] = None,
    overdue: Annotated[bool | None, Query(description="Late to sign in or to hand in")] = None,
    channel: Annotated[
        list[CaseChannel] | None,
        Query(description="Intake channel: app, hotline, qr, department, console"),
    ] = None,
    indicator: Annotated[
        Indicator | None,
        Query(
            description="The cases behind an evaluation figure (see /api/v1/stats); with "
            "department_id, the department's own figure"
        ),
    ] = None,
    bbox: BboxQuery = None,
    q: Annotated[
        str | None,
        Query(
            max_length=100, description="Text in title, description, address, or the case number"
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: LimitQuery = None,
    crs: CrsQuery = CRS.WGS84,
) -> Response:
    limit = page_limit(limit)
    filters = {
        "status": status_,
        "category": category,
        "grid_id": grid_id,
        "community_id": community_id,
        "street_id": street_id,
        "district_id": district_id,
        "reporter_id": reporter_id,
        "since": since,
        "until": until,
        "unlocated": unlocated,
        "department_id": department_id,
        "overdue": overdue,
        "channel": channel,
        "indicator": indicator,
        "bbox": parse_bbox(bbox),
        "q": q,
    }
    rows, nxt = await service.list_cases(reader, who, filters=filters, cursor=cursor, limit=limit)
    # Lists always mask personal data; opening one case reveals it (audited) to roles that need it.
    return FastJSON(
        {
            "items": [
                service.case_out(r, lang, crs, masked_text=not service.sees_pii(who)) for r in rows
            ],
            "next_cursor": nxt,
            "limit": limit,
        }
    )


@router.get(
    "/cases/{case_id}",
    response_model=CaseDetail,
    summary="A case with its timeline and photos (ETag: its version)",
)
async def get_case(
    case_id: IdPath,
    request: Request,
    session: DbSession,
    who: CaseReader,
    lang: RequestLang,
    crs: CrsQuery = CRS.WGS84,
) -> Response:
    out, version = await detail.detail(session, case_id, who, lang, crs, request)
    return FastJSON(out, headers={"ETag": _etag(version)})


@router.get(
    "/cases/{case_id}/timeline/verify",
    response_model=TimelineChain,
    summary="Recompute the case timeline's hash chain (administrators)",
)
async def verify_timeline(case_id: IdPath, session: DbSession, who: AuditReader) -> dict[str, Any]:
    row = await service.fetch_case(session, case_id)
    checked, broken = await chain.verify_timeline(session, row.id)
    return {"ok": not broken, "checked": checked, "broken": broken}


@router.post(
    "/cases/{case_id}/duplicate",
    response_model=CaseDetail,
    summary="Mark this case a duplicate of another: linked and closed, nothing lost",
)
async def mark_duplicate(
    case_id: IdPath,
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
    case_id: IdPath,
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
    case_id: IdPath,
    session: DbSession,
    who: CaseWorker,
    files: Annotated[list[UploadFile], File(description="JPEG, PNG, HEIC or WebP photos")],
    event_id: Annotated[
        int | None, Form(description="The timeline step (default: the report)")
    ] = None,
) -> Response:
    s = get_settings()
    if len(files) > s.max_photos_per_step:
        raise attachments.too_many(s.max_photos_per_step)
    uploads = []
    for f in files:
        data = await f.read(s.max_upload_bytes + 1)
        if len(data) > s.max_upload_bytes:
            raise ApiError(
                "payload_too_large",
                field="files",
                detail=f"单张照片不能超过 {s.max_upload_bytes} 字节",
                detail_en=f"A photo may be at most {s.max_upload_bytes} bytes",
            )
        uploads.append((f.filename or "", data))
    rows, added = await attachments.add_photos(session, case_id, event_id, uploads, who)
    return FastJSON(rows, status_code=201 if added else 200)


@router.get(
    "/attachments/{attachment_id}",
    summary="A photo (EXIF stripped)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def get_attachment(attachment_id: IdPath, session: DbSession, who: CaseReader) -> Response:
    return await attachments.file_response(session, attachment_id, thumb=False)


@router.get(
    "/attachments/{attachment_id}/thumbnail",
    summary="A photo's thumbnail (320 px)",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def get_thumbnail(attachment_id: IdPath, session: DbSession, who: CaseReader) -> Response:
    return await attachments.file_response(session, attachment_id, thumb=True)
