"""另一区: a second, small demo district beside 月湖区 (one street, one community, one grid).

It exists to show a city on Citus (docs/scaling.md): two districts whose cases live on two
different workers. `wangge seed-demo --second-district` (and `make test-citus`) load it; the
plain demo (`make run`, `make test`) is the one district. Idempotent, like the demo itself.
"""

from __future__ import annotations

from shapely import to_wkb
from shapely.geometry import MultiPolygon, box
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.demo.load import _AREA, _GRID, DEMO_VALID_FROM

CITY = "360600000000"
DISTRICT = "360699000000"
STREET = "360699001000"
COMMUNITY = "360699001001"
GRID = "360699001001001"
# Inside 鹰潭市's outline, south-east of 月湖区 (which ends at 117.104° E), and more than 10 km
# from the point east of 月湖区 that tests use for a report outside every grid (117.20, 28.25).
OUTLINE = MultiPolygon([box(117.30, 28.05, 117.36, 28.11)])


async def load_second_district(conn: AsyncConnection) -> int:
    """Returns how many areas were added (0 when it was there already)."""
    before = (await conn.execute(text("SELECT count(*) FROM areas"))).scalar_one()
    wkb = to_wkb(OUTLINE)
    for level, code, name, parent in (
        ("district", DISTRICT, "另一区", CITY),
        ("street", STREET, "另一区城东街道", DISTRICT),
        ("community", COMMUNITY, "另一区城东社区", STREET),
    ):
        await conn.execute(
            _AREA,
            {
                "level": level,
                "code": code,
                "name": name,
                "parent_code": parent,
                "wkb": wkb,
                "phone": None,
                "address": None,
                "hours": None,
            },
        )
    await conn.execute(
        _GRID,
        {
            "code": GRID,
            "name": "另一区城东社区第一网格",
            "kind": "city",
            "community_code": COMMUNITY,
            "households": 300,
            "population": 1000,
            "notes": "",
            "wkb": wkb,
            "valid_from": DEMO_VALID_FROM,
        },
    )
    return int((await conn.execute(text("SELECT count(*) FROM areas"))).scalar_one()) - before
