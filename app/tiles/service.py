"""Vector tiles (Mapbox Vector Tile 2.1): one SQL statement per tile, on the raw asyncpg
connection with z/x/y (and every filter) as bind parameters of a prepared statement.

Each statement:
- selects rows with an indexed `&&` in EPSG:4326 against the tile's envelope (ST_TileEnvelope,
  widened by the 64-pixel buffer, transformed to 4326: a Web Mercator rectangle is a lon/lat
  rectangle, so the box is exact);
- draws them with ST_AsMVTGeom(ST_Transform(geom, 3857), the tile envelope, 4096, 64, true):
  clipped to the buffer and snapped to the 4096 × 4096 tile grid, which drops the vertices that
  fall on one pixel (that is the per-zoom simplification: our grids have ~8 vertices, streets
  ~90, so an extra ST_Simplify costs more than it saves — measured by bench/bench_tiles.py);
- aggregates with ST_AsMVT into one layer named after the route, its features in id order
  (`ORDER BY t.id` in the aggregate): the same data gives the same bytes, so the same ETag,
  whatever order the plan reads the rows in (without it, test_tiles' If-None-Match once got a
  200 instead of a 304 inside the full suite). The subquery ends with
  `OFFSET 0` so that PostgreSQL does not pull it up: pulled up, the `geom IS NOT NULL` filter
  computed ST_AsMVTGeom a second time per row (10–40 % of a tile, measured).

`cases` and `hotspots` are scoped by the caller's posts by the one scope module
(`app.auth.scope.statement_sql`, the rule of `cases:read`): the area tree below the caller's posts
is walked by a recursive CTE inside the same statement, so the scope costs no extra round trip.
Every value is a named bind (`:z`, `:vis_user`, …) compiled once by `db.RawSql` for asyncpg.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import scope
from app.auth.policy import Principal
from app.cases.models import OPEN_STATUSES, STATUSES
from app.cases.service import _OVERDUE
from app.db import RawSql, raw_of

EXTENT = 4096
BUFFER = 64
MAX_ZOOM = 24
MEDIA_TYPE = "application/vnd.mapbox-vector-tile"

_ENV = "ST_TileEnvelope(CAST(:z AS int), CAST(:x AS int), CAST(:y AS int))"
# The selection box: the tile plus its buffer, in the storage CRS (for the GiST indexes).
_BOX = (
    "ST_Transform(ST_TileEnvelope(CAST(:z AS int), CAST(:x AS int), CAST(:y AS int), "
    f"margin => {BUFFER / EXTENT}), 4326)"
)


def _geom(column: str) -> str:
    return f"ST_AsMVTGeom(ST_Transform({column}, 3857), {_ENV}, {EXTENT}, {BUFFER}, true)"


GRIDS_SQL = f"""
SELECT ST_AsMVT(t, 'grids', {EXTENT}, 'geom', 'id' ORDER BY t.id) FROM (
    SELECT g.id, g.code, g.name, g.kind, cm.id AS community_id, cm.name AS community,
           st.id AS street_id, st.name AS street, g.households, g.population,
           (SELECT count(DISTINCT p.user_id) FROM post_grids pg
            JOIN posts p ON p.id = pg.post_id
            WHERE pg.grid_id = g.id AND p.starts_on <= current_date
              AND (p.ends_on IS NULL OR p.ends_on >= current_date))::int AS staff,
           {_geom("b.boundary")} AS geom
    FROM grid_boundaries b
    JOIN grids g ON g.id = b.grid_id AND g.deleted_at IS NULL
    JOIN areas cm ON cm.id = g.community_id
    LEFT JOIN areas st ON st.id = cm.parent_id
    WHERE b.valid_to IS NULL AND b.boundary && {_BOX}
    OFFSET 0  -- a fence: ST_AsMVTGeom once per row (not again in the filter below)
) t WHERE t.geom IS NOT NULL
"""

AREAS_SQL = f"""
SELECT ST_AsMVT(t, 'areas', {EXTENT}, 'geom', 'id' ORDER BY t.id) FROM (
    SELECT a.id, a.level, a.code, a.name, p.id AS parent_id, p.name AS parent,
           {_geom("a.boundary")} AS geom
    FROM areas a LEFT JOIN areas p ON p.id = a.parent_id
    WHERE a.level IN ('street', 'community') AND a.boundary && {_BOX}
    OFFSET 0  -- a fence: ST_AsMVTGeom once per row (not again in the filter below)
) t WHERE t.geom IS NOT NULL
"""

# Filters (NULL = no filter): statuses, categories, since, until, a department.
_FILTERS = """
c.status = ANY(CAST(:statuses AS text[]))
AND (CAST(:categories AS text[]) IS NULL OR c.category_code = ANY(CAST(:categories AS text[])))
AND (CAST(:since AS timestamptz) IS NULL OR c.reported_at >= CAST(:since AS timestamptz))
AND (CAST(:until AS timestamptz) IS NULL OR c.reported_at < CAST(:until AS timestamptz))
AND (CAST(:department AS bigint) IS NULL OR EXISTS (SELECT 1 FROM case_assignments fa
     WHERE fa.case_id = c.id AND fa.district_id = c.district_id
     AND fa.department_id = CAST(:department AS bigint) AND fa.state <> 'withdrawn'))
