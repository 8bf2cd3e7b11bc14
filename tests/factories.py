"""Factories for the objects many tests need: a point inside a grid, a category, a report's body,
a case row written straight into the database.

`conn` is anything with SQLAlchemy's async `execute(statement, params)`: the `conn` fixture, an
`AsyncSession`, or a connection of a test's own engine (`async with engine.connect() as c`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text

from app.events.outbox import CHANGED_SQL

DEMO_GRID = "360602001001001"
"""立新社区 grid 1: in the `worker`'s, the `leader`'s and the `community`'s scope."""

_POINT_IN_GRID = text(
    "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.boundary) p "
    "FROM grid_boundaries b JOIN grids g ON g.id = b.grid_id "
    "WHERE g.code = :grid AND b.valid_to IS NULL) x"
)


async def point_in_grid(conn: Any, grid: str = DEMO_GRID) -> tuple[float, float]:
    """(lon, lat) of a point inside the grid's current boundary."""
    row = (await conn.execute(_POINT_IN_GRID, {"grid": grid})).one()
    return float(row[0]), float(row[1])


async def category_code(conn: Any, n: int = 0) -> str:
    """The code of the n-th category of the catalogue, by code."""
    return str(
        (
            await conn.execute(
                text("SELECT code FROM categories ORDER BY code OFFSET :n LIMIT 1"), {"n": n}
            )
        ).scalar_one()
    )


async def report_body(conn: Any, title: str, grid: str = DEMO_GRID, **extra: Any) -> dict[str, Any]:
    """A body for `POST /api/v1/cases`: the first category, `title`, a point inside `grid`."""
    lon, lat = await point_in_grid(conn, grid)
    return {
        "category": await category_code(conn),
        "title": title,
        "location": {"lon": lon, "lat": lat},
        **extra,
    }


# Columns a test may set on a case row besides the ones insert_case fills itself.
_CASE_COLUMNS = frozenset({"description", "address", "urgency", "channel", "closed_at"})

_CASE_IN_GRID = """
WITH g AS (SELECT g.id, g.community_id, c.parent_id AS street, s.parent_id AS district
           FROM grids g JOIN areas c ON c.id = g.community_id
           JOIN areas s ON s.id = c.parent_id WHERE g.code = :grid)
INSERT INTO cases (number, category_code, title, location, reporter_id, grid_id, community_id,
                   street_id, district_id, status, reported_at{extra_columns})
SELECT COALESCE(:number, left('F' || md5(random()::text), 20)),
       COALESCE(:category, (SELECT code FROM categories ORDER BY code LIMIT 1)), :title,
       COALESCE(ST_SetSRID(ST_MakePoint(CAST(:lon AS float8), CAST(:lat AS float8)), 4326),
                (SELECT ST_PointOnSurface(boundary) FROM grid_boundaries
                 WHERE grid_id = g.id AND valid_to IS NULL)),
       (SELECT id FROM users WHERE username = :reporter), g.id, g.community_id, g.street,
       g.district, COALESCE(:status, 'reported'),
       COALESCE(CAST(:reported_at AS timestamptz), now() - CAST(:age_days AS float8) * interval '1 day')
       {extra_values}
FROM g RETURNING id
"""

_CASE_NO_GRID = """
INSERT INTO cases (number, category_code, title, location{extra_columns})
SELECT COALESCE(:number, left('F' || md5(random()::text), 20)),
       COALESCE(:category, (SELECT code FROM categories ORDER BY code LIMIT 1)), :title,
       ST_SetSRID(ST_MakePoint(COALESCE(CAST(:lon AS float8), 117), COALESCE(CAST(:lat AS float8), 28)), 4326){extra_values}
RETURNING id
"""


