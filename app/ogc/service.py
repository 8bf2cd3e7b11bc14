"""OGC API – Features (Part 1 Core, GeoJSON, OpenAPI 3.0; Part 2 CRS by reference) over the
registry (grids, communities, streets, buildings) and cases.

Query parameters are parsed by hand so that every invalid one is a 400 problem (as the standard
asks), naming the parameter at fault. Each page is one SQL statement, plus one count for
`numberMatched`; geometries are transformed (and their axes swapped for EPSG:4326/4490, whose
axis order is latitude, longitude) by PostGIS.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import scope
from app.auth.policy import Principal
from app.cases.service import _OVERDUE, sees_pii
from app.errors import ApiError
from app.ogc.query import Query, bad, order_sql
from app.pii import mask_text
from app.schemas import SHANGHAI, parse_instant, to_local

# --- coordinate reference systems (Part 2) ------------------------------------------------------

DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"


@dataclass(frozen=True)
class OutCrs:
    uri: str
    srid: int
    lat_first: bool
    """The CRS's own axis order is latitude, longitude (EPSG:4326, EPSG:4490)."""
    digits: int


CRSES: dict[str, OutCrs] = {
    CRS84: OutCrs(CRS84, 4326, False, 7),
    EPSG + "4326": OutCrs(EPSG + "4326", 4326, True, 7),
    EPSG + "4490": OutCrs(EPSG + "4490", 4490, True, 7),
    EPSG + "3857": OutCrs(EPSG + "3857", 3857, False, 2),
}
CRS_URIS = list(CRSES)
_ALIASES = {
    "OGC:CRS84": CRS84,
    "CRS84": CRS84,
    "EPSG:4326": EPSG + "4326",
    "EPSG:4490": EPSG + "4490",
    "EPSG:3857": EPSG + "3857",
}


def parse_crs(value: str | None, name: str) -> OutCrs:
    if value is None or value == "":
        return CRSES[CRS84]
    v = value.strip()
    if v.startswith("[") and v.endswith("]"):  # a safe CURIE, e.g. [EPSG:4326]
        v = v[1:-1]
    v = _ALIASES.get(v.upper(), v).replace("https://", "http://")
    if v not in CRSES:
        raise ApiError(
            "invalid_parameter",
            detail=f"不支持的坐标参考系：{value}（支持 {', '.join(CRS_URIS)}）",
            detail_en=f"Unsupported CRS: {value} (supported: {', '.join(CRS_URIS)})",
            field=name,
        )
    return CRSES[v]


def geom_out(column: str, crs: OutCrs) -> str:
    """SQL for the geometry as GeoJSON text in `crs` (coordinates in the CRS's axis order)."""
    g = column if crs.srid == 4326 else f"ST_Transform({column}, {crs.srid})"
    if crs.lat_first:
        g = f"ST_FlipCoordinates({g})"
    return f"ST_AsGeoJSON({g}, {crs.digits}, 0)"


# --- parameters ---------------------------------------------------------------------------------


def parse_bbox(value: str | None, crs: OutCrs) -> tuple[float, float, float, float] | None:
    """`bbox` (4 or 6 numbers, in `bbox-crs` and its axis order) → lon/lat or x/y order."""
    if value is None:
        return None
    try:
        nums = [float(p) for p in value.split(",")]
    except ValueError:
        nums = []
    if len(nums) == 6:
        nums = [nums[0], nums[1], nums[3], nums[4]]
    if len(nums) != 4 or not all(math.isfinite(n) for n in nums):
        raise bad("bbox", "bbox 应为 4 个（或 6 个）数", "bbox must be 4 (or 6) numbers")
    if crs.lat_first:
        nums = [nums[1], nums[0], nums[3], nums[2]]
    x1, y1, x2, y2 = nums
    if crs.srid != 3857 and not (-180 <= x1 <= 180 and -180 <= x2 <= 180 and -90 <= y1 <= 90):
        raise bad("bbox", "bbox 超出经纬度范围", "bbox is outside the range of lon/lat")
    if crs.srid != 3857 and not -90 <= y2 <= 90:
        raise bad("bbox", "bbox 超出经纬度范围", "bbox is outside the range of lon/lat")
    if x1 > x2 or y1 > y2:
        raise bad(
            "bbox",
            "bbox 的最小值大于最大值（不支持跨越 180° 经线）",
            "bbox minimum above its maximum (crossing the antimeridian is not supported)",
        )
    return x1, y1, x2, y2