"""
_SCOPE_CTE = scope.SCOPE_CTE
_SCOPE = scope.statement_sql("c")

CASES_SQL = f"""
{_SCOPE_CTE}
SELECT ST_AsMVT(t, 'cases', {EXTENT}, 'geom', 'id' ORDER BY t.id) FROM (
    SELECT c.id, c.number, c.status, c.category_code AS category, cat.name AS category_name,
           c.urgency, {_OVERDUE} AS overdue,
           to_char(c.reported_at AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD"T"HH24:MI:SS+08:00')
               AS reported_at,
           c.grid_id, {_geom("c.location")} AS geom
    FROM cases c JOIN categories cat ON cat.code = c.category_code
    WHERE c.location && {_BOX} AND {_FILTERS} AND {_SCOPE}
    OFFSET 0  -- a fence: ST_AsMVTGeom once per row (not again in the filter below)
) t WHERE t.geom IS NOT NULL
"""

HOTSPOTS_SQL = f"""
{_SCOPE_CTE}
SELECT ST_AsMVT(t, 'hotspots', {EXTENT}, 'geom', 'id' ORDER BY t.id) FROM (
    SELECT g.id, g.code, g.name, n.cases, n.open, {_geom("b.boundary")} AS geom
    FROM grid_boundaries b
    JOIN grids g ON g.id = b.grid_id AND g.deleted_at IS NULL
    JOIN (
        -- The cases of the grids in the box, counted per grid (on Citus: one aggregate across
        -- the shards; a lateral subquery on the grids, a reference table, would not push down).
        SELECT c.grid_id, count(*)::int AS cases,
               (count(*) FILTER (WHERE c.status NOT IN ('closed', 'rejected')))::int AS open
        FROM cases c
        WHERE c.grid_id = ANY(ARRAY(SELECT bb.grid_id FROM grid_boundaries bb
                                    WHERE bb.valid_to IS NULL AND bb.boundary && {_BOX}))
          AND {_FILTERS} AND {_SCOPE}
        GROUP BY c.grid_id
    ) n ON n.grid_id = g.id
    WHERE b.valid_to IS NULL AND b.boundary && {_BOX}
    OFFSET 0  -- a fence: ST_AsMVTGeom once per row (not again in the filter below)
) t WHERE t.geom IS NOT NULL
"""


COVERAGE_SQL = f"""
{_SCOPE_CTE}
SELECT ST_AsMVT(t, 'coverage', {EXTENT}, 'geom', 'id' ORDER BY t.id) FROM (
    SELECT c.id, c.grid_id, coalesce(h.n, 0) > 0 AS visited, coalesce(h.n, 0)::int AS visits,
           to_char(h.last AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD') AS last_visit,
           {_geom("c.geom")} AS geom
    FROM patrol_cells c
    JOIN grids g ON g.id = c.grid_id AND g.deleted_at IS NULL
    JOIN areas cm ON cm.id = g.community_id
    LEFT JOIN (
        -- The hits of the cells in the box, per cell (on Citus: one aggregate across the shards
        -- of the cells' districts; a lateral subquery on the cells, a reference table, would not
        -- push down: "cannot perform a lateral outer join …").
        SELECT ph.district_id, ph.cell_id, max(ph.at) AS last,
               count(*) FILTER (WHERE ph.at >= CAST(:since AS timestamptz)) AS n
        FROM patrol_cell_hits ph
        WHERE ph.district_id = ANY(ARRAY(SELECT DISTINCT cc.district_id FROM patrol_cells cc
                                         WHERE cc.geom && {_BOX}))
          AND ph.cell_id = ANY(ARRAY(SELECT cc.id FROM patrol_cells cc WHERE cc.geom && {_BOX}))
        GROUP BY ph.district_id, ph.cell_id
    ) h ON h.district_id = c.district_id AND h.cell_id = c.id
    WHERE c.geom && {_BOX} AND {scope.grid_statement_sql("g", "cm")}
    OFFSET 0  -- a fence: ST_AsMVTGeom once per row (not again in the filter below)
) t WHERE t.geom IS NOT NULL
"""


@dataclass(frozen=True)
class Layer:
    name: str
    sql: RawSql
    public: bool
    geometry: str
    description: str
    fields: dict[str, str]
    minzoom: int = 0
    maxzoom: int = 18


LAYERS: dict[str, Layer] = {
    "grids": Layer(
        "grids",
        RawSql(GRIDS_SQL),
        True,
        "polygon",
        "Grids (网格) with their current boundary",
        {
            "id": "Number",
            "code": "String",
            "name": "String",
            "kind": "String: city, rural or special",
            "community_id": "Number",
            "community": "String",
            "street_id": "Number",
            "street": "String",
            "households": "Number",
            "population": "Number",
            "staff": "Number: people on duty in the grid today",
        },
        minzoom=10,
    ),
    "areas": Layer(
        "areas",
        RawSql(AREAS_SQL),
        True,
        "polygon",
        "Streets (街道) and communities (社区)",
        {
            "id": "Number",
            "level": "String: street or community",
            "code": "String",
            "name": "String",
            "parent_id": "Number",
            "parent": "String",
        },
        minzoom=8,
    ),
    "cases": Layer(
        "cases",
        RawSql(CASES_SQL),
        False,
        "point",
        "Cases in the caller's scope (open ones unless `status` says otherwise)",
        {
            "id": "Number",
            "number": "String",
            "status": "String",
            "category": "String",
            "category_name": "String",
            "urgency": "String: normal, urgent or critical",
            "overdue": "Boolean: a department is late to sign in or to hand in",
            "reported_at": "String: ISO 8601, Asia/Shanghai",
            "grid_id": "Number",
        },
        minzoom=10,
    ),
    "hotspots": Layer(
        "hotspots",
        RawSql(HOTSPOTS_SQL),
        False,
        "polygon",
        "Cases per grid over a period (the caller's scope), grids with at least one case",
        {
            "id": "Number: the grid",
            "code": "String",
            "name": "String",
            "cases": "Number: cases reported in the period",
            "open": "Number: of which not closed or rejected",
        },
        minzoom=10,
    ),
    "coverage": Layer(
        "coverage",
        RawSql(COVERAGE_SQL),
        False,
        "polygon",
        "Coverage lattice of the grids in the caller's scope: cells visited by a patrol since "
        "`since` (default: the last 30 days) or not (docs/patrols.md)",
        {
            "id": "Number: the cell",
            "grid_id": "Number",
            "visited": "Boolean: a kept track passed near its centre in the period",
            "visits": "Number: patrols that passed in the period",
            "last_visit": "String: the day of the last patrol that passed (Asia/Shanghai), ever",
        },
        minzoom=13,
    ),
}


def scope_params(who: Principal) -> dict[str, Any]:
    """The scoped statements' caller binds (`vis_*`), by the scope module."""
    return scope.statement_binds(scope.of(who))


@dataclass(frozen=True)
class CaseFilters:
    statuses: list[str] | None = None
    categories: list[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    department_id: int | None = None

    def params(self, default_open: bool = True) -> dict[str, Any]:
        statuses = self.statuses or list(OPEN_STATUSES if default_open else STATUSES)
        return {
            "statuses": statuses,
            "categories": self.categories or None,
            "since": self.since,
            "until": self.until,
            "department": self.department_id,
        }


async def render_tile(
    conn: AsyncConnection, layer: Layer, z: int, x: int, y: int, extra: dict[str, Any]
) -> bytes:
    """The tile's bytes (b"" when empty): the layer's prepared statement on the raw asyncpg
    connection (asyncpg keeps the statement prepared per connection)."""
    args = layer.sql.args({"z": z, "x": x, "y": y, **extra})
    async with raw_of(conn) as driver:
        tile = await driver.fetchval(layer.sql.sql, *args)
    return bytes(tile) if tile else b""


def etag(tile: bytes) -> str:
    return '"' + hashlib.blake2b(tile, digest_size=16).hexdigest() + '"'


BOUNDS_SQL = """
SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e)
FROM (SELECT ST_Extent(boundary) AS e FROM areas WHERE level IN ('street', 'community')) x
"""


async def data_bounds(conn: AsyncConnection) -> list[float]:
    async with raw_of(conn) as driver:
        row = await driver.fetchrow(BOUNDS_SQL)
    if row is None or row[0] is None:
        return [-180.0, -85.051129, 180.0, 85.051129]
    return [round(float(v), 6) for v in row]
