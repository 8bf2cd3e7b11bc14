"""geo.measure: geodesic lengths and areas in metres."""

from __future__ import annotations

import math

import numpy as np
import pytest
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiPolygon,
    Point,
    Polygon,
    box,
)

from geo.measure import area_m2, distance_m, length_m


def test_one_degree_of_longitude_on_the_equator() -> None:
    # WGS84 semi-major axis a = 6378137 m: a * pi / 180
    assert distance_m(0.0, 0.0, 1.0, 0.0) == pytest.approx(6378137.0 * math.pi / 180, rel=1e-12)


def test_beijing_shanghai() -> None:
    assert distance_m(116.404, 39.915, 121.4737, 31.2304) == pytest.approx(1_067_000, rel=0.01)


def test_distance_arrays() -> None:
    d = distance_m(np.array([0.0, 0.0]), np.array([0.0, 0.0]), np.array([1.0, 0.0]), np.zeros(2))
    assert isinstance(d, np.ndarray) and d[1] == 0.0


def test_square_area_near_yingtan() -> None:
    sq = box(117.0, 28.2, 117.01, 28.21)
    # 0.01° of latitude ≈ 1108.6 m, of longitude at 28.2° ≈ 981.4 m
    assert area_m2(sq) == pytest.approx(1108.6 * 981.4, rel=2e-3)
    assert area_m2(sq.reverse()) == pytest.approx(area_m2(sq))  # orientation independent


def test_area_with_hole_and_multipolygon() -> None:
    outer = box(117.0, 28.2, 117.01, 28.21)
    hole = box(117.002, 28.202, 117.004, 28.204)
    with_hole = Polygon(outer.exterior.coords, [hole.exterior.coords])
    assert area_m2(with_hole) == pytest.approx(area_m2(outer) - area_m2(hole), rel=1e-9)
    mp = MultiPolygon([outer, box(117.02, 28.2, 117.03, 28.21)])
    assert area_m2(mp) == pytest.approx(2 * area_m2(outer), rel=1e-3)
    gc = GeometryCollection([outer, Point(117, 28), LineString([(117, 28), (118, 28)])])
    assert area_m2(gc) == pytest.approx(area_m2(outer))


def test_lines_and_points() -> None:
    assert area_m2(LineString([(0, 0), (1, 1)])) == 0.0
    assert area_m2(Polygon()) == 0.0
    assert area_m2(None) == 0.0
    assert length_m(LineString([(0, 0), (1, 0)])) == pytest.approx(111_319.49, rel=1e-6)
    assert length_m(Point(1, 1)) == 0.0
    sq = box(117.0, 28.2, 117.01, 28.21)
    assert length_m(sq) == pytest.approx(2 * 1108.6 + 2 * 981.4, rel=2e-3)