def _instant(v: str, end: bool) -> datetime | None:
    if v in ("", ".."):
        return None
    try:
        if len(v) == 10:
            d = date.fromisoformat(v)
            t = datetime.combine(d, time(0), SHANGHAI)
            return t + timedelta(days=1) - timedelta(microseconds=1) if end else t
        t = parse_instant(v)
    except ValueError:
        raise bad(
            "datetime",
            f"datetime 不是 RFC 3339 时间或区间：{v}",
            f"datetime is not an RFC 3339 instant or interval: {v}",
        ) from None
    return t


def parse_datetime(value: str | None) -> tuple[datetime | None, datetime | None] | None:
    """An instant (a date means the whole day, Asia/Shanghai) or a closed interval `a/b` with
    `..` (or nothing) for an open end."""
    if value is None:
        return None
    if "/" in value:
        a, _, b = value.partition("/")
        if "/" in b or (a in ("", "..") and b in ("", "..")):
            raise bad("datetime", "datetime 区间无效", "Invalid datetime interval")
        lo, hi = _instant(a, False), _instant(b, True)
        if lo and hi and lo > hi:
            raise bad("datetime", "datetime 区间起点晚于终点", "datetime interval ends first")
        return lo, hi
    return _instant(value, False), _instant(value, True)


def parse_int(value: str | None, name: str, lo: int, default: int) -> int:
    if value is None:
        return default
    try:
        n = int(value)
    except ValueError:
        n = lo - 1
    if n < lo:
        raise bad(name, f"{name} 应为不小于 {lo} 的整数", f"{name} must be an integer >= {lo}")
    return n


# --- collections --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prop:
    name: str
    sql: str
    type: str  # string, integer, number, boolean, date-time
    filter: bool = False
    public: bool = True
    """False: only for callers whose scope covers the feature (cases)."""
    description: str = ""
    privacy: str | None = None
    """Which of the scope module's fields it is (`location`, `category`, `text`): shown outside
    the caller's scope only when the case's privacy class allows it (`scope.public_fields`)."""


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    from_sql: str
    where: str
    id_sql: str
    geom_sql: str
    geometry: str
    time_sql: str
    props: list[Prop]
    scoped: bool = False
    extent_sql: str | None = None
    """The extent (xmin, ymin, xmax, ymax, first, last) when scanning the rows would be slow."""
    filters: dict[str, Prop] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.filters.update({p.name: p for p in self.props if p.filter})


_STAFF = """(SELECT count(DISTINCT p.user_id) FROM post_grids pg JOIN posts p ON p.id = pg.post_id
  WHERE pg.grid_id = g.id AND p.starts_on <= current_date
    AND (p.ends_on IS NULL OR p.ends_on >= current_date))::int"""

