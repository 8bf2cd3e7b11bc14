"""Benchmark geo.coverage.check_coverage against shapely.coverage_is_valid.

Builds deterministic tilings near Yingtan (117.03E, 28.24N): Voronoi cells of seeded random
points clipped to a rectangle and snapped with ``shapely.set_precision`` so shared edges match
exactly. A community of 40 grids and a district of 2,000 grids; each timed clean and with a few
defects (one grid shifted: overlaps + gaps). Run: ``python bench/bench_coverage.py``.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from shapely import affinity
from shapely.geometry import MultiPoint, Polygon, box
from shapely.geometry.base import BaseGeometry

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from geo.coverage import check_coverage

LON0, LAT0 = 117.03, 28.24
GRID = 1e-7  # 7 decimals, the precision geo/ stores


def tiling(n: int, width_deg: float, height_deg: float, seed: int) -> tuple[list[Polygon], Polygon]:
    rng = np.random.default_rng(seed)
    rect = box(LON0, LAT0, LON0 + width_deg, LAT0 + height_deg)
    pts = np.column_stack(
        [rng.uniform(LON0, LON0 + width_deg, n), rng.uniform(LAT0, LAT0 + height_deg, n)]
    )
    cells = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(pts), extend_to=rect))
    cells = shapely.intersection(cells, rect)
    cells = shapely.set_precision(cells, GRID)
    parent = shapely.set_precision(rect, GRID)
    return [c for c in cells.tolist() if not c.is_empty], parent


def damaged(cells: list[Polygon]) -> list[BaseGeometry]:
    out: list[BaseGeometry] = list(cells)
    i = len(out) // 2
    out[i] = affinity.translate(out[i], xoff=2e-5, yoff=1e-5)  # ~2 m east, 1 m north
    return out


def jittered(cells: list[Polygon], seed: int) -> list[BaseGeometry]:
    """Every vertex moved independently by up to ~0.2 mm: shared edges no longer match, giving
    thousands of sub-m² overlaps and gaps that must be ignored as slivers."""
    rng = np.random.default_rng(seed)
    out: list[BaseGeometry] = []
    for c in cells:
        noise = rng.uniform(-2e-9, 2e-9, (shapely.get_num_coordinates(c), 2))
        noise[-1] = noise[0]  # keep the (single, hole-free) ring closed
        moved = shapely.transform(c, lambda xy, noise=noise: xy + noise)
        out.append(moved if moved.is_valid else shapely.make_valid(moved))
    return out


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run(name: str, cells: list[BaseGeometry], parent: Polygon, repeat: int) -> None:
    children = [(f"g{i:04d}", c) for i, c in enumerate(cells)]
    arr = np.array(cells, dtype=object)
    t_check, report = timed(lambda: check_coverage(children, parent), repeat)
    t_valid, valid = timed(lambda: shapely.coverage_is_valid(arr), repeat)
    s = report.summary()
    print(
        f"{name:<24} n={len(cells):>5}  check_coverage {t_check * 1000:8.1f} ms   "
        f"coverage_is_valid {t_valid * 1000:7.1f} ms   ratio {t_check / t_valid:6.1f}x   "
        f"ok={s['ok']} valid={bool(valid)} overlaps={s['overlaps']} gaps={s['gaps']} "
        f"outside={s['outside']} invalid_edges={s['invalid_edges']} "
        f"ignored_slivers={s['ignored_slivers']}"
    )


def main() -> None:
    t0 = time.perf_counter()
    community, c_parent = tiling(40, 0.02, 0.015, seed=1)  # ~2 km x 1.7 km
    district, d_parent = tiling(2000, 0.3, 0.25, seed=2)  # ~29 km x 28 km
    print(f"shapely {shapely.__version__}, GEOS {shapely.geos_version_string}")
    run("community (clean)", list(community), c_parent, repeat=20)
    run("community (damaged)", damaged(community), c_parent, repeat=20)
    run("district (clean)", list(district), d_parent, repeat=5)
    run("district (damaged)", damaged(district), d_parent, repeat=5)
    run("district (0.2mm jitter)", jittered(district, seed=3), d_parent, repeat=3)
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
