"""Geometry at the API boundary: parse GeoJSON in any CRS into WGS84, render out in any CRS.

The rules themselves live in `geo/`; this module only turns their findings into problem details.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Query
from pydantic import WithJsonSchema
from shapely import wkb
from shapely.geometry.base import BaseGeometry

from app.config import get_settings
from app.errors import ApiError, FieldError
from geo.crs import CRS, from_wgs84, transform_geometry
from geo.geojson import to_geojson
from geo.validate import GeoValidationError, Issue, ParsedPolygon, parse_point, parse_polygonal

_POSITION = {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 3}
_RING = {"type": "array", "items": _POSITION, "minItems": 4}
POLYGONAL_SCHEMA: dict[str, Any] = {
    "title": "GeoJSON Polygon or MultiPolygon",
    "description": "RFC 7946 geometry, in the CRS named by `crs` (default wgs84).",
    "type": "object",
    "required": ["type", "coordinates"],
    "properties": {
        "type": {"type": "string", "enum": ["Polygon", "MultiPolygon"]},
        "coordinates": {
            "type": "array",
            "description": "Polygon: rings; MultiPolygon: polygons of rings",
            "items": {"type": "array"},
        },
    },
}
GEOMETRY_OUT_SCHEMA: dict[str, Any] = {
    "title": "GeoJSON geometry",
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}, "coordinates": {"type": "array"}},
}

PolygonalIn = Annotated[dict[str, Any], WithJsonSchema(POLYGONAL_SCHEMA)]
GeometryOut = Annotated[dict[str, Any], WithJsonSchema(GEOMETRY_OUT_SCHEMA)]


def issue_errors(
    issues: list[Issue], field: str, extra: dict[str, Any] | None = None
) -> list[FieldError]:
    out = []
    for i in issues:
        more: dict[str, Any] = {
            "path": i.path,
            "location": list(i.location) if i.location else None,
        }
        if extra:
            more.update(extra)
        out.append(
            FieldError(
                field=field, code=i.code, message=i.message, message_en=i.message_en, extra=more
            )
        )
    return out


def parse_boundary(
    geometry: Any, crs: CRS | str = CRS.WGS84, *, repair: bool = False, field: str = "boundary"
) -> ParsedPolygon:
    s = get_settings()
    try:
        return parse_polygonal(
            geometry,
            max_vertices=s.max_vertices,
            min_area_m2=s.sliver_m2,
            repair=repair,
            crs=CRS(crs),
        )
    except GeoValidationError as e:
        first = e.issues[0] if e.issues else None
        raise ApiError(
            "invalid_geometry",
            detail=first.message if first else None,
            detail_en=first.message_en if first else None,
            field=field,
            errors=issue_errors(e.issues, field),
        ) from None


def parse_lonlat(lon: float, lat: float, crs: CRS | str = CRS.WGS84) -> tuple[float, float]:
    try:
        return parse_point(lon, lat, CRS(crs))
    except GeoValidationError as e:
        first = e.issues[0] if e.issues else None
        raise ApiError(
            "invalid_point",
            detail=first.message if first else None,
            detail_en=first.message_en if first else None,
            field="lon,lat",
            errors=issue_errors(e.issues, "lon,lat"),
        ) from None


def render(
    geom: BaseGeometry | bytes | str | None, crs: CRS | str = CRS.WGS84
) -> dict[str, Any] | None:
    """Shapely geometry, WKB bytes or PostGIS GeoJSON text → RFC 7946 dict in `crs`."""
    if geom is None:
        return None
    crs = CRS(crs)
    if isinstance(geom, str):
        if crs is CRS.WGS84:
            return orjson.loads(geom)  # PostGIS already rounded it
        from shapely.geometry import shape

        geom = shape(orjson.loads(geom))
    elif isinstance(geom, bytes | bytearray | memoryview):
        geom = wkb.loads(bytes(geom))
    return to_geojson(geom, precision=7, crs=crs)


def point_out(lon: float, lat: float, crs: CRS | str) -> tuple[float, float]:
    x, y = from_wgs84(lon, lat, CRS(crs))
    return round(float(x), 7), round(float(y), 7)


__all__ = [
    "CRS",
    "GeometryOut",
    "PolygonalIn",
    "parse_boundary",
    "parse_lonlat",
    "point_out",
    "render",
    "transform_geometry",
]

CrsQuery = Annotated[CRS, Query(description="CRS of coordinates in the answer")]
