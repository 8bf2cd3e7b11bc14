"""Small geometry helpers of the demo generator: the local km frame, irregular outlines, seed
points, Voronoi cells with Lloyd relaxation, cell adjacency, and the city outline. Pure shapely."""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import shapely
from shapely.geometry import MultiPoint, MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from app.demo.district_spec import (
    GRID_SIZE,
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON,
    ORIGIN_LAT,
    ORIGIN_LON,
    YINGTAN_BBOX,
)


def _r6(v: float) -> float:
    """Round a km coordinate to the millimetre: cuts off any platform-dependent last bits."""
    return round(v, 6)


def _km_to_deg(coords: np.ndarray) -> np.ndarray:
    out = np.empty_like(coords)
    out[:, 0] = ORIGIN_LON + coords[:, 0] / KM_PER_DEG_LON
    out[:, 1] = ORIGIN_LAT + coords[:, 1] / KM_PER_DEG_LAT
    return out


def _deg_to_km(lon: float, lat: float) -> tuple[float, float]:
    return ((lon - ORIGIN_LON) * KM_PER_DEG_LON, (lat - ORIGIN_LAT) * KM_PER_DEG_LAT)


def _blob(
    rng: random.Random,
    centre: tuple[float, float],
    radius: float,
    *,
    vertices: int,
    amplitude: float,
    aspect: float = 1.0,
    jitter: float = 0.0,
) -> Polygon:
    """A star-shaped irregular polygon: radius modulated by a few random harmonics."""
    harmonics = [
        (k, rng.uniform(0.3, 1.0) * amplitude / k, rng.uniform(0.0, 2.0 * math.pi))
        for k in range(2, 7)
    ]
    rot = rng.uniform(0.0, math.pi)
    pts: list[tuple[float, float]] = []
    for i in range(vertices):
        t = 2.0 * math.pi * i / vertices
        r = radius * (1.0 + sum(a * math.cos(k * t + ph) for k, a, ph in harmonics))
        r *= 1.0 + rng.uniform(-jitter, jitter)
        x, y = r * math.cos(t) * aspect, r * math.sin(t)
        xr = x * math.cos(rot) - y * math.sin(rot)
        yr = x * math.sin(rot) + y * math.cos(rot)
        pts.append((_r6(centre[0] + xr), _r6(centre[1] + yr)))
    poly = Polygon(pts)
    if not poly.is_valid:  # pragma: no cover - radii stay positive, the ring is simple
        poly = shapely.make_valid(poly).buffer(0)
    return poly


def _sample_points(
    rng: random.Random, region: BaseGeometry, n: int, min_dist: float
) -> list[tuple[float, float]]:
    """n points inside region, pairwise at least min_dist apart (relaxed if it gets crowded)."""
    minx, miny, maxx, maxy = region.bounds
    shapely.prepare(region)
    pts: list[tuple[float, float]] = []
    d2 = min_dist * min_dist
    misses = 0
    while len(pts) < n:
        x = _r6(rng.uniform(minx, maxx))
        y = _r6(rng.uniform(miny, maxy))
        if not shapely.contains_xy(region, x, y):
            continue
        if any((x - px) ** 2 + (y - py) ** 2 < d2 for px, py in pts):
            misses += 1
            if misses > 2000:
                d2 *= 0.8
                misses = 0
            continue
        pts.append((x, y))
    return pts


def _voronoi_cells(points: Sequence[tuple[float, float]], region: BaseGeometry) -> list[Any]:
    """Voronoi cells of points (in input order) clipped to region."""
    minx, miny, maxx, maxy = region.bounds
    frame = shapely.box(minx - 10.0, miny - 10.0, maxx + 10.0, maxy + 10.0)
    vor = shapely.voronoi_polygons(MultiPoint(list(points)), extend_to=frame, ordered=True)
    cells = shapely.get_parts(vor)
    if len(cells) != len(points):  # pragma: no cover - points are distinct
        raise RuntimeError("voronoi lost a cell")
    return list(shapely.intersection(cells, region))


def _largest_part(geom: BaseGeometry) -> Polygon:
    parts = [p for p in shapely.get_parts(geom) if isinstance(p, Polygon) and not p.is_empty]
    return max(parts, key=lambda p: (p.area, p.centroid.x, p.centroid.y))


def _lloyd(
    points: list[tuple[float, float]], region: BaseGeometry, iterations: int
) -> list[tuple[float, float]]:
    for _ in range(iterations):
        cells = _voronoi_cells(points, region)
        moved: list[tuple[float, float]] = []
        for cell in cells:
            part = _largest_part(cell)
            c = part.centroid
            if not shapely.contains_xy(region, c.x, c.y):
                c = part.point_on_surface()
            moved.append((_r6(c.x), _r6(c.y)))
        points = moved
    return points


def _adjacency(geoms: Sequence[BaseGeometry]) -> list[dict[int, float]]:
    """Shared boundary length between every pair of touching polygons (noded coverage)."""
    arr = np.array(geoms, dtype=object)
    tree = STRtree(arr)
    left, right = tree.query(arr, predicate="intersects")
    adj: list[dict[int, float]] = [{} for _ in geoms]
    bounds = shapely.boundary(arr)
    for i, j in zip(left.tolist(), right.tolist(), strict=True):
        if i >= j:
            continue
        length = float(shapely.length(shapely.intersection(bounds[i], bounds[j])))
        if length > 0.0:
            adj[i][j] = length
            adj[j][i] = length
    return adj


def _components(members: Iterable[int], adj: Sequence[dict[int, float]]) -> list[list[int]]:
    """Connected components (by shared edges) of members, each sorted, in order of min member."""
    todo = set(members)
    comps: list[list[int]] = []
    for start in sorted(todo):
        if start not in todo:
            continue
        todo.discard(start)
        stack = [start]
        comp = [start]
        while stack:
            cur = stack.pop()
            for nb in sorted(adj[cur]):
                if nb in todo:
                    todo.discard(nb)
                    stack.append(nb)
                    comp.append(nb)
        comps.append(sorted(comp))
    return comps


def _as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    geom = shapely.set_precision(geom, GRID_SIZE)
    if isinstance(geom, MultiPolygon):
        return geom
    if isinstance(geom, Polygon):
        return MultiPolygon([geom])
    raise TypeError(f"expected a polygon, got {geom.geom_type}")


def _union(geoms: Sequence[BaseGeometry]) -> BaseGeometry:
    if len(geoms) == 1:
        return geoms[0]
    return shapely.coverage_union_all(list(geoms))


def _city_geometry(rng: random.Random, district: BaseGeometry) -> MultiPolygon:
    """鹰潭市: a large irregular outline around the district (other districts not modelled)."""
    minx, miny, maxx, maxy = YINGTAN_BBOX
    cx, cy = _deg_to_km((minx + maxx) / 2.0, (miny + maxy) / 2.0)
    blob_km = _blob(
        rng, (_r6(cx), _r6(cy)), 40.0, vertices=96, amplitude=0.1, aspect=0.72, jitter=0.01
    )
    blob = shapely.transform(blob_km, _km_to_deg)
    box = shapely.box(minx + 0.01, miny + 0.01, maxx - 0.01, maxy - 0.01)
    city = shapely.union(shapely.intersection(blob, box), district, grid_size=GRID_SIZE)
    return _as_multipolygon(_largest_part(city))