async def insert_case(
    conn: Any,
    grid: str | None = DEMO_GRID,
    *,
    number: str | None = None,
    category: str | None = None,
    title: str = "测试事件",
    status: str | None = None,
    reporter: str = "admin",
    reported_at: datetime | None = None,
    age_days: float = 0,
    location: tuple[float, float] | None = None,
    **columns: Any,
) -> int:
    """A case row written straight into `cases` (no timeline step, no event): the id.

    With a grid: placed in it (grid, community, street, district), at a point inside it unless
    `location` says otherwise, reported by `reporter`, `reported_at` or `age_days` before the
    transaction's start. With `grid=None`: only number, category, title and location (default
    117 E 28 N); the database fills the rest (the district by trigger). `number` defaults to a
    random one, `category` to the catalogue's first. Other columns: `description`, `address`,
    `urgency`, `channel`, `closed_at`, and `district_id` without a grid.
    """
    allowed = _CASE_COLUMNS | ({"district_id"} if grid is None else set())
    unknown = set(columns) - allowed
    if unknown:
        raise TypeError(f"insert_case: unknown columns {sorted(unknown)}")
    names = sorted(columns)
    # Only column names from the fixed set above go into the text; every value is a bind.
    extra_columns = "".join(f", {n}" for n in names)
    extra_values = "".join(f", :{n}" for n in names)
    lon, lat = location if location is not None else (None, None)
    params: dict[str, Any] = {
        "number": number,
        "category": category,
        "title": title,
        "lon": lon,
        "lat": lat,
        **columns,
    }
    if grid is None and "district_id" not in columns:
        # What the district trigger would choose, in the statement itself: on Citus every insert
        # carries the distribution column.
        district = (
            await conn.execute(
                text("SELECT id FROM areas WHERE level = 'district' ORDER BY id LIMIT 1")
            )
        ).scalar()
        if district is not None:
            columns["district_id"] = params["district_id"] = district
    names = sorted(columns)
    extra_columns = "".join(f", {n}" for n in names)
    extra_values = "".join(f", :{n}" for n in names)
    if grid is None:
        sql = _CASE_NO_GRID
    else:
        sql = _CASE_IN_GRID
        params |= {
            "grid": grid,
            "status": status,
            "reporter": reporter,
            "reported_at": reported_at,
            "age_days": age_days,
        }
    statement = text(sql.format(extra_columns=extra_columns, extra_values=extra_values))
    case_id = int((await conn.execute(statement, params)).scalar_one())
    # A writer marks the case for its evaluation facts (app.events.outbox.changed).
    await conn.execute(text(CHANGED_SQL), {"ids": [case_id]})
    return case_id


async def report_case(
    anon: Any, as_user: Any, conn: Any, who: str = "worker", category: str | None = None
) -> dict[str, Any]:
    """A case reported through the API by `who` in DEMO_GRID (201 asserted); the category
    defaults to one that CGJ leads alone."""
    lon, lat = await point_in_grid(conn, DEMO_GRID)
    cat = (
        category
        or (
            await conn.execute(
                text(
                    "SELECT code FROM categories WHERE lead_department = 'CGJ' AND co_departments = '{}' "
                    "ORDER BY code LIMIT 1"
                )
            )
        ).scalar_one()
    )
    r = await anon.post(
        "/api/v1/cases",
        headers=as_user(who),
        json={
            "category": cat,
            "title": "电动车棚雨天积水",
            "description": "新建车棚一下雨就积水",
            "location": {"lon": lon, "lat": lat},
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


class Loop:
    """Drives a case through actions, keeping its ETag."""

    def __init__(self, anon: httpx.AsyncClient, as_user: Any, case: dict[str, Any]) -> None:
        self.anon, self.as_user, self.id, self.etag = anon, as_user, case["id"], '"1"'

    async def do(
        self, who: str, action: str, body: dict[str, Any] | None = None, status: int = 200
    ) -> dict[str, Any]:
        r = await self.anon.post(
            f"/api/v1/cases/{self.id}/actions/{action}",
            json=body or {},
            headers={**self.as_user(who), "If-Match": self.etag},
        )
        assert r.status_code == status, r.text
        if status == 200:
            self.etag = r.headers["etag"]
        return r.json()

    async def get(self, who: str = "admin") -> dict[str, Any]:
        r = await self.anon.get(f"/api/v1/cases/{self.id}", headers=self.as_user(who))
        assert r.status_code == 200, r.text
        return r.json()


async def department_id(conn: Any, code: str) -> int:
    """The id of a department by its code."""
    row = await conn.execute(text("SELECT id FROM departments WHERE code = :c"), {"c": code})
    return int(row.scalar_one())
