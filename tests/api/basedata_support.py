"""Helpers of the base-data tests: valid ID numbers, the tag catalogue, a house with a household."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from app.basedata.checks import check_digit
from tests.factories import DEMO_GRID

DISTRICT = "360602000000"
TAGS = [
    ("elderly_alone", "独居老人", "Elderly living alone", False, 7),
    ("disabled", "残疾人", "Disabled", False, 30),
    ("hardship", "困难家庭", "Household in hardship", False, 30),
    ("corrections", "社区矫正", "Community corrections", True, None),
    ("mental", "精神障碍", "Mental disorder", True, 14),
]


def id_number(seq: int, born: str = "19500101", region: str = "360602") -> str:
    first = f"{region}{born}{seq % 1000:03d}"
    return first + check_digit(first)


async def seed_tags(conn: Any) -> None:
    for code, name, en, sensitive, every in TAGS:
        await conn.execute(
            text(
                "INSERT INTO resident_tags (district_id, code, name, name_en, sensitive, "
                "visit_every_days) SELECT id, :c, :n, :e, :s, :v FROM areas WHERE code = :d "
                "ON CONFLICT DO NOTHING"
            ),
            {"c": code, "n": name, "e": en, "s": sensitive, "v": every, "d": DISTRICT},
        )


async def building_id(conn: Any, grid: str = DEMO_GRID) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "SELECT b.id FROM buildings b JOIN grids g ON g.id = b.grid_id "
                    "WHERE g.code = :c ORDER BY b.id LIMIT 1"
                ),
                {"c": grid},
            )
        ).scalar_one()
    )


async def grid_id(conn: Any, grid: str = DEMO_GRID) -> int:
    return int(
        (await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": grid})).scalar_one()
    )


async def household(anon: Any, h: dict[str, str], building: int, room: str = "101") -> int:
    r = await anon.post(
        f"/api/v1/buildings/{building}/houses",
        json={"unit": "1", "floor": 1, "room": room},
        headers=h,
    )
    assert r.status_code == 201, r.text
    r = await anon.post(f"/api/v1/houses/{r.json()['id']}/households", json={}, headers=h)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


async def resident(anon: Any, h: dict[str, str], hh: int, **body: Any) -> dict[str, Any]:
    r = await anon.post(f"/api/v1/households/{hh}/residents", json=body, headers=h)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out
