"""Geodesic measures on the WGS84 ellipsoid (metres, square metres); never in degrees."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyproj
import shapely
from shapely.geometry import LinearRing, LineString, Polygon
from shapely.geometry.base import BaseGeometry

__all__ = ["GEOD", "area_m2", "distance_m", "length_m", "ring_area_m2"]

GEOD = pyproj.Geod(ellps="WGS84")


def ring_area_m2(ring: LinearRing | LineString) -> float:
    """Unsigned geodesic area enclosed by one ring."""
    coords = shapely.get_coordinates(ring)
    if len(coords) < 3:
        return 0.0
    area, _ = GEOD.polygon_area_perimeter(coords[:, 0], coords[:, 1])
    return abs(float(area))


def _polygon_area(poly: Polygon) -> float:
    if poly.is_empty:
        return 0.0
    total = ring_area_m2(poly.exterior)
    for hole in poly.interiors:
        total -= ring_area_m2(hole)
    return max(total, 0.0)


def area_m2(geom: BaseGeometry | None) -> float:
    """Geodesic area of the polygonal parts of ``geom`` (exterior minus holes), m².

    Lines and points count 0. Overlapping parts of an invalid multi-geometry count twice.
    """
    if geom is None or geom.is_empty:
        return 0.0
    total = 0.0
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            total += _polygon_area(part)
        elif hasattr(part, "geoms"):  # nested GeometryCollection
            total += area_m2(part)
    return total


def _line_length(coords: np.ndarray[Any, Any]) -> float:
    if len(coords) < 2:
        return 0.0
    return float(GEOD.line_length(coords[:, 0], coords[:, 1]))


def length_m(geom: BaseGeometry | None) -> float:
    """Geodesic length of lines; for polygons the length of all rings (perimeter), m."""
    if geom is None or geom.is_empty:
        return 0.0
    total = 0.0
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            rings = [part.exterior, *part.interiors]
            total += sum(_line_length(shapely.get_coordinates(r)) for r in rings)
        elif isinstance(part, LineString):  # includes LinearRing
            total += _line_length(shapely.get_coordinates(part))
        elif hasattr(part, "geoms"):
            total += length_m(part)
    return total


def distance_m(lon1: Any, lat1: Any, lon2: Any, lat2: Any) -> Any:
    """Geodesic distance between points (scalars -> float, arrays -> array), m."""
    _, _, dist = GEOD.inv(lon1, lat1, lon2, lat2)
    if np.ndim(dist) == 0:
        return float(dist)
    return np.asarray(dist, dtype=np.float64)
