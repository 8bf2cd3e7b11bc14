"""geo.locate.PolygonIndex answers as a brute-force scan of every polygon does."""

from __future__ import annotations

import random

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Polygon, box

from geo.locate import PolygonIndex


def _brute(geoms: list[object], rank: list[object], x: float, y: float) -> int | None:
    holds = [i for i, g in enumerate(geoms) if shapely.intersects_xy(g, x, y)]
    return min(holds, key=lambda i: rank[i]) if holds else None


def _voronoi(n: int, seed: int) -> list[object]:
    rnd = random.Random(seed)
    pts = shapely.MultiPoint(
        [(117 + rnd.random() * 0.2, 28.2 + rnd.random() * 0.1) for _ in range(n)]
    )
    frame = box(117.0, 28.2, 117.2, 28.3)
    cells = [c.intersection(frame) for c in shapely.voronoi_polygons(pts).geoms]
    return [c for c in cells if not c.is_empty]


def _probes(geoms: list[object], seed: int) -> list[tuple[float, float]]:
    x0, y0, x1, y1 = shapely.total_bounds(np.array(geoms, dtype=object))
    rnd = random.Random(seed)
    pts = [
        (rnd.uniform(x0 - 0.01, x1 + 0.01), rnd.uniform(y0 - 0.01, y1 + 0.01)) for _ in range(3000)
    ]
    for g in geoms:
        ring = shapely.get_coordinates(g)
        pts += [tuple(map(float, ring[0])), tuple(map(float, (ring[0] + ring[1]) / 2))]
    # the extent's own corners and edges (the last column and row of cells)
    pts += [(x0, y0), (x1, y1), (x1, (y0 + y1) / 2), ((x0 + x1) / 2, y1)]
    return pts


@pytest.mark.parametrize("n", [1, 7, 300])
def test_it_answers_as_a_scan_of_every_polygon(n: int) -> None:
    geoms = _voronoi(n, seed=n) if n > 1 else [box(117.0, 28.2, 117.01, 28.21)]
    rank = list(range(len(geoms)))
    index = PolygonIndex(geoms, rank)
    assert len(index) == len(geoms)
    inside = 0
    for x, y in _probes(geoms, seed=n):
        expected = _brute(geoms, rank, x, y)
        assert index.find(x, y) == expected, (x, y)
        inside += expected is not None
    assert inside > 100


def test_a_shared_edge_goes_to_the_lowest_rank_and_holes_are_outside() -> None:
    left, right = box(0, 0, 1, 1), box(1, 0, 2, 1)
    ring = Polygon([(3, 0), (6, 0), (6, 3), (3, 3)], [[(4, 1), (5, 1), (5, 2), (4, 2)]])
    several = MultiPolygon([box(7, 0, 8, 1), box(9, 0, 10, 1)])
    index = PolygonIndex([left, right, ring, several], ["b", "a", "c", "d"])
    assert index.find(1.0, 0.5) == 1  # on the shared edge: rank "a"
    assert index.find(0.5, 0.5) == 0 and index.find(1.5, 0.5) == 1
    assert index.find(4.5, 1.5) is None  # in the hole
    assert index.find(4.0, 1.5) == 2  # on the hole's edge: the boundary holds it
    assert index.find(9.5, 0.5) == 3 and index.find(8.5, 0.5) is None
    assert index.find(-0.1, 0.5) is None and index.find(11, 0.5) is None


def test_no_polygons_and_degenerate_extents() -> None:
    empty = PolygonIndex([], [])
    assert empty.find(0.0, 0.0) is None and len(empty) == 0
    with pytest.raises(ValueError):
        PolygonIndex([box(0, 0, 1, 1)], [])
    # every polygon in one thin column: the extent has no width to speak of
    thin = [box(0, i, 1e-13, i + 1) for i in range(5)]
    index = PolygonIndex(thin, list(range(5)))
    assert index.find(0.0, 2.5) == 2 and index.find(0.0, 2.0) == 1


def test_nearest_names_the_polygon_and_gives_up_far_from_a_dense_set() -> None:
    from geo.locate import NEAREST_MAX_CANDIDATES, distance_m

    # a 30 x 30 block of 100 m cells near Yingtan, and points outside it
    cells = [
        box(117.0 + i * 0.001, 28.2 + j * 0.001, 117.001 + i * 0.001, 28.201 + j * 0.001)
        for i in range(30)
        for j in range(30)
    ]
    index = PolygonIndex(cells, list(range(len(cells))))
    near = index.nearest(116.9995, 28.2005)  # ~49 m west of the first column
    assert near is not None
    best, metres = min(near, key=lambda c: c[1])
    assert best == 0 and 45 < metres < 52
    assert metres == distance_m(116.9995, 28.2005, cells[0])
    # ~20 km away: every cell of the block is within the reach, more than the cap
    assert len(cells) > NEAREST_MAX_CANDIDATES
    assert index.nearest(116.8, 28.215) is None
    # ~140 km away: beyond NEAREST_MAX_DEGREES
    assert PolygonIndex(cells[:3], [0, 1, 2]).nearest(118.5, 28.2) is None
