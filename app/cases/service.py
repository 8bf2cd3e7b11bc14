"""Cases: reading (scoped by the policy), duplicates, placing unlocated cases."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth import scope
from app.auth.policy import RULES, Principal
from app.cases import managed
from app.db import is_citus
from app.errors import ApiError, not_found
from app.events.outbox import catch_up, changed
from app.geometry import CRS, point_out
from app.i18n import ACTION_LABELS, ROLE_LABELS, STATUS_LABELS, URGENCY_LABELS, Lang, label
from app.pii import mask_json, mask_phone, mask_text
from app.schemas import to_local
from app.stats.definitions import indicator_filter

CASE_COLUMNS = """
    c.id, c.number, c.category_code, cat.name AS category_name, cat.class_code,
    cc.name AS class_name, c.title, c.description, c.status, c.urgency, c.channel,
    ST_X(c.location) AS lon, ST_Y(c.location) AS lat, c.accuracy_m, c.address, c.building_id,
    c.occurred_at, c.reported_at, c.reporter_id, u.display_name AS reporter_name,
    c.grid_id, g.code AS grid_code, g.name AS grid_name,
    c.community_id, ca.code AS community_code, ca.name AS community_name,
    c.street_id, sa.code AS street_code, sa.name AS street_name,
    c.district_id, da.code AS district_code, da.name AS district_name,
    c.unlocated, c.nearest_grid_id, ng.code AS nearest_code, ng.name AS nearest_name,
    c.nearest_distance_m, c.off_patch_m, c.evidence_flags, c.duplicate_of,
    c.resident_name, c.resident_phone, c.version, c.updated_at, c.closed_at,
    c.change_seq, c.prev_grid_id, c.lead_department_id, ld.code AS lead_code,
    ld.name AS lead_name, c.first_unit, c.rework_count, c.reopen_count, c.satisfaction, c.on_spot
"""
CASE_FROM = """
    FROM cases c
    JOIN categories cat ON cat.code = c.category_code
    JOIN category_classes cc ON cc.code = cat.class_code
    LEFT JOIN users u ON u.id = c.reporter_id
    LEFT JOIN grids g ON g.id = c.grid_id
    LEFT JOIN areas ca ON ca.id = c.community_id
    LEFT JOIN areas sa ON sa.id = c.street_id
    LEFT JOIN areas da ON da.id = c.district_id
    LEFT JOIN grids ng ON ng.id = c.nearest_grid_id
    LEFT JOIN departments ld ON ld.id = c.lead_department_id
