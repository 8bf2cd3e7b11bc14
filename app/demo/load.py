"""Load the generated demo district into the database. Idempotent: a second run changes nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from shapely import to_wkb
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.config import get_settings
from app.demo.accounts import load_accounts, load_categories, load_departments, load_roster
from app.demo.basedata import load_basedata, load_tags
from app.demo.community import load_community
from app.demo.disputes import load_disputes
from app.demo.district import DemoDistrict, generate_district
from app.demo.duty_tasks import load_duty
from app.demo.patrols import load_patrols

DEMO_VALID_FROM = datetime(2020, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
"""Demo boundaries are valid since 2020, so lookups `at` past dates find them."""
SERVICE_HOURS = "周一至周五 8:30-12:00、14:30-17:30；周六 9:00-12:00（节假日值班）"
LEVEL_ORDER = {"city": 0, "district": 1, "street": 2, "community": 3}

_AREA = text(
    """
    INSERT INTO areas (level, code, name, parent_id, boundary, phone, address, service_hours)
    SELECT :level, :code, :name, p.id, ST_GeomFromWKB(:wkb, 4326), :phone, :address, :hours
    FROM (SELECT 1) one LEFT JOIN areas p ON p.code = :parent_code
    ON CONFLICT (code) DO NOTHING
    """
)
_GRID = text(
    """
    WITH g AS (
        INSERT INTO grids (code, name, community_id, kind, households, population, notes)
        SELECT :code, :name, a.id, :kind, :households, :population, :notes
        FROM areas a WHERE a.code = :community_code
        ON CONFLICT (code) DO NOTHING
        RETURNING id
    )
    INSERT INTO grid_boundaries (grid_id, boundary, valid_from)
    SELECT g.id, ST_Multi(ST_GeomFromWKB(:wkb, 4326)), :valid_from FROM g
    """
)
_BUILDING = text(
    """
    INSERT INTO buildings (grid_id, name, households, units, geom)
    SELECT g.id, CAST(:name AS varchar), :households, :units, ST_GeomFromWKB(:wkb, 4326)
    FROM grids g
    LEFT JOIN buildings b ON b.grid_id = g.id AND b.name = CAST(:name AS varchar)
    WHERE g.code = :grid_code AND b.id IS NULL
    """
)


@dataclass
class LoadReport:
    areas: int
    grids: int
    buildings: int
    departments: int
    categories: int
    accounts: int
    roster: int
    communities: int = 0
    """Communities given a demo quarter of the community mechanisms (app/demo/community.py)."""
    patrols: int = 0
    """Patrols of the demo community's month of field work (app/demo/patrols.py)."""
    residents: int = 0
    """Residents of the demo grid's base data (app/demo/basedata.py; not when ENV=test)."""
    disputes: int = 0
    """Disputes of the demo grid (app/demo/disputes.py; not when ENV=test)."""


def _phone(code: str) -> str:
    """A stable, plausible Yingtan (0701) office number for a community."""
    n = int(hashlib.sha256(code.encode()).hexdigest()[:6], 16) % 1_000_000
    return f"0701-6{n:06d}"


async def load_demo(conn: AsyncConnection, district: DemoDistrict | None = None) -> LoadReport:
    d = district or generate_district()
    areas = sorted(d.areas, key=lambda a: (LEVEL_ORDER[a.level], a.code))
    before = (
        await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM areas), (SELECT count(*) FROM grids),"
                " (SELECT count(*) FROM buildings)"
            )
        )
    ).one()
    for level in ("city", "district", "street", "community"):
        rows = [
            {
                "level": a.level,
                "code": a.code,
                "name": a.name,
                "parent_code": a.parent_code,
                "wkb": to_wkb(a.geometry),
                "phone": _phone(a.code) if a.level == "community" else None,
                "address": f"{a.name}党群服务中心" if a.level == "community" else None,
                "hours": SERVICE_HOURS if a.level == "community" else None,
            }
            for a in areas
            if a.level == level
        ]
        if rows:
            await conn.execute(_AREA, rows)
    await conn.execute(
        _GRID,
        [
            {
                "code": g.code,
                "name": g.name,
                "kind": g.kind,
                "community_code": g.community_code,
                "households": g.households,
                "population": g.population,
                "notes": g.notes,
                "wkb": to_wkb(g.geometry),
                "valid_from": DEMO_VALID_FROM,
            }
            for g in d.grids
        ],
    )
    if d.buildings:
        await conn.execute(
            _BUILDING,
            [
                {
                    "grid_code": b.grid_code,
                    "name": b.name,
                    "households": b.households,
                    "units": b.units,
                    "wkb": to_wkb(b.geometry),
                }
                for b in d.buildings
            ],
        )
    after = (
        await conn.execute(
            text(
                "SELECT (SELECT count(*) FROM areas), (SELECT count(*) FROM grids),"
                " (SELECT count(*) FROM buildings)"
            )
        )
    ).one()
    departments = await load_departments(conn)
    categories = await load_categories(conn)
    accounts = await load_accounts(conn)
    roster = await load_roster(conn, [g.code for g in d.grids if g.kind != "special"])
    communities = await load_community(conn)
    patrols = await load_patrols(conn)
    if get_settings().env != "test":  # the duty tests set the roster they need
        await load_duty(conn)
    residents = disputes = 0
    if get_settings().env != "test":  # the base-data tests build the houses they count
        residents = await load_basedata(conn)
        disputes = await load_disputes(conn)
    else:
        await load_tags(conn)
    return LoadReport(
        after[0] - before[0],
        after[1] - before[1],
        after[2] - before[2],
        departments,
        categories,
        accounts,
        roster,
        communities,
        patrols,
        residents,
        disputes,
    )
