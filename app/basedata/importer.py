"""Import of a ledger (台账) into a grid: every row validated (the building in this grid, the
house, the ID number's check digit, the phone, the relation, the tags, a person twice in the file
or already in another household), **every** error reported at once with its row number, and
nothing stored unless there is none (all or nothing, in the request's transaction). `dry_run`
validates and counts only. Progress of a large file goes to the log (`basedata import`, every
10,000 rows) and, from `wangge import-basedata`, to the terminal."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import RULES, Principal
from app.auth.scope import covers, object_chain
from app.basedata import crypto
from app.basedata.checks import (
    birth_of,
    id_number_problem,
    normalise_id,
    normalise_phone,
    phone_problem,
)
from app.basedata.ledger import RELATIONS, TAG_SPLIT, USES, column_map, yes_no
from app.basedata.service import district_of_area, recount, tags_of
from app.db import raw_of
from app.errors import ApiError, FieldError, not_found
from app.pii import mask_id_number, mask_phone

log = logging.getLogger("wangge.basedata")
MAX_REPORTED = 1000
PROGRESS_EVERY = 10_000
ANALYZE_AFTER = 1_000
Progress = Callable[[str, int, int], None]


@dataclass
class Plan:
    houses: dict[tuple[int, str, int, str], int | None] = field(default_factory=dict)
    """(building, unit, floor, room) → house id (None: to create)."""
    households: dict[tuple[int, str, int, str, str], list[dict[str, Any]]] = field(
        default_factory=dict
    )
    errors: list[FieldError] = field(default_factory=list)
    error_count: int = 0
    rows: int = 0

    def error(self, row: int, fld: str, code: str, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_REPORTED:
            self.errors.append(
                FieldError(
                    field=f"rows[{row}].{fld}", code=code, message=message, extra={"row": row}
                )
            )


async def validate(
    session: AsyncSession,
    grid_id: int,
    table: list[list[str]],
    mapping: dict[str, str] | None,
    who: Principal,
    create_houses: bool,
    progress: Progress | None = None,
) -> tuple[Plan, int]:
    """(the plan, the district)."""
    if not table:
        raise ApiError("import_format", field="file", detail="文件为空")
    cols = column_map(table[0], mapping)
    found, chain, _, _, _ = await object_chain(session, "grid_id", grid_id)
    if not found:
        raise not_found("网格", "Grid", grid_id)
    district = await district_of_area(session, chain[0])
    may_sensitive = covers(who, RULES["basedata:sensitive"], chain, grid_id)
    buildings = {
        r.name: r.id
        for r in await session.execute(
            text("SELECT id, name FROM buildings WHERE grid_id = :g"), {"g": grid_id}
        )
    }
    houses = {
        (r.building_id, r.unit, r.floor, r.room): r.id
        for r in await session.execute(
            text(
                "SELECT h.id, h.building_id, h.unit, h.floor, h.room FROM houses h "
                "JOIN buildings b ON b.id = h.building_id "
                "WHERE b.grid_id = :g AND h.district_id = :d"
            ),
            {"g": grid_id, "d": district},
        )
    }
    catalogue = {t.code: t for t in await tags_of(session, district) if t.active}
    by_name = {t.name: t for t in catalogue.values()}
    plan = Plan()
    seen: dict[bytes, int] = {}
    total = len(table) - 1

    def get(row: list[str], f: str) -> str:
        i = cols.get(f)
        return row[i].strip() if i is not None and i < len(row) else ""

    for n, row in enumerate(table[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        plan.rows += 1
        if progress and plan.rows % PROGRESS_EVERY == 0:
            progress("validated", plan.rows, total)
        bname, unit, room, name = (
            get(row, "building"),
            get(row, "unit"),
            get(row, "room"),
            get(row, "name"),
        )
        ok = True
        b = buildings.get(bname)
        if b is None:
            plan.error(
                n, "building", "unknown_building", f"楼栋不存在或不在本网格：{bname or '（空）'}"
            )
            ok = False
        try:
            floor = int(get(row, "floor"))
            if not -5 <= floor <= 200:
                raise ValueError
        except ValueError:
            plan.error(n, "floor", "invalid_floor", "楼层应为 -5 到 200 的整数")
            ok, floor = False, 0
        if not room or len(room) > 20 or len(unit) > 20:
            plan.error(n, "room", "invalid_room", "房号不能为空，单元和房号不超过20个字符")
            ok = False
        if not name or len(name) > 50:
            plan.error(n, "name", "invalid_name", "姓名不能为空且不超过50个字符")
            ok = False
        use = get(row, "use")
        use_code = USES.get(use, use) if use else "residential"
        if use_code not in USES.values():
            plan.error(n, "use", "invalid_use", f"房屋用途应为：{'、'.join(USES)}")
            ok = False
        relation = get(row, "relation")
        rel = RELATIONS.get(relation, relation) if relation else "other"
        if rel not in RELATIONS.values():
            plan.error(n, "relation", "invalid_relation", f"与户主关系无法识别：{relation}")
            ok = False
        flags = {}
        for f, label in (("registered", "户籍"), ("living", "实有")):
            v = yes_no(get(row, f), True)
            if v is None:
                plan.error(n, f, "invalid_flag", f"{label}应为“是”或“否”")
                ok = False
            flags[f] = bool(v)
        idn = normalise_id(get(row, "id_number"))
        id_hash = None
        if idn:
            problem = id_number_problem(idn)
            if problem:
                plan.error(n, "id_number", "invalid_id_number", f"身份证号码无效：{problem}")
                ok = False
            else:
                id_hash = crypto.keyed_hash(idn, "id_number")
                if id_hash in seen:
                    plan.error(
                        n,
                        "id_number",
                        "duplicate_person",
                        f"与第 {seen[id_hash]} 行是同一人（身份证号相同）",
                    )
                    ok = False
                else:
                    seen[id_hash] = n
        phone = normalise_phone(get(row, "phone"))
        if phone and phone_problem(phone):
            plan.error(n, "phone", "invalid_phone", f"电话号码格式无效：{phone_problem(phone)}")
            ok = False
        tags: list[str] = []
        for t in (x for x in TAG_SPLIT.split(get(row, "tags")) if x):
            tag = catalogue.get(t) or by_name.get(t)
            if tag is None:
                plan.error(n, "tags", "unknown_tag", f"标签不在本区目录中：{t}")
                ok = False
            elif tag.sensitive and not may_sensitive:
                plan.error(n, "tags", "sensitive_tag_forbidden", f"无权设置敏感标签：{t}")
                ok = False
            else:
                tags.append(tag.code)
        if not ok or b is None:
            continue
        key = (b, unit, floor, room)
        if key not in houses:
            if not create_houses:
                plan.error(
                    n, "room", "unknown_house", f"房屋未登记：{bname} {unit}单元 {floor}层 {room}"
                )
                continue
            houses[key] = None
        plan.houses[key] = houses[key]
        plan.households.setdefault((*key, get(row, "household")), []).append(
            {
                "row": n,
                "name": name,
                "id_number": idn or None,
                "id_hash": id_hash,
                "phone": phone or None,
                "relation": rel,
                "use": use_code,
                "tags": sorted(set(tags)),
                **flags,
            }
        )
    # a person already registered in another household of the district
    hashes = list(seen)
    for i in range(0, len(hashes), 5000):
        for r in await session.execute(
            text("SELECT id_hash, id FROM residents WHERE district_id = :d AND id_hash = ANY(:h)"),
            {"d": district, "h": hashes[i : i + 5000]},
        ):
            plan.error(
                seen[r.id_hash],
                "id_number",
                "duplicate_person",
                f"该人员已登记在其他户（人员 {r.id}）",
            )
    plan.errors.sort(key=lambda e: (e.extra or {}).get("row", 0))
    return plan, district


async def apply(
    session: AsyncSession,
    plan: Plan,
    district: int,
    grid_id: int,
    who: Principal,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Store a valid plan (the caller's unit of work commits it, or nothing)."""
    if not plan.households:
        return {"houses_created": 0, "households": 0, "residents": 0}
    new_houses = [k for k, v in plan.houses.items() if v is None]
    uses = {(hk[0], hk[1], hk[2], hk[3]): m[0]["use"] for hk, m in plan.households.items()}
    conn = await session.connection()
    async with raw_of(conn) as raw:
        # COPY (binary) with ids drawn from each table's sequence: one round trip per table.
        house_ids = await _ids(raw, "houses", len(new_houses))
        await raw.copy_records_to_table(
            "houses",
            columns=["id", "district_id", "building_id", "unit", "floor", "room", "use"],
            records=[
                (i, district, k[0], k[1], k[2], k[3], uses.get(k, "residential"))
                for i, k in zip(house_ids, new_houses, strict=True)
            ],
        )
        plan.houses.update(zip(new_houses, house_ids, strict=True))
        if len(new_houses) > ANALYZE_AFTER:
            # Fresh statistics before the next COPY checks its foreign keys against these rows
            # (a table the planner believes empty gets a sequential scan per checked row).
            await raw.execute("ANALYZE houses")
        keys = list(plan.households)
        hh_ids = await _ids(raw, "households", len(keys))
        await raw.copy_records_to_table(
            "households",
            columns=["id", "district_id", "house_id", "number"],
            records=[
                (i, district, plan.houses[k[:4]], k[4] or None)
                for i, k in zip(hh_ids, keys, strict=True)
            ],
        )
        if len(keys) > ANALYZE_AFTER:
            await raw.execute("ANALYZE households")
        current = crypto.keyring().current
        people: list[tuple[Any, ...]] = []
        n_people = sum(len(v) for v in plan.households.values())
        ids = await _ids(raw, "residents", n_people)
        change_ids = await _ids(raw, "basedata_changes", n_people)
        member_ids = await _ids(raw, "household_members", n_people)
        members: list[tuple[Any, ...]] = []
        changes: list[tuple[Any, ...]] = []
        it = iter(zip(ids, change_ids, member_ids, strict=True))
        for k, hh in zip(keys, hh_ids, strict=True):
            for p in plan.households[k]:
                rid, cid, mid = next(it)
                idn, phone = p["id_number"], p["phone"]
                year, gender = birth_of(idn) if idn else (None, None)
                people.append(
                    (
                        rid,
                        district,
                        hh,
                        p["name"],
                        gender,
                        year,
                        crypto.seal(idn, "id_number", current)[0] if idn else None,
                        p["id_hash"],
                        mask_id_number(idn) if idn else None,
                        crypto.seal(phone, "phone", current)[0] if phone else None,
                        crypto.keyed_hash(phone, "phone") if phone else None,
                        mask_phone(phone) if phone else None,
                        current if (idn or phone) else None,
                        p["relation"],
                        p["registered"],
                        p["living"],
                        p["tags"],
                    )
                )
                members.append((mid, district, rid, hh, p["relation"]))
                changes.append(
                    (
                        cid,
                        district,
                        "resident",
                        rid,
                        "imported",
                        who.user_id,
                        f'{{"household": {hh}}}',
                    )
                )
            if progress and len(people) % PROGRESS_EVERY < len(plan.households[k]):
                progress("sealed", len(people), n_people)
        await raw.copy_records_to_table(
            "residents", columns=list(_RESIDENT_COLUMNS), records=people
        )
        await raw.copy_records_to_table(
            "household_members",
            columns=["id", "district_id", "resident_id", "household_id", "relation"],
            records=members,
        )
        await raw.copy_records_to_table(
            "basedata_changes",
            columns=[
                "id",
                "district_id",
                "object_type",
                "object_id",
                "action",
                "actor_id",
                "fields",
            ],
            records=changes,
        )
        if progress:
            progress("stored", n_people, n_people)
    await recount(session, [grid_id])
    return {"houses_created": len(new_houses), "households": len(hh_ids), "residents": len(ids)}


_RESIDENT_COLUMNS = (
    "id",
    "district_id",
    "household_id",
    "name",
    "gender",
    "birth_year",
    "id_enc",
    "id_hash",
    "id_masked",
    "phone_enc",
    "phone_hash",
    "phone_masked",
    "key_version",
    "relation",
    "registered",
    "living",
    "tags",
)


async def _ids(raw: Any, table: str, n: int) -> list[int]:
    """`n` ids from the table's own sequence (`<table>_id_seq`, a fixed set of names)."""
    if n == 0:
        return []
    assert table in ("houses", "households", "residents", "household_members", "basedata_changes")
    rows = await raw.fetch(f"SELECT nextval('{table}_id_seq') FROM generate_series(1, $1)", n)
    return [r[0] for r in rows]


def report(plan: Plan) -> ApiError:
    return ApiError(
        "import_invalid",
        field="file",
        detail=f"共 {plan.rows} 行，{plan.error_count} 处错误，未保存任何数据",
        detail_en=f"{plan.rows} rows, {plan.error_count} errors; nothing stored",
        errors=plan.errors,
        extra={"rows": plan.rows, "error_count": plan.error_count},
    )
