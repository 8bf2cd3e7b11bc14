"""What a request for features asks (OGC API – Features): the `Query` and the parsing of its
parts that name properties: equality filters (Part 3's queryables as query parameters), `sortby`
(the sorting of OGC API – Records) and `properties` (which properties the features carry), and
the queryables document of a collection (Part 3, a JSON Schema)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.errors import ApiError

if TYPE_CHECKING:
    from app.ogc.service import Collection, OutCrs, Prop

SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
_JSON_TYPES = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date-time": {"type": "string", "format": "date-time"},
}
_GEOMETRY_FORMATS = {
    "MultiPolygon": "geometry-multipolygon",
    "Point": "geometry-point",
    "Geometry": "geometry-any",
}


def bad(name: str, zh: str, en: str) -> ApiError:
    return ApiError("invalid_parameter", detail=zh, detail_en=en, field=name)


@dataclass
class Query:
    crs: OutCrs
    bbox: tuple[float, float, float, float] | None = None
    bbox_crs: OutCrs | None = None
    interval: tuple[datetime | None, datetime | None] | None = None
    filters: dict[str, list[Any]] = field(default_factory=dict)
    limit: int = 100
    offset: int = 0
    sortby: list[tuple[Prop, bool]] = field(default_factory=list)
    """(property, descending), in order; the feature id breaks ties (pages stay stable)."""
    properties: set[str] | None = None
    """The properties the features carry; None: all."""


def filter_values(p: Prop, raw: str) -> list[Any]:
    parts = raw.split(",")
    if p.type == "integer":
        try:
            return [int(v) for v in parts]
        except ValueError:
            raise bad(p.name, f"{p.name} 应为整数", f"{p.name} must be an integer") from None
    return parts


def sortable(c: Collection) -> dict[str, Prop]:
    """What a collection sorts by: properties everyone may see. A property shown only inside the
    caller's scope, or only when a case's privacy class allows it, is not sortable: where a case
    lands in the order would tell what the feature does not show."""
    return {p.name: p for p in c.props if p.public and p.privacy is None}


def parse_sortby(c: Collection, raw: str | None) -> list[tuple[Prop, bool]]:
    """`sortby=-reported_at,+number`: comma-separated names, `-` for descending, `+` (or
    nothing) for ascending; a `+` left unencoded in the query string arrives as a space."""
    if raw is None:
        return []
    allowed = sortable(c)
    out: list[tuple[Prop, bool]] = []
    for item in raw.split(","):
        name = item.strip()
        desc = name.startswith("-")
        name = name.lstrip("+-").strip()
        p = allowed.get(name)
        if p is None:
            raise bad(
                "sortby",
                f"sortby 只能按以下属性排序：{', '.join(allowed)}（得到 {name or '空'}）",
                f"sortby takes these properties: {', '.join(allowed)} (got {name or 'nothing'})",
            )
        if any(q.name == p.name for q, _ in out):
            raise bad("sortby", f"sortby 重复了 {name}", f"sortby names {name} twice")
        out.append((p, desc))
    return out


def order_sql(c: Collection, sortby: list[tuple[Prop, bool]]) -> str:
    """ORDER BY of a page: the sort keys (SQL of the collection's own properties, never input),
    then the id."""
    keys = [f"{p.sql} {'DESC' if desc else 'ASC'} NULLS LAST" for p, desc in sortby]
    return ", ".join([*keys, c.id_sql])


def parse_properties(c: Collection, raw: str | None) -> set[str] | None:
    """`properties=code,name`: only these properties in each feature (an empty value: none)."""
    if raw is None:
        return None
    names = {n.strip() for n in raw.split(",") if n.strip()}
    known = {p.name for p in c.props}
    unknown = sorted(names - known)
    if unknown:
        raise bad(
            "properties",
            f"properties 含有未知属性：{', '.join(unknown)}",
            f"properties names unknown properties: {', '.join(unknown)}",
        )
    return names


def queryables(c: Collection, url: str) -> dict[str, Any]:
    """The collection's queryables (OGC API – Features Part 3): the properties it filters on as
    query parameters (`?kind=rural`, a comma-separated list matches any), its geometry (`bbox`)
    and its time (`datetime`), as a JSON Schema."""
    props: dict[str, Any] = {
        p.name: {
            "title": p.name,
            **_JSON_TYPES[p.type],
            **({"description": p.description} if p.description else {}),
        }
        for p in c.filters.values()
    }
    props["geometry"] = {"format": _GEOMETRY_FORMATS.get(c.geometry, "geometry-any")}
    when = c.time_sql.rsplit(".", 1)[-1]  # the column's name: reported_at, updated_at
    props["datetime"] = {"type": "string", "format": "date-time", "description": f"By {when}"}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": url,
        "type": "object",
        "title": c.title,
        "properties": props,
        "additionalProperties": False,
    }
