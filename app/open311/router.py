"""/open311/v2 — Open311 GeoReport v2 (JSON and XML): discovery, services, service definitions,
requests (read; post with an integrator's api_key), tokens, and the update feed."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Header, Query, Request, Response

from app import ratelimit as shared_limits
from app.auth.policy import Open311Public, Open311Submitter
from app.config import get_settings
from app.db import DbReader, DbSession, ReaderFactory
from app.errors import ApiError
from app.i18n import RequestLang
from app.idempotency import Claim, run_once
from app.open311 import formats, service, submission
from app.open311.formats import Open311Route

router = APIRouter(prefix="/open311/v2", tags=["open311"], route_class=Open311Route)

Fmt = Literal["json", "xml"]
CHANGESET = datetime.fromisoformat("2026-11-30T00:00:00+08:00")
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "Bad request: `[{code, description}]` (XML: `<errors><error>`)"},
    404: {"description": "Not found: `[{code, description}]`"},
}
Jurisdiction = Annotated[
    str | None,
    Query(
        max_length=20,
        pattern=r"^[0-9A-Za-z_-]{1,20}$",
        description="The district's area code (when serving several districts)",
    ),
]
Page = Annotated[int, Query(ge=1, le=1_000_000, description="Extension: page number (from 1)")]
PageSize = Annotated[
    int | None, Query(ge=1, le=10_000, description="Extension: requests per page (≤ 1000)")
]
Extensions = Annotated[
    bool,
    Query(description="Extension: add extended_attributes (case number, channel, internal state)"),
]


@router.get("/discovery.{fmt}", summary="Open311 discovery: where the endpoint is, its formats")
async def discovery(fmt: Fmt, request: Request, who: Open311Public) -> Response:
    base = str(request.base_url).rstrip("/")
    return formats.respond(
        fmt,
        "discovery",
        {
            "changeset": formats.w3c(CHANGESET),
            "contact": "区网格化服务管理中心（综治中心）",
            "key_service": f"{base}/api/v1/open311/keys (API keys are issued by administrators)",
            "endpoints": [
                {
                    "specification": service.SPEC,
                    "url": f"{base}/open311/v2",
                    "changeset": formats.w3c(CHANGESET),
                    "type": "production",
                    "formats": ["application/json", "text/xml"],
                }
            ],
        },
    )


@router.get(
    "/services.{fmt}", summary="The services: the category catalogue (事项清单)", responses=ERRORS
)
async def list_services(
    fmt: Fmt,
    reader: DbReader,
    who: Open311Public,
    lang: RequestLang,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    await service.district_id(reader, jurisdiction_id)
    return formats.respond(fmt, "services", await service.services(reader, lang))


@router.get(
    "/services/{service_code}.{fmt}",
    summary="A service's definition: the attributes a request may carry",
    responses=ERRORS,
)
async def service_definition(
    service_code: str,
    fmt: Fmt,
    reader: DbReader,
    who: Open311Public,
    lang: RequestLang,
    jurisdiction_id: Jurisdiction = None,
) -> Response:
    await service.district_id(reader, jurisdiction_id)
    return formats.respond(
        fmt, "service_definition", await service.service_definition(reader, service_code, lang)
    )


RequestIds = Annotated[
    str | None,
    Query(
        max_length=20_000,
        pattern=r"^[0-9A-Fa-f, ]*$",
        description="Comma-separated ids; overrides the rest",
    ),
]
"""Public request ids (hex), comma-separated: the pattern keeps the URL ASCII, so the longest
allowed list stays a URL the HTTP server reads (a list of 20,000 non-ASCII characters was 120 KB
percent-encoded, beyond what uvicorn parses: its own text/plain 400, found by `make fuzz`)."""


@router.get(
    "/requests.{fmt}",
    summary="Service requests (cases): filters, the default 90-day window, paging",
    responses=ERRORS,
)
async def list_requests(
    fmt: Fmt,
    reader: DbReader,
    who: Open311Public,
    lang: RequestLang,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: RequestIds = None,
    service_code: Annotated[str | None, Query(max_length=2000)] = None,
    start_date: Annotated[str | None, Query(max_length=40)] = None,
    end_date: Annotated[str | None, Query(max_length=40)] = None,
    status: Annotated[str | None, Query(max_length=20, description="open, closed")] = None,
    updated_after: Annotated[str | None, Query(max_length=40)] = None,
    updated_before: Annotated[str | None, Query(max_length=40)] = None,
    page: Page = 1,
    page_size: PageSize = None,
    extensions: Extensions = False,
) -> Response:
    items = await service.find_requests(
        reader,
        lang=lang,
        jurisdiction=jurisdiction_id,
        service_request_id=service_request_id,
        service_code=service_code,
        start_date=start_date,
        end_date=end_date,
        status=status,
        updated_after=updated_after,
        updated_before=updated_before,
        page=page,
        page_size=page_size,
        extensions=extensions,
    )
    return formats.respond(fmt, "service_requests", items)


@router.post(
    "/requests.{fmt}",
    summary="Post a service request (form-encoded, api_key required; send an Idempotency-Key)",
    responses={
        **ERRORS,
        403: {"description": "Missing, unknown or revoked api_key, or outside the key's scope"},
        429: {"description": "Too many requests (Retry-After)"},
    },
)
async def post_request(
    fmt: Fmt,
    request: Request,
    session: DbSession,
    connect: ReaderFactory,
    who: Open311Submitter,
    lang: RequestLang,
    service_code: Annotated[str, Form(max_length=16)],
    api_key: Annotated[str | None, Form(description="The integrator's key (or ?api_key=)")] = None,
    jurisdiction_id: Annotated[str | None, Form(max_length=20)] = None,
    lat: Annotated[str | None, Form(max_length=40, description="WGS84 latitude")] = None,
    long: Annotated[str | None, Form(max_length=40, description="WGS84 longitude")] = None,
    address_string: Annotated[
        str | None, Form(max_length=300, description="Used alone: must name one known building")
    ] = None,
    address_id: Annotated[str | None, Form(max_length=20, description="A building id")] = None,
    description: Annotated[str | None, Form(max_length=4000)] = None,
    media_url: Annotated[
        str | None, Form(max_length=1000, description="A link, stored, never fetched")
    ] = None,
    email: Annotated[str | None, Form(max_length=200, description="Personal data")] = None,
    first_name: Annotated[str | None, Form(max_length=50, description="Personal data")] = None,
    last_name: Annotated[str | None, Form(max_length=50, description="Personal data")] = None,
    phone: Annotated[str | None, Form(max_length=20, description="Personal data")] = None,
    device_id: Annotated[str | None, Form(max_length=100)] = None,
    account_id: Annotated[str | None, Form(max_length=100)] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key", description="Retries with the same key never make two cases"
        ),
    ] = None,
) -> Response:
    s = get_settings()
    # Counted in PostgreSQL (app.ratelimit, in batches while far below the limits): the same
    # limits whichever replica answers.
    await shared_limits.check(
        connect,
        {
            f"open311:key:{who.key_id}": s.open311_key_per_minute,
            f"open311:ip:{shared_limits.client_ip(request)}": s.open311_ip_per_minute,
        },
        batched=True,
    )
    form = await request.form()
    fields: dict[str, Any] = {
        "service_code": service_code,
        "lat": lat,
        "long": long,
        "address_string": address_string,
        "address_id": address_id,
        "description": description,
        "media_url": media_url,
        "email": email,
        "first_name": first_name,
        "last_name": last_name,
        "phone": phone,
    }
    attrs = {
        k[len("attribute[") : -1]: v
        for k, v in form.multi_items()
        if k.startswith("attribute[") and k.endswith("]") and isinstance(v, str)
    }

    async def work() -> tuple[int, bytes]:
        data, extra = await submission.build_case(session, fields, attrs, lang)
        out = await submission.submit(
            session, who, data, extra, jurisdiction=jurisdiction_id, lang=lang
        )
        return 200, formats.encode(fmt, "service_requests", [out])

    if idempotency_key is None:
        try:
            status_code, payload = await work()
        except BaseException:
            # The Open311 door answers its errors itself (the endpoint then seems to have
            # returned): what the refused request wrote is undone here.
            await session.rollback()
            raise
    else:
        # The form without the key itself, in a stable order: the request's fingerprint.
        canonical = urlencode(
            sorted((k, v) for k, v in form.multi_items() if k != "api_key" and isinstance(v, str))
        ).encode()
        claim = Claim.of(
            who.user_id,
            idempotency_key,
            f"POST {request.url.path}",
            hashlib.sha256(canonical).hexdigest().encode(),
        )
        assert claim is not None
        replay = await run_once(connect, session, claim, work)
        status_code, payload = replay.status, replay.body
    return Response(payload, status_code, media_type=formats.media_type(fmt))


@router.get(
    "/requests/{service_request_id}.{fmt}",
    summary="One service request (no personal data)",
    responses=ERRORS,
)
async def get_request(
    service_request_id: str,
    fmt: Fmt,
    reader: DbReader,
    who: Open311Public,
    lang: RequestLang,
    jurisdiction_id: Jurisdiction = None,
    extensions: Extensions = False,
) -> Response:
    await service.district_id(reader, jurisdiction_id)
    item = await service.one_request(reader, service_request_id, lang, extensions)
    return formats.respond(fmt, "service_requests", [item])


@router.get(
    "/tokens/{token}.{fmt}",
    summary="The service request a token stands for",
    responses=ERRORS,
)
async def get_token(
    token: str, fmt: Fmt, reader: DbReader, who: Open311Public, jurisdiction_id: Jurisdiction = None
) -> Response:
    await service.district_id(reader, jurisdiction_id)
    return formats.respond(fmt, "service_requests", [await service.token(reader, token)])


@router.get(
    "/servicerequestupdates.{fmt}",
    summary="Extension: the update feed, every status step of the loop, oldest first",
    responses=ERRORS,
)
async def request_updates(
    fmt: Fmt,
    reader: DbReader,
    who: Open311Public,
    lang: RequestLang,
    jurisdiction_id: Jurisdiction = None,
    service_request_id: RequestIds = None,
    updated_after: Annotated[str | None, Query(max_length=40)] = None,
    updated_before: Annotated[str | None, Query(max_length=40)] = None,
    page: Page = 1,
    page_size: PageSize = None,
) -> Response:
    items = await service.updates(
        reader,
        lang=lang,
        jurisdiction=jurisdiction_id,
        service_request_id=service_request_id,
        updated_after=updated_after,
        updated_before=updated_before,
        page=page,
        page_size=page_size,
    )
    return formats.respond(fmt, "service_request_updates", items)


@router.get("/{path:path}", include_in_schema=False)
async def unknown(path: str, who: Open311Public) -> Response:
    """Anything else under /open311/v2: the spec's 404 rather than problem+json."""
    raise ApiError(
        "route_not_found",
        detail=f"没有这个 Open311 接口：{path}",
        detail_en=f"No such Open311 endpoint: {path}",
    )
