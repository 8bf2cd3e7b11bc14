"""Base data for the demo grid (立新社区's first grid, the demo `worker`'s): houses in its
buildings, one household each, one to four residents per household, the district's catalogue of
care and attention tags. Generated and deterministic (seeded by the grid code), obviously
fictitious: every name is a surname followed by 演示 and a number (张演示17), every row is marked
`demo`, the ID numbers pass the check digit and use the demo sequence 9xx. Encrypted like any
other (`app.basedata.crypto`). Idempotent: nothing is added when the grid has houses already.
Not loaded when ENV=test (the tests build what they need)."""

from __future__ import annotations

import hashlib
import random

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.basedata import crypto
from app.basedata.checks import check_digit
from app.basedata.service import recount
from app.pii import mask_id_number, mask_phone

GRID = "360602001001001"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
TAGS = (
    ("elderly_alone", "独居老人", "Elderly living alone", False, 7),
    ("elderly", "高龄老人", "Aged 80 or more", False, 30),
    ("disabled", "残疾人", "Person with a disability", False, 30),
    ("hardship", "困难家庭", "Household in hardship", False, 30),
    ("low_income", "低保户", "Minimum living allowance", False, 30),
    ("left_behind_child", "留守儿童", "Left-behind child", False, 14),
    ("veteran", "退役军人", "Veteran", False, None),
    ("corrections", "社区矫正", "Community corrections", True, None),
    ("mental", "精神障碍", "Severe mental disorder", True, 14),
)
MAX_HOUSEHOLDS = 300


def demo_id_number(rng: random.Random, born_year: int, seq: int) -> str:
    """An ID number of 月湖区 (360602) that passes the check digit; sequence 900-999 (demo)."""
    first = f"360602{born_year:04d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{900 + seq % 100:03d}"
    return first + check_digit(first)


async def load_tags(conn: AsyncConnection, district_code: str = "360602000000") -> int:
    n = 0
    for code, name, en, sensitive, every in TAGS:
        r = await conn.execute(
            text(
                "INSERT INTO resident_tags (district_id, code, name, name_en, sensitive, "
                "visit_every_days) SELECT id, :c, :n, :e, :s, :v FROM areas WHERE code = :d "
                "ON CONFLICT DO NOTHING"
            ),
            {"c": code, "n": name, "e": en, "s": sensitive, "v": every, "d": district_code},
        )
        n += r.rowcount or 0  # type: ignore[attr-defined]
    return n


async def load_basedata(conn: AsyncConnection, grid_code: str = GRID) -> int:
    """The residents added (0 when the grid had houses already)."""
    await load_tags(conn)
    grid = (
        await conn.execute(
            text(
                "SELECT g.id, s.parent_id AS district_id FROM grids g "
                "JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id "
                "WHERE g.code = :c"
            ),
            {"c": grid_code},
        )
    ).first()
    if grid is None:
        return 0
    has = (
        await conn.execute(
            text(
                "SELECT 1 FROM houses h JOIN buildings b ON b.id = h.building_id "
                "WHERE b.grid_id = :g LIMIT 1"
            ),
            {"g": grid.id},
        )
    ).first()
    if has:
        return 0
    rng = random.Random(int(hashlib.sha256(grid_code.encode()).hexdigest()[:16], 16))
    buildings = list(
        await conn.execute(
            text("SELECT id, households, units FROM buildings WHERE grid_id = :g ORDER BY id"),
            {"g": grid.id},
        )
    )
    d = grid.district_id
    people = 0
    households = 0
    for b in buildings:
        units = max(1, b.units or 1)
        for i in range(max(1, b.households or 6)):
            if households >= MAX_HOUSEHOLDS:
                break
            households += 1
            unit, floor, room = (
                str(i % units + 1),
                i // (units * 2) + 1,
                f"{i // (units * 2) + 1}0{i % 2 + 1}",
            )
            house = (
                await conn.execute(
                    text(
                        "INSERT INTO houses (district_id, building_id, unit, floor, room, use, tenure) "
                        "VALUES (:d, :b, :u, :f, :r, 'residential', :t) "
                        "ON CONFLICT DO NOTHING RETURNING id"
                    ),
                    {
                        "d": d,
                        "b": b.id,
                        "u": unit,
                        "f": floor,
                        "r": room,
                        "t": "rented" if rng.random() < 0.2 else "owned",
                    },
                )
            ).scalar()
            if house is None:
                continue
            hh = (
                await conn.execute(
                    text(
                        "INSERT INTO households (district_id, house_id) VALUES (:d, :h) RETURNING id"
                    ),
                    {"d": d, "h": house},
                )
            ).scalar_one()
            size = rng.choice((1, 1, 2, 2, 3, 3, 4))
            surname = rng.choice(SURNAMES)
            for k in range(size):
                people += 1
                old = size == 1 and rng.random() < 0.5
                year = rng.randint(1935, 1950) if old else rng.randint(1955, 2015)
                idn = demo_id_number(rng, year, people)
                phone = (
                    f"13{rng.randint(0, 9)}{rng.randint(0, 99_999_999):08d}"
                    if year < 2008
                    else None
                )
                tags = ["elderly_alone"] if old else []
                if year < 1945:
                    tags.append("elderly")
                if rng.random() < 0.03:
                    tags.append("disabled")
                if k == 0 and rng.random() < 0.04:
                    tags.append("hardship")
                if rng.random() < 0.005:
                    tags.append("corrections")
                enc, v = crypto.seal(idn, "id_number")
                rid = (
                    await conn.execute(
                        text(
                            """
                            INSERT INTO residents (district_id, household_id, name, gender,
                                birth_year, id_enc, id_hash, id_masked, phone_enc, phone_hash,
                                phone_masked, key_version, relation, tags, demo)
                            VALUES (:d, :hh, :name, :g, :y, :ie, :ih, :im, :pe, :ph, :pm, :v,
                                    :rel, :tags, true)
                            ON CONFLICT DO NOTHING RETURNING id
                            """
                        ),
                        {
                            "d": d,
                            "hh": hh,
                            "name": f"{surname if k == 0 or rng.random() < 0.6 else rng.choice(SURNAMES)}演示{people}",
                            "g": "M" if int(idn[16]) % 2 else "F",
                            "y": year,
                            "ie": enc,
                            "ih": crypto.keyed_hash(idn, "id_number"),
                            "im": mask_id_number(idn),
                            "pe": crypto.seal(phone, "phone")[0] if phone else None,
                            "ph": crypto.keyed_hash(phone, "phone") if phone else None,
                            "pm": mask_phone(phone) if phone else None,
                            "v": v,
                            "rel": "head" if k == 0 else rng.choice(("spouse", "child", "parent")),
                            "tags": sorted(set(tags)),
                        },
                    )
                ).scalar()
                if rid is not None:
                    await conn.execute(
                        text(
                            "INSERT INTO household_members (district_id, resident_id, household_id, "
                            "relation) SELECT district_id, id, household_id, relation FROM residents "
                            "WHERE id = :r AND district_id = :d"
                        ),
                        {"r": rid, "d": d},
                    )
    await recount(conn, [grid.id])
    return people