"""

_OVERDUE = (
    "EXISTS (SELECT 1 FROM case_assignments oa WHERE oa.case_id = c.id "
    "AND oa.district_id = c.district_id AND ("
    "(oa.state = 'dispatched' AND oa.sign_in_due < now()) OR "
    "(oa.state IN ('handling', 'rework') AND oa.handle_due < now())))"
)
"""A case is overdue while one of its departments is late to sign in or to hand in its work."""

PII_ROLES = frozenset(
    {"admin", "centre", "street", "community", "governance", "grid_leader", "grid_worker"}
)
"""Roles that talk to residents and need their phone numbers unmasked (departments do not)."""


def _ref(id_: int | None, code: str | None, name: str | None) -> dict[str, Any] | None:
    return None if id_ is None else {"id": id_, "code": code, "name": name}


def case_out(
    r: Any,
    lang: Lang,
    crs: CRS = CRS.WGS84,
    reveal_pii: bool = False,
    masked_text: bool = False,
) -> dict[str, Any]:
    """A case row as the API's JSON (times in Asia/Shanghai). `masked_text`: for readers who see
    masked personal data (`sees_pii` false), the free text goes through the PII detector."""
    lon, lat = point_out(r.lon, r.lat, crs)
    free: Any = mask_text if masked_text else _same
    resident = None
    if r.resident_name or r.resident_phone:
        resident = {
            "name": r.resident_name,
            "phone": r.resident_phone if reveal_pii else mask_phone(r.resident_phone),
        }
    return {
        "id": r.id,
        "number": r.number,
        "category": {
            "code": r.category_code,
            "name": r.category_name,
            "class_code": r.class_code,
            "class_name": r.class_name,
        },
        "title": free(r.title),
        "description": free(r.description),
        "status": r.status,
        "status_label": label(STATUS_LABELS, r.status, lang),
        "urgency": r.urgency,
        "urgency_label": label(URGENCY_LABELS, r.urgency, lang),
        "channel": r.channel,
        "location": {"lon": lon, "lat": lat, "crs": crs.value, "accuracy_m": r.accuracy_m},
        "address": free(r.address),
        "building_id": r.building_id,
        "occurred_at": to_local(r.occurred_at) if r.occurred_at else None,
        "reported_at": to_local(r.reported_at),
        "reporter": {"id": r.reporter_id, "name": r.reporter_name} if r.reporter_id else None,
        "grid": _ref(r.grid_id, r.grid_code, r.grid_name),
        "community": _ref(r.community_id, r.community_code, r.community_name),
        "street": _ref(r.street_id, r.street_code, r.street_name),
        "district": _ref(r.district_id, r.district_code, r.district_name),
        "unlocated": r.unlocated,
        "nearest": {
            "grid": _ref(r.nearest_grid_id, r.nearest_code, r.nearest_name),
            "distance_m": round(r.nearest_distance_m, 1),
        }
        if r.nearest_grid_id
        else None,
        "off_patch_m": r.off_patch_m,
        "evidence_flags": list(r.evidence_flags or []),
        "duplicate_of": r.duplicate_of,
        "lead_department": _ref(r.lead_department_id, r.lead_code, r.lead_name),
        "first_unit": r.first_unit,
        "on_spot": r.on_spot,
        "rework_count": r.rework_count,
        "reopen_count": r.reopen_count,
        "satisfaction": r.satisfaction,
        "resident": resident,
        "version": r.version,
        "updated_at": to_local(r.updated_at),
        "closed_at": to_local(r.closed_at) if r.closed_at else None,
    }


def _same(value: Any) -> Any:
    return value


def sees_pii(who: Principal | None) -> bool:
    return who is not None and bool(who.roles & PII_ROLES)


# --- reading -------------------------------------------------------------------------------------


_FETCH = text(f"SELECT {CASE_COLUMNS} {CASE_FROM} WHERE c.id = :id AND c.district_id = :district")


async def fetch_case(conn: AsyncConnection | AsyncSession, case_id: int) -> Any:
    district = await scope.district_of(conn, case_id)
    row = (
        (await conn.execute(_FETCH, {"id": case_id, "district": district})).first()
        if district is not None
        else None
    )
    if row is None:
        raise not_found("事件", "Case", case_id)
    return row


def encode_cursor(*parts: Any) -> str:
    raw = "~".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, n: int) -> list[str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = raw.split("~")
        if len(parts) != n:
            raise ValueError
        return parts
    except (ValueError, UnicodeDecodeError):
        raise ApiError(
            "validation_error", field="cursor", detail="cursor 无效", detail_en="Invalid cursor"
        ) from None


async def list_cases(
    conn: AsyncConnection,
    who: Principal,
    *,
    filters: dict[str, Any],
    cursor: str | None,
    limit: int,
) -> tuple[list[Any], str | None]:
    """Newest first, keyset paging on (reported_at, id)."""
    mine = {p.department_id for p in who.posts_for(RULES["cases:read"]) if p.department_id}
    if filters.get("department_id") in mine:
        # A department's own queue: the department filter below already limits it to what the
        # caller may see (and an OR of EXISTS would keep the planner from a semi-join).
        where: list[str] = ["true"]
        params: dict[str, Any] = {}
    else:
        vis = (await scope.resolve(conn, who)).sql("c")
        where, params = [vis.sql], dict(vis.binds)
    for name, sql in (
        ("status", "c.status = ANY(:status)"),
        ("category", "c.category_code = ANY(:category)"),
        ("grid_id", "c.grid_id = :grid_id"),
        ("community_id", "c.community_id = :community_id"),
        ("street_id", "c.street_id = :street_id"),
        ("district_id", "c.district_id = :district_id"),
        ("reporter_id", "c.reporter_id = :reporter_id"),
        ("since", "c.reported_at >= :since"),
        ("until", "c.reported_at < :until"),
        ("unlocated", "c.unlocated = :unlocated"),
        ("channel", "c.channel = ANY(:channel)"),
        (
            "department_id",
            "EXISTS (SELECT 1 FROM case_assignments fa WHERE fa.case_id = c.id "
            "AND fa.district_id = c.district_id AND fa.department_id = :department_id AND fa.state <> 'withdrawn')",
        ),
    ):
        if filters.get(name) is not None:
            where.append(sql)
            params[name] = filters[name]
    if filters.get("overdue") is not None:
        # Plain (NOT) EXISTS: the planner can turn it into a semi-join on the assignments.
        where.append(_OVERDUE if filters["overdue"] else f"NOT {_OVERDUE}")
    if filters.get("indicator") is not None:
        # An evaluation figure's cases (app.stats): the same condition on the same fact row,
        # once the facts have caught up with the changes (as the figure's own reader does).
        await catch_up(conn)
        where.append(indicator_filter(filters["indicator"], filters.get("department_id")))
    if filters.get("bbox"):
        where.append("c.location && ST_MakeEnvelope(:x1, :y1, :x2, :y2, 4326)")
        params.update(zip(("x1", "y1", "x2", "y2"), filters["bbox"], strict=True))
    if filters.get("q"):
        where.append(
            "(c.title ILIKE :q OR c.description ILIKE :q OR c.number = :qn OR c.address ILIKE :q)"
        )
        params["q"] = "%" + filters["q"].replace("\\", "\\\\").replace("%", "\\%") + "%"
        params["qn"] = filters["q"]
    if cursor:
        ts, cid = decode_cursor(cursor, 2)
        try:
            params["cur_ts"], params["cur_id"] = datetime.fromisoformat(ts), int(cid)
        except ValueError:
            raise ApiError(
                "validation_error", field="cursor", detail="cursor 无效", detail_en="Invalid cursor"
            ) from None
        where.append("(c.reported_at, c.id) < (:cur_ts, :cur_id)")
    params["limit"] = limit + 1
    sql = (
        f"SELECT {CASE_COLUMNS} {CASE_FROM} WHERE {' AND '.join(where)} "
        "ORDER BY c.reported_at DESC, c.id DESC LIMIT :limit"
    )
    rows = list((await conn.execute(text(sql), params)).all())
    nxt = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        nxt = encode_cursor(last.reported_at.isoformat(), last.id)
    return rows, nxt


_TIMELINE = text(
    """
    SELECT e.id, e.at, e.action, e.actor_id, u.display_name AS actor_name, e.from_status,
           e.to_status, e.note, e.detail, e.post_id, p.role AS post_role, p.title AS post_title,
           coalesce((SELECT array_agg(a.id ORDER BY a.id) FROM attachments a
                     WHERE a.event_id = e.id AND a.district_id = :district), '{}')
           AS attachments
    FROM case_events e LEFT JOIN users u ON u.id = e.actor_id
    LEFT JOIN posts p ON p.id = e.post_id
    WHERE e.case_id = :id AND e.district_id = :district ORDER BY e.at, e.id
    """
)
_ATTACHMENTS = text(
    """
    SELECT id, event_id, media_type, bytes, width, height, taken_at, taken_lon, taken_lat,
           flags, created_at
    FROM attachments WHERE case_id = :id AND district_id = :district ORDER BY id
    """
)


async def timeline(
    conn: AsyncConnection | AsyncSession, case_id: int, lang: Lang, masked_text: bool = False
) -> list[dict[str, Any]]:
    """The case's steps; `masked_text`: notes and details through the PII detector."""
    free: Any = mask_text if masked_text else _same
    structured: Any = mask_json if masked_text else _same
    return [
        {
            "id": e.id,
            "at": to_local(e.at),
            "action": e.action,
            "action_label": label(ACTION_LABELS, e.action, lang),
            "actor": {"id": e.actor_id, "name": e.actor_name} if e.actor_id else None,
            "post": {
                "id": e.post_id,
                "role": e.post_role,
                "role_label": label(ROLE_LABELS, e.post_role, lang),
                "title": e.post_title,
            }
            if e.post_id
            else None,
            "from_status": e.from_status,
            "to_status": e.to_status,
            "note": free(e.note),
            "detail": structured(e.detail or {}),
            "attachments": list(e.attachments),
        }
        for e in await conn.execute(
            _TIMELINE, {"id": case_id, "district": await scope.district_of(conn, case_id)}
        )
    ]


