"""The buildings (楼栋) of the demo district's city and special grids: households split over
buildings placed well inside their grid, spread apart."""

from __future__ import annotations

import math
import random

import shapely
from shapely.geometry import MultiPolygon, Point
from shapely.geometry.base import BaseGeometry

from app.demo import names
from app.demo.district_spec import (
    GRID_SIZE,
    DemoBuilding,
)


def _split_households(rng: random.Random, total: int, n: int, minimum: int) -> list[int]:
    weights = [rng.uniform(0.6, 1.4) for _ in range(n)]
    spare = total - minimum * n
    raw = [spare * w / sum(weights) for w in weights]
    shares = [math.floor(r) for r in raw]
    order = sorted(range(n), key=lambda i: (-(raw[i] - shares[i]), i))
    for i in order[: spare - sum(shares)]:
        shares[i] += 1
    return [minimum + s for s in shares]


def _building_points(rng: random.Random, grid: MultiPolygon, n: int) -> list[Point]:
    """n points well inside grid (>= ~15 m from its edge), spread apart."""
    inner: BaseGeometry = shapely.Polygon()
    for margin in (1.5e-4, 8e-5, 3e-5, 1e-5):
        inner = grid.buffer(-margin)
        if not inner.is_empty and inner.area > 0.05 * grid.area:
            break
    shapely.prepare(inner)
    shapely.prepare(grid)
    minx, miny, maxx, maxy = inner.bounds
    spacing = 0.5 * math.sqrt(inner.area / n)
    pts: list[Point] = []
    tries = 0
    while len(pts) < n:
        tries += 1
        if tries % 200 == 0:
            spacing *= 0.7
        x = round(rng.uniform(minx, maxx), 7)
        y = round(rng.uniform(miny, maxy), 7)
        if not shapely.contains_xy(inner, x, y):
            continue
        p = shapely.set_precision(Point(x, y), GRID_SIZE)
        if not grid.contains(p) or grid.boundary.distance(p) <= 0.0:
            continue
        if any(p.distance(q) < spacing for q in pts):
            continue
        pts.append(p)
    return pts


def _units_for(rng: random.Random, households: int) -> int:
    per_unit = rng.choice((12, 14, 18, 22, 24, 33, 36))
    return max(1, min(8, round(households / per_unit)))


def _city_buildings(
    rng: random.Random, grid_code: str, grid: MultiPolygon, estates: list[str], households: int
) -> list[DemoBuilding]:
    lo = max(4, math.ceil(households / 80))
    hi = min(12, households // 24)
    n = rng.randint(lo, hi)
    counts = _split_households(rng, households, n, 12)
    points = _building_points(rng, grid, n)
    out: list[DemoBuilding] = []
    cut = n if len(estates) == 1 else rng.randint(2, n - 2)
    for k in range(n):
        estate, number = (estates[0], k + 1) if k < cut else (estates[1], k - cut + 1)
        out.append(
            DemoBuilding(
                grid_code=grid_code,
                name=f"{estate}{number}栋",
                households=counts[k],
                units=_units_for(rng, counts[k]),
                geometry=points[k],
            )
        )
    return out


def _special_buildings(
    rng: random.Random,
    grid_code: str,
    grid: MultiPolygon,
    institution: str,
    kind: str,
    households: int,
) -> list[DemoBuilding]:
    spec = names.SPECIAL_BUILDINGS[kind]
    residential = [i for i, (_, res) in enumerate(spec) if res]
    counts = dict(
        zip(
            residential,
            _split_households(rng, households, len(residential), 12),
            strict=True,
        )
    )
    points = _building_points(rng, grid, len(spec))
    out: list[DemoBuilding] = []
    for k, (suffix, _) in enumerate(spec):
        h = counts.get(k, 0)
        out.append(
            DemoBuilding(
                grid_code=grid_code,
                name=f"{institution}{suffix}",
                households=h,
                units=_units_for(rng, h) if h else 1,
                geometry=points[k],
            )
        )
    return out
