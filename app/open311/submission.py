"""A new Open311 service request (an integrator's POST, or the residents' QR form): checked,
turned into a case through the one case intake, answered with its public id and token."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.cases import intake
from app.cases.schemas import MOBILE, CaseCreate, LocationIn, ResidentIn
from app.db import driver
from app.errors import ApiError
from app.events import outbox
from app.i18n import Lang
from app.open311 import public_ids
from app.open311.keys import Integrator
from app.open311.service import _SERVICES, _bad, attributes, district_id, open_closed, parse_time
from app.schemas import SHANGHAI, parse_id

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
URL = re.compile(r"^https?://[^\s]{1,990}$")
_BUILDING = text(
    """
    SELECT b.id, ST_X(ST_PointOnSurface(b.geom)) AS lon, ST_Y(ST_PointOnSurface(b.geom)) AS lat
    FROM buildings b
    WHERE (CAST(:bid AS bigint) IS NOT NULL AND b.id = :bid)
       OR (CAST(:addr AS text) IS NOT NULL AND (b.address = :addr OR b.name = :addr))
    ORDER BY b.id LIMIT 2
    """
)


def number(value: str | None, field: str, lo: float, hi: float) -> float | None:
    if value is None or value.strip() == "":
        return None
    try:
        f = float(value)
    except ValueError:
        raise _bad(field, f"{field} 应为数字", f"{field} must be a number") from None
    if not lo <= f <= hi:
        raise _bad(field, f"{field} 超出范围", f"{field} is out of range")
    return f


async def build_case(
    session: AsyncSession, form: dict[str, Any], attrs: dict[str, str], lang: Lang
) -> tuple[CaseCreate, dict[str, Any]]:
    """Check a POSTed request (form fields and `attribute[...]`) and turn it into the intake's
    CaseCreate. Returns it and what only the Open311 record keeps (media_url, attributes, email)."""
    code = (form.get("service_code") or "").strip()
    if not code:
        raise _bad("service_code", "缺少 service_code", "service_code is required")
    cat = (await session.execute(_SERVICES, {"code": code})).first()
    if cat is None:
        raise _bad(
            "service_code", f"服务类型不存在或已停用：{code}", f"Unknown or retired service: {code}"
        )
    lat = number(form.get("lat"), "lat", -90, 90)
    lon = number(form.get("long"), "long", -180, 180)
    address = (form.get("address_string") or "").strip() or None
    address_id = (form.get("address_id") or "").strip() or None
    building_id = None
    if (lat is None) != (lon is None):
        raise _bad("lat,long", "lat 与 long 须同时提供", "Send both lat and long")
    if lat is None:
        building = parse_id(address_id)
        if address_id is not None and building is None:
            raise _bad("address_id", "address_id 应为楼栋编号", "address_id is a building id")
        if not (address or address_id):
            raise _bad(
                "lat,long",
                "须提供位置：lat/long（WGS84）、address_string 或 address_id",
                "A location is required: lat/long (WGS84), address_string or address_id",
            )
        hits = (
            await session.execute(
                _BUILDING,
                {
                    "bid": building,
                    "addr": address if not address_id else None,
                },
            )
        ).all()
        if len(hits) != 1:
            raise _bad(
                "address_string",
                "无法唯一确定该地址的位置，请提供 lat/long",
                "The address does not name exactly one known building; send lat/long",
            )
        building_id, lon, lat = hits[0].id, hits[0].lon, hits[0].lat
    known = {a["code"]: a for a in attributes(cat.kind, lang)}
    for k in attrs:
        if k not in known:
            raise _bad(f"attribute[{k}]", f"未知属性：{k}", f"Unknown attribute: {k}")
    urgency = attrs.get("urgency") or "normal"
    if urgency not in ("normal", "urgent", "critical"):
        raise _bad("attribute[urgency]", "urgency 取值无效", "urgency is not one of the values")
    occurred = parse_time(attrs.get("occurred_at"), "attribute[occurred_at]")
    if occurred is not None and occurred > datetime.now(SHANGHAI) + timedelta(minutes=10):
        raise _bad("attribute[occurred_at]", "发生时间不能在未来", "occurred_at is in the future")
    facility = (attrs.get("facility_code") or "").strip()
    if len(facility) > 40:
        raise _bad("attribute[facility_code]", "部件编号过长", "facility_code is too long")
    description = (form.get("description") or "").strip()
    if len(description) > 4000:
        raise _bad("description", "描述不能超过 4000 字", "description is at most 4000 characters")
    if facility:
        description = f"{description}\n【部件编号：{facility}】".strip()
    title = (attrs.get("title") or "").strip() or (
        description.splitlines()[0][:30] if description else cat.name
    )
    if len(title) > 200:
        raise _bad("attribute[title]", "标题不能超过 200 字", "title is at most 200 characters")
    media_url = (form.get("media_url") or "").strip() or None
    if media_url and not URL.match(media_url):
        raise _bad("media_url", "media_url 应为 http(s) 链接", "media_url must be an http(s) URL")
    email = (form.get("email") or "").strip() or None
    if email and (len(email) > 200 or not EMAIL.match(email)):
        raise _bad("email", "email 格式无效", "email is not valid")
    phone = (form.get("phone") or "").strip().replace(" ", "") or None
    if phone and not re.match(MOBILE, phone):
        raise _bad(
            "phone", "phone 应为手机号或带区号的固话", "phone must be a Chinese phone number"
        )
    name = ((form.get("last_name") or "").strip() + (form.get("first_name") or "").strip())[:100]
    try:
        data = CaseCreate(
            category=code,
            title=title,
            description=description,
            location=LocationIn(lon=lon, lat=lat),
            address=address[:300] if address else None,
            building_id=building_id,
            occurred_at=occurred,
            urgency=urgency,  # type: ignore[arg-type]
            resident=ResidentIn(name=name or None, phone=phone) if (name or phone) else None,
        )
    except ValidationError as e:  # anything the checks above did not already name
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ())) or "?"
        raise _bad(where, f"{where}：{first.get('msg')}", f"{where}: {first.get('msg')}") from None
    extra = {
        "media_url": media_url,
        "attributes": {k: v for k, v in attrs.items() if v != ""},
        "email": email,
    }
    return data, extra


_RECORD = text(
    """
    INSERT INTO open311_requests (case_id, district_id, key_id, token, media_url, attributes, email)
    VALUES (:case, :district, :key, :token, :media, CAST(:attrs AS jsonb), :email)
    """
)


async def submit(
    session: AsyncSession,
    who: Integrator,
    data: CaseCreate,
    extra: dict[str, Any],
    *,
    jurisdiction: str | None,
    lang: Lang,
    token: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Insert the case through the intake (not committed; its `case.reported` event is published
    at commit), record what Open311 adds. The answer is the spec's RequestResponse."""
    district = await district_id(session, jurisdiction)
    row, dups = await intake.insert_case(
        await driver(await session.connection()), data, who.user_id, channel=who.channel
    )
    outbox.queued(session)
    if district is not None and row.district_id != district:
        raise _bad(
            "jurisdiction_id",
            "该位置不在 jurisdiction_id 所指的区县内",
            "The location is not in the jurisdiction_id given",
        )
    if not who.covers(row.community_id, row.street_id, row.district_id):
        raise ApiError(
            "forbidden",
            field="api_key",
            detail="该 api_key 不能在此位置上报",
            detail_en="This api_key may not report at this location",
        )
    tok = token or uuid.uuid4()
    await session.execute(
        _RECORD,
        {
            "case": row.id,
            "district": row.district_id,
            "key": who.key_id,
            "token": tok,
            "media": extra.get("media_url"),
            "attrs": orjson.dumps(extra.get("attributes") or {}).decode(),
            "email": extra.get("email"),
        },
    )
    if lang == "en":
        notice = f"Received: case number {row.number}."
        if dups:
            notice += f" {len(dups)} similar open case(s) nearby."
    else:
        notice = f"已受理，事件编号 {row.number}。"
        if dups:
            notice += f"附近已有 {len(dups)} 件同类事件在办。"
    return {
        "service_request_id": public_ids.encode(row.id),
        "token": str(tok),
        "service_notice": notice,
        "extended_attributes": {
            "case_number": row.number,
            "channel": row.channel,
            "unlocated": row.unlocated,
            "duplicates": [
                {
                    "service_request_id": public_ids.encode(d["id"]),
                    "status": open_closed(d["status"]),
                    "distance_m": d["distance_m"],
                }
                for d in dups
            ],
        },
    }
