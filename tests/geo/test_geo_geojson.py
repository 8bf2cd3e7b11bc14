"""geo.geojson: RFC 7946 output."""

from __future__ import annotations

import json

import shapely
from shapely.geometry import GeometryCollection, MultiPolygon, Point, Polygon, box

from geo.crs import CRS, wgs84_to_gcj02
from geo.geojson import from_geojson, to_geojson


def _ring_ccw(coords: list[list[float]]) -> bool:
    return bool(shapely.is_ccw(shapely.LinearRing(coords)))


def test_right_hand_rule_and_lists() -> None:
    outer = box(117.0, 28.2, 117.01, 28.21, ccw=False)
    hole = box(117.002, 28.202, 117.004, 28.204, ccw=True)
    poly = Polygon(outer.exterior.coords, [hole.exterior.coords])
    gj = to_geojson(poly)
    assert gj["type"] == "Polygon"
    ext, inner = gj["coordinates"]
    assert _ring_ccw(ext) and not _ring_ccw(inner)
    assert isinstance(ext, list) and isinstance(ext[0], list) and isinstance(ext[0][0], float)
    json.dumps(gj)  # plain JSON types


def test_rounding_to_precision() -> None:
    gj = to_geojson(Point(117.123456789, 28.987654321))
    assert gj == {"type": "Point", "coordinates": [117.1234568, 28.9876543]}
    gj3 = to_geojson(Point(117.123456789, 28.987654321), precision=3)
    assert gj3["coordinates"] == [117.123, 28.988]


def test_output_crs_conversion() -> None:
    gj = to_geojson(Point(116.404, 39.915), crs=CRS.GCJ02)
    x, y = wgs84_to_gcj02(116.404, 39.915)
    assert gj["coordinates"] == [round(x, 7), round(y, 7)]
    assert to_geojson(Point(116.404, 39.915), crs="bd09")["coordinates"] != [116.404, 39.915]


def test_collections_and_round_trip() -> None:
    mp = MultiPolygon([box(117.0, 28.2, 117.01, 28.21), box(117.02, 28.2, 117.03, 28.21)])
    gc = GeometryCollection([mp, Point(117, 28)])
    gj = to_geojson(gc)
    assert gj["type"] == "GeometryCollection"
    assert gj["geometries"][0]["type"] == "MultiPolygon"
    back = from_geojson(gj)
    assert back.normalize().equals_exact(gc.normalize(), tolerance=1e-9)
    feature = {"type": "Feature", "geometry": to_geojson(mp), "properties": {}}
    assert from_geojson(feature).equals(mp)
