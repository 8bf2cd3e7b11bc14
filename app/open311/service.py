"""Open311 GeoReport v2 over the case store: the catalogue as services, cases as service
requests (internal states mapped to open/closed with Chinese status notes), the update feed
from the timeline, and new requests through the one case intake."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth import scope
from app.config import get_settings
from app.errors import ApiError, not_found
from app.i18n import ACTION_LABELS, STATUS_LABELS, Lang, label
from app.open311 import public_ids
from app.open311.formats import w3c
from app.pii import mask_text
from app.schemas import SHANGHAI, parse_instant

SPEC = "http://wiki.open311.org/GeoReport_v2"
CLOSED = ("closed", "rejected")

# status -> (zh, en) notes; {agency} is the lead department.
STATUS_NOTES: dict[str, tuple[str, str]] = {
    "reported": ("已受理，等待核实立案", "Received; being checked before registration"),
    "registered": ("已立案，等待派遣", "Registered; waiting to be dispatched"),
    "whistled": ("社区已吹哨，等待部门报到", "The community has called departments in"),
    "dispatched": ("已派遣至{agency}，等待签收", "Dispatched to {agency}; waiting for sign-in"),
    "signed_in": ("{agency}已签收", "{agency} has signed in"),
    "handling": ("{agency}正在处置", "{agency} is handling it"),
    "returned": ("承办部门已退回，正在重新派遣", "Returned by the department; being re-dispatched"),
    "suspended": ("处置暂停（已挂起）", "Handling suspended"),
    "feedback": ("已处置，等待网格员现场核查", "Handled; waiting for an on-site check"),
    "verified": ("现场核查通过，等待回访评价", "Checked on site; waiting for the follow-up call"),
    "rework": ("核查未通过，返工处置中", "Failed the on-site check; being reworked"),
    "closed": ("已办结", "Closed"),
    "rejected": ("经核实不予立案", "Not registered after checking"),
}
DUPLICATE_NOTE = ("与事件 {number} 重复，已合并办理", "A duplicate of {number}; handled with it")


def open_closed(status: str) -> str:
    return "closed" if status in CLOSED else "open"


# --- what the public feed publishes -------------------------------------------------------------

PUBLISHED = "(c.channel = ANY(:pub_channels) OR c.category_code = ANY(:pub_categories))"
"""The publishing rule, a decision and not a default: a case is in the public feed when its
intake channel (`open311_public_channels`: the residents' hotline and QR form) or its category
(`open311_public_categories`) is marked public. Grid workers' internal reports stay internal:
not listed, not in the update feed, a 404 by id."""


def published_binds() -> dict[str, list[str]]:
    s = get_settings()
    return {
        "pub_channels": [c.strip() for c in s.open311_public_channels.split(",") if c.strip()],
        "pub_categories": [c.strip() for c in s.open311_public_categories.split(",") if c.strip()],
    }


def snap(lat: float, lon: float) -> tuple[float, float]:
    """Coordinates generalised to a grid of `open311_snap_m` metres (a cell's centre): the
    public learns the block, not the doorstep."""
    m = get_settings().open311_snap_m
    if m <= 0:
        return round(lat, 7), round(lon, 7)
    dlat = m / 111_320.0
    slat = (math.floor(lat / dlat) + 0.5) * dlat
    dlon = m / (111_320.0 * max(math.cos(math.radians(slat)), 0.01))
    slon = (math.floor(lon / dlon) + 0.5) * dlon
    return round(slat, 6), round(slon, 6)


def status_notes(status: str, agency: str | None, duplicate: str | None, lang: Lang) -> str:
    if status == "closed" and duplicate:
        zh, en = DUPLICATE_NOTE
        return (en if lang == "en" else zh).format(number=duplicate)
    zh, en = STATUS_NOTES.get(status, (status, status))
    who = agency or ("承办部门" if lang == "zh" else "the department")
    return (en if lang == "en" else zh).format(agency=who)


# --- services ------------------------------------------------------------------------------------

_SERVICES = text(
    """
    SELECT c.code, c.name, c.name_en, c.description, c.keywords, k.kind,
           k.name AS group_name, k.name_en AS group_name_en
    FROM categories c JOIN category_classes k ON k.code = c.class_code
    WHERE c.active AND (CAST(:code AS text) IS NULL OR c.code = :code)
    ORDER BY c.code
    """
)


def _service(r: Any, lang: Lang) -> dict[str, Any]:
    return {
        "service_code": r.code,
        "service_name": r.name_en if lang == "en" else r.name,
        "description": r.description or None,
        "metadata": True,
        "type": "realtime",
        "keywords": ",".join(r.keywords or []) or None,
        "group": r.group_name_en if lang == "en" else r.group_name,
    }


async def services(conn: AsyncConnection, lang: Lang) -> list[dict[str, Any]]:
    return [_service(r, lang) for r in await conn.execute(_SERVICES, {"code": None})]


async def _category(conn: AsyncConnection | AsyncSession, code: str) -> Any:
    row = (await conn.execute(_SERVICES, {"code": code})).first()
    if row is None:
        raise not_found("服务类型", "Service", code)
    return row


def attributes(kind: str, lang: Lang) -> list[dict[str, Any]]:
    """The extra fields a request may carry (`attribute[code]=value` on POST). Every category
    takes a title, an urgency and when it happened; components (部件) also the facility's
    code from its tag."""
    en = lang == "en"
    out: list[dict[str, Any]] = [
        {
            "variable": True,
            "code": "title",
            "datatype": "string",
            "required": False,
            "datatype_description": "at most 200 characters" if en else "不超过 200 字",
            "order": 1,
            "description": "A short title (default: the start of the description)"
            if en
            else "标题（不填则取描述的开头）",
        },
        {
            "variable": True,
            "code": "urgency",
            "datatype": "singlevaluelist",
            "required": False,
            "datatype_description": None,
            "order": 2,
            "description": "Urgency (default: normal)" if en else "紧急程度（默认一般）",
            "values": [
                {"key": "normal", "name": "normal" if en else "一般"},
                {"key": "urgent", "name": "urgent" if en else "紧急"},
                {"key": "critical", "name": "critical" if en else "特急"},
            ],
        },
        {
            "variable": True,
            "code": "occurred_at",
            "datatype": "datetime",
            "required": False,
            "datatype_description": "ISO 8601, e.g. 2026-11-30T09:30:00+08:00",
            "order": 3,
            "description": "When it happened (default: now)"
            if en
            else "发生时间（默认为上报时间）",
        },
    ]
    if kind == "component":
        out.append(
            {
                "variable": True,
                "code": "facility_code",
                "datatype": "string",
                "required": False,
                "datatype_description": "at most 40 characters" if en else "不超过 40 个字符",
                "order": 4,
                "description": "The code on the facility's tag"
                if en
                else "部件标识码（设施铭牌上的编号）",
            }
        )
    return out


async def service_definition(conn: AsyncConnection, code: str, lang: Lang) -> dict[str, Any]:
    row = await _category(conn, code)
    return {"service_code": row.code, "attributes": attributes(row.kind, lang)}


# --- requests ------------------------------------------------------------------------------------

_REQUEST_COLUMNS = """
    c.id, c.number, c.status, c.channel, c.category_code, cat.name AS service_name,
    cat.name_en AS service_name_en, cat.class_code, cc.name AS class_name,
    cc.name_en AS class_name_en, c.title, c.description, c.address,
    ST_X(c.location) AS lon, ST_Y(c.location) AS lat, c.reported_at, c.updated_at, c.closed_at,
    dup.number AS duplicate_number, ld.name AS agency, ld.name_en AS agency_en,
    (SELECT a.handle_due FROM case_assignments a
     WHERE a.case_id = c.id AND a.district_id = c.district_id AND a.role = 'lead'
       AND a.state <> 'withdrawn'
     ORDER BY a.id DESC LIMIT 1) AS expected,
    o.media_url, da.code AS district_code
"""
_REQUEST_FROM = """
    FROM cases c
    JOIN categories cat ON cat.code = c.category_code
    JOIN category_classes cc ON cc.code = cat.class_code
    LEFT JOIN departments ld ON ld.id = c.lead_department_id
    LEFT JOIN cases dup ON dup.id = c.duplicate_of AND dup.district_id = c.district_id
    LEFT JOIN open311_requests o ON o.case_id = c.id AND o.district_id = c.district_id
    LEFT JOIN areas da ON da.id = c.district_id
"""


def request_out(r: Any, lang: Lang, extensions: bool = False) -> dict[str, Any]:
    """A case as a GeoReport service request, for the public: never personal data (residents'
    names, phones, e-mails, the reporter), the free text through the PII detector, and only the
    fields the scope module lets a reader outside the case's scope see (`scope.public_fields`):
    a case of a private class (disputes, public order) shows no description, address or place,
    and its class in place of its category."""
    fields = scope.public_fields(r.class_code)
    agency = (r.agency_en or r.agency) if lang == "en" else r.agency
    description = (r.description or r.title) if "text" in fields else None
    if "category" in fields:
        code, name = r.category_code, (r.service_name_en if lang == "en" else r.service_name)
    else:
        code, name = (
            r.class_code,
            ((r.class_name_en or r.class_name) if lang == "en" else r.class_name),
        )
    hidden = "location" not in fields
    lat, lon = (None, None) if hidden else snap(r.lat, r.lon)
    out: dict[str, Any] = {
        "service_request_id": public_ids.encode(r.id),
        "status": open_closed(r.status),
        "status_notes": status_notes(r.status, agency, r.duplicate_number, lang),
        "service_name": name,
        "service_code": code,
        "description": mask_text(description[:4000]) if description else None,
        "agency_responsible": agency,
        "service_notice": (f"Case number {r.number}" if lang == "en" else f"事件编号 {r.number}"),
        "requested_datetime": w3c(r.reported_at),
        "updated_datetime": w3c(
            r.closed_at if r.status in CLOSED and r.closed_at else r.updated_at
        ),
        "expected_datetime": w3c(r.expected),
        "address": None if hidden else mask_text(r.address),
        "address_id": None,
        "zipcode": None,
        "lat": lat,
        "long": lon,
        "media_url": r.media_url,
    }
    if extensions:
        out["extended_attributes"] = {
            "case_number": r.number,
            "channel": r.channel,
            "internal_status": r.status,
            "internal_status_label": label(STATUS_LABELS, r.status, lang),
            "jurisdiction_id": r.district_code,
        }
    return out


def parse_time(value: str | None, field: str) -> datetime | None:
    """A W3C / ISO 8601 date-time (or date); without an offset it is Asia/Shanghai."""
    if value is None or value == "":
        return None
    try:
        t = parse_instant(value)
    except ValueError:
        raise ApiError(
            "validation_error",
            status=400,
            field=field,
            detail=f"{field} 不是有效的时间（W3C 格式，如 2026-11-30T09:30:00+08:00）",
            detail_en=f"{field} is not a valid W3C date-time (e.g. 2026-11-30T09:30:00+08:00)",
        ) from None
    if not 1900 <= t.year <= 2999:
        raise ApiError(
            "validation_error",
            status=400,
            field=field,
            detail=f"{field} 超出范围（1900–2999 年）",
            detail_en=f"{field} is out of range (years 1900-2999)",
        )
    return t


def _bad(field: str, zh: str, en: str) -> ApiError:
    return ApiError("validation_error", status=400, field=field, detail=zh, detail_en=en)


async def district_id(conn: AsyncConnection | AsyncSession, code: str | None) -> int | None:
    """The district of `jurisdiction_id` (its area code); 404 when unknown."""
    if not code:
        return None
    found = (
        await conn.execute(
            text("SELECT id FROM areas WHERE code = :c AND level = 'district'"), {"c": code}
        )
    ).scalar()
    if found is None:
        raise ApiError(
            "not_found",
            field="jurisdiction_id",
            detail=f"jurisdiction_id 不存在：{code}",
            detail_en=f"Unknown jurisdiction_id: {code}",
        )
    return int(found)


def _ids(value: str) -> list[int]:
    ids = []
    for part in value.split(","):
        found = public_ids.decode(part.strip())
        if found is None:
            raise _bad(
                "service_request_id",
                f"service_request_id 应为逗号分隔的编号：{part!r}",
                f"service_request_id must be comma-separated ids: {part!r}",
            )
        ids.append(found)
    if len(ids) > get_settings().open311_page_max:
        raise _bad("service_request_id", "编号过多", "Too many ids")
    return ids


async def find_requests(
    conn: AsyncConnection,
    *,
    lang: Lang,
    jurisdiction: str | None = None,
    service_request_id: str | None = None,
    service_code: str | None = None,
    start_date: str | None = None,
    end_date: str | None = None,
    status: str | None = None,
    updated_after: str | None = None,
    updated_before: str | None = None,
    page: int = 1,
    page_size: int | None = None,
    extensions: bool = False,
) -> list[dict[str, Any]]:
    """GET requests: the spec's filters (service_request_id overrides the others), the default
    window (the last `open311_window_days` days, at most `open311_page_max` requests), and the
    common extensions (page, page_size, updated_after, updated_before)."""
    s = get_settings()
    where: list[str] = [PUBLISHED]
    params: dict[str, Any] = published_binds()
    district = await district_id(conn, jurisdiction)
    if district is not None:
        where.append("c.district_id = :district")
        params["district"] = district
    if service_request_id:
        where.append("c.id = ANY(:ids)")
        params["ids"] = _ids(service_request_id)
    else:
        if service_code:
            # The public may not learn a private case's category by filtering on it.
            public = scope.public_sql("cat")
            where.append(f"c.category_code = ANY(:codes) AND {public.sql}")
            params["codes"] = [c.strip() for c in service_code.split(",") if c.strip()]
            params.update(public.binds)
        if status:
            wanted = {x.strip().lower() for x in status.split(",") if x.strip()}
            if not wanted <= {"open", "closed"}:
                raise _bad("status", "status 只能是 open 或 closed", "status is open or closed")
            if wanted == {"open"}:
                where.append("c.status <> ALL(:closed)")
                params["closed"] = list(CLOSED)
            elif wanted == {"closed"}:
                where.append("c.status = ANY(:closed)")
                params["closed"] = list(CLOSED)
        start, end = parse_time(start_date, "start_date"), parse_time(end_date, "end_date")
        after, before = (
            parse_time(updated_after, "updated_after"),
            parse_time(updated_before, "updated_before"),
        )
        window = timedelta(days=s.open311_window_days)
        if start and end:
            if end < start:
                raise _bad("end_date", "end_date 早于 start_date", "end_date is before start_date")
            if end - start > window:
                raise _bad(
                    "end_date",
                    f"start_date 到 end_date 不能超过 {s.open311_window_days} 天",
                    f"start_date..end_date may span at most {s.open311_window_days} days",
                )
        elif start:
            end = start + window
        elif end:
            start = end - window
        elif not (after or before):
            start = datetime.now(SHANGHAI) - window
        if start:
            where.append("c.reported_at >= :start")
            params["start"] = start
        if end:
            where.append("c.reported_at <= :end")
            params["end"] = end
        if after:
            where.append("c.updated_at > :after")
            params["after"] = after
        if before:
            where.append("c.updated_at <= :before")
            params["before"] = before
    size = min(page_size or s.open311_page_max, s.open311_page_max)
    params["limit"], params["offset"] = size, (page - 1) * size
    sql = (
        f"SELECT {_REQUEST_COLUMNS} {_REQUEST_FROM} WHERE {' AND '.join(where) or 'true'} "
        "ORDER BY c.reported_at DESC, c.id DESC LIMIT :limit OFFSET :offset"
    )
    return [request_out(r, lang, extensions) for r in await conn.execute(text(sql), params)]


async def one_request(
    conn: AsyncConnection, case_id: str, lang: Lang, extensions: bool = False
) -> dict[str, Any]:
    found = public_ids.decode(case_id)
    if found is None:
        raise not_found("服务请求", "Service request", case_id)
    row = (
        await conn.execute(
            text(f"SELECT {_REQUEST_COLUMNS} {_REQUEST_FROM} WHERE c.id = :id AND {PUBLISHED}"),
            {"id": found, **published_binds()},
        )
    ).first()
    if row is None:
        raise not_found("服务请求", "Service request", case_id)
    return request_out(row, lang, extensions)


async def token(conn: AsyncConnection, value: str) -> dict[str, Any]:
    try:
        t = uuid.UUID(value)
    except ValueError:
        raise not_found("token", "Token", value) from None
    case_id = (
        await conn.execute(text("SELECT case_id FROM open311_requests WHERE token = :t"), {"t": t})
    ).scalar()
    if case_id is None:
        raise not_found("token", "Token", value)
    return {"service_request_id": public_ids.encode(case_id), "token": str(t)}


# --- the update feed (servicerequestupdates) ----------------------------------------------------

_UPDATES_FROM = """
    FROM case_events e JOIN cases c ON c.id = e.case_id AND c.district_id = e.district_id
    LEFT JOIN areas da ON da.id = c.district_id
"""


async def updates(
    conn: AsyncConnection,
    *,
    lang: Lang,
    jurisdiction: str | None = None,
    service_request_id: str | None = None,
    updated_after: str | None = None,
    updated_before: str | None = None,
    page: int = 1,
    page_size: int | None = None,
) -> list[dict[str, Any]]:
    """Every step of the loop that set a status, oldest first: poll with `updated_after` set to
    the last `updated_datetime` seen (ties are kept apart by update_id)."""
    s = get_settings()
    where = ["e.to_status IS NOT NULL", PUBLISHED]
    params: dict[str, Any] = published_binds()
    district = await district_id(conn, jurisdiction)
    if district is not None:
        where.append("c.district_id = :district")
        params["district"] = district
    if service_request_id:
        where.append("e.case_id = ANY(:ids)")
        params["ids"] = _ids(service_request_id)
    after = parse_time(updated_after, "updated_after")
    before = parse_time(updated_before, "updated_before")
    if after is None and before is None and not service_request_id:
        after = datetime.now(SHANGHAI) - timedelta(days=s.open311_window_days)
    if after:
        where.append("e.at > :after")
        params["after"] = after
    if before:
        where.append("e.at <= :before")
        params["before"] = before
    size = min(page_size or s.open311_page_max, s.open311_page_max)
    params["limit"], params["offset"] = size, (page - 1) * size
    sql = (
        "SELECT e.id, e.case_id, e.at, e.action, e.to_status, c.duplicate_of "
        f"{_UPDATES_FROM} WHERE {' AND '.join(where)} ORDER BY e.at, e.id "
        "LIMIT :limit OFFSET :offset"
    )
    out = []
    for r in await conn.execute(text(sql), params):
        action = label(ACTION_LABELS, r.action, lang)
        state = label(STATUS_LABELS, r.to_status, lang)
        out.append(
            {
                "update_id": public_ids.encode(r.id, "update"),
                "service_request_id": public_ids.encode(r.case_id),
                "status": open_closed(r.to_status),
                "updated_datetime": w3c(r.at),
                "description": f"{action}：{state}" if lang == "zh" else f"{action}: {state}",
                "media_url": None,
                "extended_attributes": {
                    "action": r.action,
                    "internal_status": r.to_status,
                    "internal_status_label": state,
                },
            }
        )
    return out
