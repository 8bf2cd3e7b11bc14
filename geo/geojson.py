"""GeoJSON (RFC 7946) output and a thin reader for trusted data.

Output: polygons follow the right-hand rule (exterior counter-clockwise, holes clockwise),
coordinates are rounded (7 decimals ≈ 1 cm) and optionally converted to another CRS.
Untrusted input goes through :func:`geo.validate.parse_polygonal` instead of :func:`from_geojson`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from geo.crs import CRS, transform_geometry

__all__ = ["from_geojson", "orient_rfc7946", "round_coordinates", "to_geojson"]


def orient_rfc7946(geom: BaseGeometry) -> BaseGeometry:
    """Exterior rings counter-clockwise, holes clockwise (also inside collections)."""
    result: BaseGeometry = shapely.orient_polygons(geom, exterior_cw=False)
    return result


def round_coordinates(geom: BaseGeometry, precision: int = 7) -> BaseGeometry:
    """Round every coordinate to ``precision`` decimals (no topology repair)."""
    result: BaseGeometry = shapely.transform(geom, lambda xy: np.round(xy, precision))
    return result


def _listify(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _listify(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_listify(v) for v in value]
    if isinstance(value, np.floating):
        return float(value)
    return value


def to_geojson(
    geom: BaseGeometry, precision: int = 7, crs: CRS | str = CRS.WGS84
) -> dict[str, Any]:
    """A GeoJSON geometry dict (lists, plain floats) for a WGS84 shapely geometry.

    ``crs`` converts the output (e.g. ``CRS.GCJ02`` for an Amap client); RFC 7946 itself
    only knows WGS84, so use it for clients that explicitly asked.
    """
    out = transform_geometry(geom, CRS.WGS84, crs)
    out = round_coordinates(orient_rfc7946(out), precision)
    result: dict[str, Any] = _listify(mapping(out))
    return result


def from_geojson(data: Mapping[str, Any]) -> BaseGeometry:
    """Shapely geometry from a GeoJSON geometry dict (or a Feature's). Trusted data only."""
    if data.get("type") == "Feature":
        data = data["geometry"]
    geom: BaseGeometry = shape(data)
    return geom