COLLECTIONS: dict[str, Collection] = {
    c.id: c
    for c in (
        Collection(
            "grids",
            "网格 Grids",
            "Grids with their current boundary, community, street, households and staff on duty",
            "FROM grids g JOIN grid_boundaries b ON b.grid_id = g.id AND b.valid_to IS NULL "
            "JOIN areas cm ON cm.id = g.community_id LEFT JOIN areas st ON st.id = cm.parent_id",
            "g.deleted_at IS NULL",
            "g.id",
            "b.boundary",
            "MultiPolygon",
            "g.updated_at",
            [
                Prop("code", "g.code", "string", True),
                Prop("name", "g.name", "string", True),
                Prop("kind", "g.kind", "string", True, description="city, rural or special"),
                Prop("community_id", "g.community_id", "integer", True),
                Prop("community", "cm.name", "string"),
                Prop("street_id", "cm.parent_id", "integer", True),
                Prop("street", "st.name", "string"),
                Prop("households", "g.households", "integer", True),
                Prop("population", "g.population", "integer"),
                Prop("staff", _STAFF, "integer", description="people on duty in the grid today"),
                Prop("updated_at", "g.updated_at", "date-time"),
            ],
        ),
        Collection(
            "communities",
            "社区 Communities",
            "Communities (社区/村) with their service centre",
            "FROM areas a LEFT JOIN areas p ON p.id = a.parent_id",
            "a.level = 'community'",
            "a.id",
            "a.boundary",
            "MultiPolygon",
            "a.updated_at",
            [
                Prop("code", "a.code", "string", True),
                Prop("name", "a.name", "string", True),
                Prop("street_id", "a.parent_id", "integer", True),
                Prop("street", "p.name", "string"),
                Prop("address", "a.address", "string"),
                Prop("phone", "a.phone", "string"),
                Prop("service_hours", "a.service_hours", "string"),
                Prop("updated_at", "a.updated_at", "date-time"),
            ],
        ),
        Collection(
            "streets",
            "街道 Streets",
            "Streets (街道) and towns (乡镇)",
            "FROM areas a LEFT JOIN areas p ON p.id = a.parent_id",
            "a.level = 'street'",
            "a.id",
            "a.boundary",
            "MultiPolygon",
            "a.updated_at",
            [
                Prop("code", "a.code", "string", True),
                Prop("name", "a.name", "string", True),
                Prop("district_id", "a.parent_id", "integer", True),
                Prop("district", "p.name", "string"),
                Prop("updated_at", "a.updated_at", "date-time"),
            ],
        ),
        Collection(
            "buildings",
            "楼栋 Buildings",
            "Buildings, the nodes of a grid",
            "FROM buildings bl JOIN grids g ON g.id = bl.grid_id",
            "g.deleted_at IS NULL",
            "bl.id",
            "bl.geom",
            "Geometry",
            "bl.updated_at",
            [
                Prop("name", "bl.name", "string", True),
                Prop("address", "bl.address", "string"),
                Prop("households", "bl.households", "integer", True),
                Prop("units", "bl.units", "integer"),
                Prop("grid_id", "bl.grid_id", "integer", True),
                Prop("grid_code", "g.code", "string", True),
                Prop("updated_at", "bl.updated_at", "date-time"),
            ],
        ),
        Collection(
            "cases",
            "事件 Cases",
            "Cases (not rejected, not duplicates): public fields for everyone; title, "
            "description, address and overdue only for cases in the caller's scope "
            "(bearer token, the rule of cases:read). Outside the scope, a case of a private "
            "class (disputes, public order) shows no point, grid or category",
            "FROM cases c JOIN categories cat ON cat.code = c.category_code "
            "LEFT JOIN areas cm ON cm.id = c.community_id LEFT JOIN areas st ON st.id = c.street_id",
            "c.status <> 'rejected' AND c.duplicate_of IS NULL",
            "c.id",
            "c.location",
            "Point",
            "c.reported_at",
            [
                Prop("number", "c.number", "string", True),
                Prop("status", "c.status", "string", True),
                Prop("category", "c.category_code", "string", True, privacy="category"),
                Prop("category_name", "cat.name", "string", privacy="category"),
                Prop("urgency", "c.urgency", "string", True),
                Prop("reported_at", "c.reported_at", "date-time"),
                Prop("closed_at", "c.closed_at", "date-time"),
                Prop("grid_id", "c.grid_id", "integer", True, privacy="location"),
                Prop("community_id", "c.community_id", "integer", True),
                Prop("community", "cm.name", "string"),
                Prop("street_id", "c.street_id", "integer", True),
                Prop("street", "st.name", "string"),
                Prop("title", "c.title", "string", public=False, privacy="text"),
                Prop("description", "c.description", "string", public=False, privacy="text"),
                Prop("address", "c.address", "string", public=False, privacy="location"),
                Prop("overdue", _OVERDUE, "boolean", public=False),
            ],
            scoped=True,
            # Planner statistics, not a scan of every case (exact only when there are none yet);
            # the first and last report from the (reported_at DESC, id DESC) index.
            extent_sql="""
            SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e),
                   (SELECT min(reported_at) FROM cases), (SELECT max(reported_at) FROM cases)
            FROM (SELECT coalesce(ST_EstimatedExtent('public', 'cases', 'location')::box3d,
                                  (SELECT ST_Extent(location) FROM cases)::box3d) AS e) x
            """,
        ),
    )
}


def get_collection(collection_id: str) -> Collection:
    c = COLLECTIONS.get(collection_id)
    if c is None:
        raise ApiError(
            "unknown_collection",
            detail=f"要素集合不存在：{collection_id}",
            detail_en=f"No such collection: {collection_id}",
        )
    return c


def _where(c: Collection, q: Query, params: dict[str, Any], vis: scope.Fragment | None) -> str:
    where = [c.where]
    private = {"location", "category"}
    if vis is not None and (
        q.bbox is not None or any(c.filters[n].privacy in private for n in q.filters)
    ):
        # Filtering by place or category would tell them about a case the caller may not see.
        public = scope.public_sql("cat")
        where.append(f"({vis.sql} OR {public.sql})")
        params.update(vis.binds, **public.binds)
    if q.bbox is not None:
        assert q.bbox_crs is not None
        params.update(zip(("bx1", "by1", "bx2", "by2"), q.bbox, strict=True))
        env = f"ST_MakeEnvelope(:bx1, :by1, :bx2, :by2, {q.bbox_crs.srid})"
        if q.bbox_crs.srid != 4326:
            env = f"ST_Transform({env}, 4326)"
        where.append(f"{c.geom_sql} && {env} AND ST_Intersects({c.geom_sql}, {env})")
    if q.interval is not None:
        lo, hi = q.interval
        if lo is not None:
            where.append(f"{c.time_sql} >= :t_lo")
            params["t_lo"] = lo
        if hi is not None:
            where.append(f"{c.time_sql} <= :t_hi")
            params["t_hi"] = hi
    for i, (name, values) in enumerate(q.filters.items()):
        p = c.filters[name]
        where.append(f"{p.sql} = ANY(:f{i})")
        params[f"f{i}"] = values
    return " AND ".join(where)


