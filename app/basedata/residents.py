"""Residents (人员): the personal data of the base data. Identity numbers and phones are sealed
(`app.basedata.crypto`) the moment they arrive; reads show the masked copies, and only a reveal
(fields + purpose, audited) opens them. Who sees what: `app.auth.basedata_scope`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import Request
from sqlalchemy import delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.basedata_scope import PersonView, mask_name, person_view
from app.auth.policy import RULES, Principal
from app.auth.scope import covers, object_chain
from app.basedata import crypto, retention
from app.basedata.checks import birth_of, check_id_number, check_phone
from app.basedata.models import Membership, Resident, Tombstone
from app.basedata.schemas import ResidentCreate, ResidentUpdate
from app.basedata.service import get_household, log_change, recount, tags_of
from app.errors import ApiError, not_found
from app.pii import mask_id_number, mask_phone, mask_text

_COLUMNS = """r.id, r.district_id, r.household_id, r.name, r.gender, r.birth_year, r.id_masked,
       r.phone_masked, r.relation, r.registered, r.living, r.tags, r.status, r.moved_at, r.demo,
       r.created_at, r.updated_at, hh.house_id, b.grid_id"""
_FROM = """FROM residents r
    LEFT JOIN households hh ON hh.id = r.household_id AND hh.district_id = r.district_id
    LEFT JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
    LEFT JOIN buildings b ON b.id = h.building_id"""
_ONE = text(f"SELECT {_COLUMNS} {_FROM} WHERE r.id = :id")


async def sensitive_codes(session: AsyncSession, district_id: int) -> set[str]:
    return {t.code for t in await tags_of(session, district_id) if t.sensitive}


async def _check_tags(
    session: AsyncSession, district_id: int, tags: list[str], may_sensitive: bool
) -> list[str]:
    catalogue = {t.code: t for t in await tags_of(session, district_id) if t.active}
    for i, code in enumerate(tags):
        if code not in catalogue:
            raise ApiError("unknown_tag", field=f"tags[{i}]", detail=f"标签不在本区目录中：{code}")
        if catalogue[code].sensitive and not may_sensitive:
            raise ApiError("sensitive_tag_forbidden", field=f"tags[{i}]")
    return sorted(set(tags))


async def _may_sensitive(session: AsyncSession, who: Principal, kind: str, oid: int) -> bool:
    _, chain, grid, _, _ = await object_chain(session, kind, oid)
    return covers(who, RULES["basedata:sensitive"], chain, grid)


def _seal_into(r: Resident, id_number: str | None, phone: str | None) -> None:
    if id_number is not None:
        r.id_enc, r.key_version = crypto.seal(id_number, "id_number")
        r.id_hash = crypto.keyed_hash(id_number, "id_number")
        r.id_masked = mask_id_number(id_number)
    if phone is not None:
        r.phone_enc, version = crypto.seal(phone, "phone", r.key_version)
        r.key_version = version
        r.phone_hash = crypto.keyed_hash(phone, "phone")
        r.phone_masked = mask_phone(phone)


async def _unique_id(session: AsyncSession, district_id: int, id_number: str, me: int = 0) -> None:
    other = await session.scalar(
        select(Resident.id).where(
            Resident.district_id == district_id,
            Resident.id_hash == crypto.keyed_hash(id_number, "id_number"),
            Resident.id != me,
        )
    )
    if other is not None:
        raise ApiError(
            "duplicate_person",
            field="id_number",
            detail="该身份证号码的人员已登记（一人只能在一户）",
            extra={"resident_id": other},
        )


async def create_resident(
    session: AsyncSession, household_id: int, body: ResidentCreate, who: Principal
) -> int:
    hh = await get_household(session, household_id)
    if hh.ended_at is not None:
        raise ApiError("household_ended", field="household_id")
    id_number = check_id_number(body.id_number) if body.id_number else None
    phone = check_phone(body.phone) if body.phone else None
    if id_number:
        await _unique_id(session, hh.district_id, id_number)
    may = await _may_sensitive(session, who, "household_id", household_id) if body.tags else False
    tags = await _check_tags(session, hh.district_id, body.tags, may)
    year, gender = birth_of(id_number) if id_number else (body.birth_year, body.gender)
    r = Resident(
        district_id=hh.district_id,
        household_id=household_id,
        name=body.name,
        gender=body.gender or gender,
        birth_year=body.birth_year or year,
        relation=body.relation,
        registered=body.registered,
        living=body.living,
        tags=tags,
    )
    _seal_into(r, id_number, phone)
    session.add(r)
    await session.flush()
    session.add(
        Membership(
            district_id=hh.district_id,
            resident_id=r.id,
            household_id=household_id,
            relation=body.relation,
        )
    )
    await log_change(
        session,
        hh.district_id,
        "resident",
        r.id,
        "created",
        who,
        {"household": household_id, "id_number": r.id_masked, "phone": r.phone_masked},
    )
    await recount(session, [hh.grid_id])
    return r.id


async def get_row(session: AsyncSession, resident_id: int) -> Any:
    row = (await session.execute(_ONE, {"id": resident_id})).first()
    if row is None:
        raise not_found("人员", "Resident", resident_id)
    return row


async def view_of(session: AsyncSession, who: Principal, resident_id: int) -> PersonView:
    _, chain, grid, _, depts = await object_chain(session, "resident_id", resident_id)
    return person_view(who, chain, grid, depts)


def resident_out(r: Any, view: PersonView, hidden: set[str]) -> dict[str, Any]:
    tags = list(r.tags or [])
    return {
        "id": r.id,
        "household_id": r.household_id,
        "house_id": r.house_id,
        "grid_id": r.grid_id,
        "name": r.name if view.name_clear else mask_name(r.name),
        "name_masked": not view.name_clear,
        "id_number": r.id_masked,
        "phone": r.phone_masked,
        "gender": r.gender,
        "birth_year": r.birth_year,
        "relation": r.relation,
        "registered": r.registered,
        "living": r.living,
        "tags": tags if view.sensitive_tags else [t for t in tags if t not in hidden],
        "status": r.status,
        "moved_at": r.moved_at,
        "demo": r.demo,
        "created_at": r.created_at,
        "updated_at": r.updated_at,
    }


async def list_grid(
    session: AsyncSession,
    grid_id: int,
    district_id: int,
    *,
    q: str | None,
    tag: str | None,
    id_number: str | None,
    phone: str | None,
    status: str,
    limit: int,
    offset: int,
) -> tuple[list[Any], int]:
    """A grid's residents (masked columns only: nothing is decrypted for a list). `id_number`
    and `phone` search exactly through the keyed hash."""
    where = ["b.grid_id = :grid", "r.district_id = :district", "r.status = :status"]
    binds: dict[str, Any] = {
        "grid": grid_id,
        "district": district_id,
        "status": status,
        "limit": limit,
        "offset": offset,
    }
    if q:
        where.append("r.name LIKE :q")
        binds["q"] = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if tag:
        where.append(":tag = ANY(r.tags)")
        binds["tag"] = tag
    if id_number:
        where.append("r.id_hash = :id_hash")
        binds["id_hash"] = crypto.keyed_hash(check_id_number(id_number), "id_number")
    if phone:
        where.append("r.phone_hash = :phone_hash")
        binds["phone_hash"] = crypto.keyed_hash(check_phone(phone), "phone")
    sql = text(
        f"""SELECT {_COLUMNS}, count(*) OVER () AS total
        FROM residents r
        JOIN households hh ON hh.id = r.household_id AND hh.district_id = r.district_id
        JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
        JOIN buildings b ON b.id = h.building_id
        WHERE {" AND ".join(where)} ORDER BY r.id LIMIT :limit OFFSET :offset"""
    )
    rows = list(await session.execute(sql, binds))
    return rows, (rows[0].total if rows else 0)


async def household_members(session: AsyncSession, household_id: int) -> list[Any]:
    return list(
        await session.execute(
            text(f"SELECT {_COLUMNS} {_FROM} WHERE r.household_id = :hh ORDER BY r.id"),
            {"hh": household_id},
        )
    )


async def update_resident(
    session: AsyncSession, resident_id: int, body: ResidentUpdate, who: Principal
) -> None:
    row = await get_row(session, resident_id)
    if row.name is None:
        raise ApiError("person_removed")
    r = await session.get(Resident, (resident_id, row.district_id))
    assert r is not None
    changed: dict[str, Any] = {}
    for k in ("name", "relation", "registered", "living", "status"):
        if k in body.model_fields_set:
            v = getattr(body, k)
            if v is None:
                raise ApiError("validation_error", field=k, detail=f"{k} 不能为空")
            if getattr(r, k) != v:
                setattr(r, k, v)
                changed[k] = v if k != "name" else mask_name(v)
    if body.status in ("moved_away", "deceased") and "status" in changed:
        r.moved_at = text("now()")  # type: ignore[assignment]
    if body.id_number is not None:
        id_number = check_id_number(body.id_number)
        await _unique_id(session, row.district_id, id_number, resident_id)
        _seal_into(r, id_number, None)
        changed["id_number"] = r.id_masked
    if body.phone is not None:
        _seal_into(r, None, check_phone(body.phone))
        changed["phone"] = r.phone_masked
    if body.tags is not None:
        may = await _may_sensitive(session, who, "resident_id", resident_id)
        hidden = set() if may else await sensitive_codes(session, row.district_id)
        tags = await _check_tags(session, row.district_id, body.tags, may)
        # A caller who cannot see the sensitive tags keeps those already set.
        tags = sorted(set(tags) | {t for t in r.tags if t in hidden})
        if tags != sorted(r.tags):
            r.tags = tags
            changed["tags"] = [t for t in tags if t not in hidden]
    if changed:
        r.updated_at = text("now()")  # type: ignore[assignment]
        await log_change(session, row.district_id, "resident", resident_id, "updated", who, changed)
        await session.flush()
        await recount(session, [row.grid_id] if row.grid_id else [])


async def move(
    session: AsyncSession, resident_id: int, household_id: int, relation: str, who: Principal
) -> None:
    """To another household (in another grid too): the old membership ends, a new one starts."""
    row = await get_row(session, resident_id)
    target = await get_household(session, household_id)
    if target.district_id != row.district_id or target.ended_at is not None:
        raise ApiError(
            "validation_error",
            field="household_id",
            detail="目标户不存在或已迁出（须在同一区）",
            detail_en="The household does not exist, has left, or is in another district",
        )
    await session.execute(
        update(Membership)
        .where(
            Membership.district_id == row.district_id,
            Membership.resident_id == resident_id,
            Membership.to_at.is_(None),
        )
        .values(to_at=text("now()"))
    )
    await session.execute(
        update(Resident)
        .where(Resident.id == resident_id, Resident.district_id == row.district_id)
        .values(household_id=household_id, relation=relation, updated_at=text("now()"))
    )
    session.add(
        Membership(
            district_id=row.district_id,
            resident_id=resident_id,
            household_id=household_id,
            relation=relation,
        )
    )
    await log_change(
        session,
        row.district_id,
        "resident",
        resident_id,
        "moved",
        who,
        {"from": row.household_id, "to": household_id},
    )
    await session.flush()
    await recount(session, [g for g in (row.grid_id, target.grid_id) if g])


async def reveal(
    session: AsyncSession,
    resident_id: int,
    fields: Sequence[str],
    purpose: str,
    who: Principal,
    request: Request,
) -> dict[str, Any]:
    """The clear fields asked for, with the purpose, audited (`pii_viewed`)."""
    row = await get_row(session, resident_id)
    r = await session.get(Resident, (resident_id, row.district_id))
    assert r is not None
    if r.name is None:
        raise ApiError("person_removed")
    out: dict[str, Any] = {"id": resident_id, "purpose": purpose}
    for f in sorted(set(fields)):
        if f == "name":
            out["name"] = r.name
        elif f == "id_number" and r.id_enc is not None and r.key_version is not None:
            out["id_number"] = crypto.open_sealed(r.id_enc, "id_number", r.key_version)
        elif f == "phone" and r.phone_enc is not None and r.key_version is not None:
            out["phone"] = crypto.open_sealed(r.phone_enc, "phone", r.key_version)
    await record(
        session,
        "pii_viewed",
        actor=who,
        request=request,
        object_type="resident",
        object_id=resident_id,
        detail={"fields": sorted(set(fields)), "purpose": mask_text(purpose)},
    )
    return out


async def erase(
    session: AsyncSession, resident_id: int, reason: str, who: Principal, request: Request
) -> Tombstone:
    """A deletion request: the person's row, memberships and case links go; a tombstone (no
    personal data) and an audit record stay."""
    row = await get_row(session, resident_id)
    district = row.district_id
    await session.execute(
        text("UPDATE visits SET resident_id = NULL WHERE district_id = :d AND resident_id = :id"),
        {"d": district, "id": resident_id},
    )
    await session.execute(
        text(
            "UPDATE basedata_changes SET fields = '{}' WHERE district_id = :d "
            "AND object_type = 'resident' AND object_id = :id"
        ),
        {"d": district, "id": resident_id},
    )
    await retention.forget(session, district, resident_id, "erase")
    await session.execute(
        delete(Resident).where(Resident.id == resident_id, Resident.district_id == district)
    )
    t = Tombstone(
        district_id=district,
        resident_id=resident_id,
        grid_id=row.grid_id,
        requested_by=who.user_id,
        reason=mask_text(reason) or "",
    )
    session.add(t)
    await session.flush()
    await log_change(session, district, "resident", resident_id, "erased", who, {})
    await record(
        session,
        "resident_erased",
        actor=who,
        request=request,
        object_type="resident",
        object_id=resident_id,
        detail={"tombstone": t.id, "reason": t.reason},
    )
    await recount(session, [row.grid_id] if row.grid_id else [])
    return t


async def history(session: AsyncSession, resident_id: int) -> dict[str, Any]:
    row = await get_row(session, resident_id)
    changes = await session.execute(
        text(
            "SELECT * FROM basedata_changes WHERE district_id = :d AND object_type = 'resident' "
            "AND object_id = :id ORDER BY at, id"
        ),
        {"d": row.district_id, "id": resident_id},
    )
    members = await session.execute(
        text(
            "SELECT * FROM household_members WHERE district_id = :d AND resident_id = :id "
            "ORDER BY from_at, id"
        ),
        {"d": row.district_id, "id": resident_id},
    )
    return {
        "changes": [dict(c._mapping) for c in changes],
        "households": [dict(m._mapping) for m in members],
    }