def attachment_out(a: Any) -> dict[str, Any]:
    return {
        "id": a.id,
        "event_id": a.event_id,
        "media_type": a.media_type,
        "bytes": a.bytes,
        "width": a.width,
        "height": a.height,
        "taken_at": to_local(a.taken_at) if a.taken_at else None,
        "taken_lon": a.taken_lon,
        "taken_lat": a.taken_lat,
        "flags": list(a.flags or []),
        "url": f"/api/v1/attachments/{a.id}",
        "thumbnail_url": f"/api/v1/attachments/{a.id}/thumbnail",
        "created_at": to_local(a.created_at),
    }


async def attachments(conn: AsyncConnection | AsyncSession, case_id: int) -> list[dict[str, Any]]:
    district = await scope.district_of(conn, case_id)
    return [
        attachment_out(a)
        for a in await conn.execute(_ATTACHMENTS, {"id": case_id, "district": district})
    ]


# --- changes -------------------------------------------------------------------------------------

_EVENT = text(
    """
    WITH ev AS (
        INSERT INTO case_events (case_id, district_id, actor_id, action, from_status, to_status,
                                 note, detail)
        VALUES (:case_id, :district, :actor, :action, :from_status, :to_status, :note,
                CAST(:detail AS jsonb))
        RETURNING id
    ),
    changed AS (
        INSERT INTO case_changes (district_id, case_id) VALUES (:district, :case_id)
    )
    SELECT id FROM ev
    """
)
"""A timeline step, and the case marked for its facts to be recomputed (migration 0025): every
change to a case writes a step."""