def _local(v: Any) -> Any:
    return to_local(v) if isinstance(v, datetime) else v


def _feature(
    c: Collection,
    row: Any,
    scoped: bool,
    masked: bool = True,
    properties: set[str] | None = None,
) -> dict[str, Any]:
    """A row as a feature; for a scoped collection, by the scope module: in the caller's scope,
    every property (free text masked for readers of masked data); outside it, the public ones
    that the case's privacy class allows."""
    m = row._mapping
    visible = scoped and bool(m["_visible"])
    fields = scope.fields_for(visible, m["_class"]) if scoped else scope.FIELDS
    props: dict[str, Any] = {}
    for p in c.props:
        if properties is not None and p.name not in properties:
            continue
        if (p.public or visible) and (p.privacy is None or p.privacy in fields):
            v = _local(m[p.name])
            props[p.name] = mask_text(v) if p.privacy == "text" and masked else v
    geometry = m["_geom"] if "location" in fields else None
    return {
        "type": "Feature",
        "id": m["_fid"],
        "geometry": orjson.loads(geometry) if geometry is not None else None,
        "properties": props,
    }


def _select(c: Collection, crs: OutCrs, vis: scope.Fragment | None) -> str:
    cols = [f"{c.id_sql} AS _fid", f"{geom_out(c.geom_sql, crs)} AS _geom"]
    cols += [f"{p.sql} AS {ident(p.name)}" for p in c.props]
    if vis is not None:
        cols += [f"{vis.sql} AS _visible", "cat.class_code AS _class"]
    return ", ".join(cols)


def ident(name: str) -> str:
    return scope.ident(name.replace("-", "_"))


async def _scope(conn: AsyncConnection, c: Collection, who: Principal | None) -> Any:
    return (await scope.resolve(conn, who)).sql("c") if c.scoped else None


async def items(
    conn: AsyncConnection, c: Collection, q: Query, who: Principal | None
) -> tuple[list[dict[str, Any]], int]:
    vis = await _scope(conn, c, who)
    params: dict[str, Any] = {}
    where = _where(c, q, params, vis)
    count = (
        await conn.execute(text(f"SELECT count(*) {c.from_sql} WHERE {where}"), params)
    ).scalar()
    if vis is not None:
        params.update(vis.binds)
    params.update(limit=q.limit, offset=q.offset)
    rows = await conn.execute(
        text(
            f"SELECT {_select(c, q.crs, vis)} {c.from_sql} WHERE {where} "
            f"ORDER BY {order_sql(c, q.sortby)} LIMIT :limit OFFSET :offset"
        ),
        params,
    )
    masked = not sees_pii(who)
    return [_feature(c, r, c.scoped, masked, q.properties) for r in rows], int(count or 0)


async def item(
    conn: AsyncConnection, c: Collection, fid: str, crs: OutCrs, who: Principal | None
) -> dict[str, Any]:
    try:
        ident_ = int(fid)
    except ValueError:
        ident_ = None
    row = None
    if ident_ is not None and -(2**63) <= ident_ < 2**63:
        vis = await _scope(conn, c, who)
        params: dict[str, Any] = {"fid": ident_, **(vis.binds if vis is not None else {})}
        row = (
            await conn.execute(
                text(
                    f"SELECT {_select(c, crs, vis)} {c.from_sql} "
                    f"WHERE {c.where} AND {c.id_sql} = :fid"
                ),
                params,
            )
        ).first()
    if row is None:
        raise ApiError(
            "unknown_feature",
            detail=f"要素不存在：{c.id}/{fid}",
            detail_en=f"No such feature: {c.id}/{fid}",
        )
    return _feature(c, row, c.scoped, not sees_pii(who))


async def extent(conn: AsyncConnection, c: Collection) -> dict[str, Any]:
    sql = c.extent_sql or (
        f"SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e), t0, t1 FROM ("
        f"SELECT ST_Extent({c.geom_sql}) AS e, min({c.time_sql}) AS t0, max({c.time_sql}) AS t1 "
        f"{c.from_sql} WHERE {c.where}) x"
    )
    r = (await conn.execute(text(sql))).one()
    bbox = [round(float(v), 7) for v in r[:4]] if r[0] is not None else [-180, -90, 180, 90]
    return {
        "spatial": {"bbox": [bbox], "crs": CRS84},
        "temporal": {
            "interval": [[to_local(r[4]) if r[4] else None, to_local(r[5]) if r[5] else None]],
            "trs": "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian",
        },
    }