async def add_event(
    session: AsyncSession,
    case_id: int,
    actor: int | None,
    action: str,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str = "",
    detail: str = "{}",
) -> int:
    return int(
        (
            await session.execute(
                _EVENT,
                {
                    "case_id": case_id,
                    "district": await scope.district_of(session, case_id),
                    "actor": actor,
                    "action": action,
                    "from_status": from_status,
                    "to_status": to_status,
                    "note": note,
                    "detail": detail,
                },
            )
        ).scalar_one()
    )


_LOCK_FOR_MERGE = text(
    "SELECT id, status, category_code, duplicate_of, district_id, managed_by FROM cases "
    "WHERE id = :id AND district_id = :d FOR UPDATE"
)


async def mark_duplicate(
    session: AsyncSession, case_id: int, of: int, who: Principal, note: str
) -> None:
    """Link the copy to the original and close it; its photos and reporter stay with it."""
    if of == case_id:
        raise ApiError(
            "validation_error",
            field="of",
            detail="不能标记为自身的重复件",
            detail_en="A case cannot duplicate itself",
        )
    # Each case locked in its own district (on Citus: one shard each, a router statement).
    rows = {}
    for i in (case_id, of):
        district = await scope.district_of(session, i)
        row = (
            await session.execute(_LOCK_FOR_MERGE, {"id": i, "d": district})
            if district is not None
            else None
        )
        rows[i] = row.first() if row is not None else None
    copy, original = rows.get(case_id), rows.get(of)
    if copy is None:
        raise not_found("事件", "Case", case_id)
    if original is None or not await _visible(session, who, of):
        raise ApiError(
            "validation_error",
            field="of",
            detail=f"原事件不存在：{of}",
            detail_en=f"No such case: {of}",
        )
    if copy.status in ("closed", "rejected"):
        raise ApiError(
            "conflict",
            detail="该事件已结案，不能再标记为重复件",
            detail_en="The case is already closed",
        )
    kept = managed.refusal("marked_duplicate", copy.managed_by)
    if kept is not None:  # closing it as a copy would bypass its kind's lifecycle
        raise kept
    if original.district_id != copy.district_id:
        # A district's cases stay in the district (the distribution key, migration 0014).
        raise ApiError(
            "validation_error",
            field="of",
            detail="原事件属于其他区，不能合并",
            detail_en="That case belongs to another district; cases merge within a district",
        )
    if original.duplicate_of is not None:
        raise ApiError(
            "validation_error",
            field="of",
            detail="原事件本身是重复件，请指向最初的事件",
            detail_en="That case is itself a duplicate; point at the original",
        )
    await session.execute(
        text(
            "UPDATE cases SET duplicate_of = :of, status = 'closed', closed_at = now(), "
            "updated_at = now(), version = version + 1, change_seq = sync_number() "
            "WHERE id = :id AND district_id = :d"
        ),
        {"of": of, "id": case_id, "d": copy.district_id},
    )
    await session.execute(
        text(
            "UPDATE cases SET updated_at = now(), version = version + 1, change_seq = sync_number() "
            "WHERE id = :of AND district_id = :d"
        ),
        {"of": of, "d": original.district_id},
    )
    await add_event(
        session,
        case_id,
        who.user_id,
        "marked_duplicate",
        from_status=copy.status,
        to_status="closed",
        note=note,
        detail=orjson.dumps({"of": of}).decode(),
    )
    await add_event(
        session,
        of,
        who.user_id,
        "duplicate_received",
        note=note,
        detail=orjson.dumps({"duplicate": case_id}).decode(),
    )


async def _visible(session: AsyncSession, who: Principal, case_id: int) -> bool:
    found, chain, grid_id, owner, depts = await scope.object_chain(session, "case_id", case_id)
    return found and scope.covers(who, RULES["cases:read"], chain, grid_id, owner, depts)


ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "cross_district_move": (
        409,
        "事件不能移到其他区",
        "A case cannot move to another district",
    ),
}
"""This module's error codes (registered in `app.extensions`)."""


_PLACE_SQL = """
UPDATE cases SET prev_grid_id = grid_id, grid_id = :g, community_id = :c, street_id = :s,
       {district}unlocated = false, updated_at = now(), version = version + 1,
       change_seq = sync_number()
WHERE id = :id AND district_id = :old
"""
_PLACE = text(_PLACE_SQL.format(district=""))
_PLACE_ELSEWHERE = text(_PLACE_SQL.format(district="district_id = :d, "))


async def place(
    session: AsyncSession, case_id: int, grid_id: int, who: Principal, note: str
) -> None:
    """The centre puts an unlocated case (or a misplaced one) into a grid."""
    district = await scope.district_of(session, case_id)
    case = (
        (
            await session.execute(
                text(
                    "SELECT id, grid_id, status, district_id FROM cases "
                    "WHERE id = :id AND district_id = :d FOR UPDATE"
                ),
                {"id": case_id, "d": district},
            )
        ).first()
        if district is not None
        else None
    )
    if case is None:
        raise not_found("事件", "Case", case_id)
    target = (
        await session.execute(
            text(
                """
        SELECT g.id, c.id AS community_id, s.id AS street_id, d.id AS district_id
        FROM grids g JOIN areas c ON c.id = g.community_id
        LEFT JOIN areas s ON s.id = c.parent_id LEFT JOIN areas d ON d.id = s.parent_id
        WHERE g.id = :g AND g.deleted_at IS NULL
        """
            ),
            {"g": grid_id},
        )
    ).first()
    if target is None:
        raise ApiError(
            "validation_error",
            field="grid_id",
            detail=f"网格不存在：{grid_id}",
            detail_en=f"No such grid: {grid_id}",
        )
    _, chain, _, _, _ = await scope.object_chain(session, "grid_id", grid_id)
    if not scope.covers(who, RULES["cases:place"], chain, grid_id):
        raise ApiError(
            "validation_error",
            field="grid_id",
            detail=f"网格不存在：{grid_id}",
            detail_en=f"No such grid: {grid_id}",
        )
    if target.district_id != district and await is_citus(session):
        # Citus refuses to change a row's distribution column: a case stays in its district's
        # shard group (its rows, timeline and figures with it).
        raise ApiError(
            "cross_district_move",
            field="grid_id",
            detail="本系统按区分布部署，事件不能移到其他区的网格：请由目标区重新登记并将本事件作为重复件合并或退回",
            detail_en="On a cluster distributed by district a case cannot move to another "
            "district's grid: have the target district register it, and close this one",
        )
    # The district is set only when it changes (plain PostgreSQL moves the case's rows along,
    # migration 0024); Citus refuses any assignment to the distribution column, even of the
    # same value, so placing within the district must not name it.
    await session.execute(
        _PLACE_ELSEWHERE if target.district_id != district else _PLACE,
        {
            "old": district,
            "g": target.id,
            "c": target.community_id,
            "s": target.street_id,
            "d": target.district_id,
            "id": case_id,
        },
    )
    scope.remember_district(session, case_id, target.district_id)
    if target.district_id != district:
        # Its rows moved with it (and its merged copies, migration 0024), but its evaluation
        # facts still name the old district: rewritten now, in this transaction, so that their
        # key to the case holds at commit (and the rollups move with them).
        copies = (
            await session.execute(
                text(
                    "SELECT id FROM cases WHERE district_id = :d "
                    "AND (id = :id OR duplicate_of = :id)"
                ),
                {"d": target.district_id, "id": case_id},
            )
        ).scalars()
        await changed(session, list(copies))
        await catch_up(session, sorted({int(case.district_id), int(target.district_id)}))
    await add_event(
        session,
        case_id,
        who.user_id,
        "placed",
        note=note,
        detail=orjson.dumps({"from_grid": case.grid_id, "to_grid": grid_id}).decode(),
    )
