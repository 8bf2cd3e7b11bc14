"""geo.coverage: gaps, overlaps, outside parts, slivers, on hand-made grids near Yingtan."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import shapely
from shapely.geometry import LineString, MultiPoint, Polygon, box

from geo.coverage import CoverageReport, check_coverage
from geo.measure import area_m2

X0, Y0 = 117.03, 28.24
D = 0.001  # cell size in degrees, ~98 m x 111 m


def cell(i: int, j: int, w: float = 1.0, h: float = 1.0) -> Polygon:
    x = round(X0 + i * D, 7)
    y = round(Y0 + j * D, 7)
    return box(x, y, round(x + w * D, 7), round(y + h * D, 7))


def tiling(n: int = 3) -> list[tuple[str, Polygon]]:
    return [(f"g{i}{j}", cell(i, j)) for i in range(n) for j in range(n)]


def parent(n: int = 3) -> Polygon:
    return box(X0, Y0, round(X0 + n * D, 7), round(Y0 + n * D, 7))


CELL_M2 = area_m2(cell(0, 0))


def test_clean_tiling() -> None:
    rep = check_coverage(tiling(), parent())
    assert rep.ok
    assert rep.overlaps == [] and rep.gaps == [] and rep.outside == []
    assert rep.invalid_edges == [] and rep.coverage_valid is True
    assert rep.ignored_slivers == 0
    assert check_coverage(tiling()).ok  # without parent


def test_one_overlap() -> None:
    kids = tiling()
    kids[4] = ("g11", cell(1, 1, w=1.5))  # reaches halfway into g21
    rep = check_coverage(kids, parent())
    assert not rep.ok
    [ov] = rep.overlaps
    assert {ov.a, ov.b} == {"g11", "g21"}
    assert ov.area_m2 == pytest.approx(CELL_M2 / 2, rel=1e-3)
    assert rep.gaps == [] and rep.outside == []
    assert rep.coverage_valid is False and rep.invalid_edges


def test_duplicate_grid_is_an_overlap() -> None:
    kids = [*tiling(), ("copy", cell(0, 0))]
    rep = check_coverage(kids, parent())
    [ov] = rep.overlaps
    assert {ov.a, ov.b} == {"g00", "copy"}
    assert ov.area_m2 == pytest.approx(CELL_M2, rel=1e-6)


def test_one_gap_in_parent() -> None:
    kids = [k for k in tiling() if k[0] != "g22"]
    rep = check_coverage(kids, parent())
    assert not rep.ok
    [gap] = rep.gaps
    assert gap.area_m2 == pytest.approx(CELL_M2, rel=1e-3)
    assert gap.geometry.equals(cell(2, 2))
    assert rep.overlaps == [] and rep.outside == []


def test_gap_without_parent_is_a_hole_in_the_union() -> None:
    kids = [k for k in tiling() if k[0] != "g11"]
    rep = check_coverage(kids)
    [gap] = rep.gaps
    assert gap.area_m2 == pytest.approx(CELL_M2, rel=1e-3)
    # a missing corner is not a gap when there is no parent to say so
    assert check_coverage([k for k in tiling() if k[0] != "g22"]).ok


def test_island_in_a_hole_is_not_a_gap() -> None:
    kids = [
        k for k in tiling(5) if k[0] not in {"g11", "g12", "g13", "g21", "g23", "g31", "g32", "g33"}
    ]
    assert any(k[0] == "g22" for k in kids)  # the island stays
    rep = check_coverage(kids)
    [gap] = rep.gaps
    assert gap.area_m2 == pytest.approx(8 * CELL_M2, rel=1e-3)


def test_sliver_is_ignored_but_counted() -> None:
    kids = tiling()
    x0, y0, x1, y1 = cell(1, 1).bounds
    # g11 reaches 1e-8 degrees (~1 mm) into g21: an overlap of ~0.1 m²
    kids[4] = ("g11", box(x0, y0, x1 + 1e-8, y1))
    rep = check_coverage(kids, parent())
    assert rep.ok
    assert rep.overlaps == []
    assert rep.ignored_slivers == 1
    assert 0 < rep.ignored_area_m2 < 1.0
    strict = check_coverage(kids, parent(), sliver_m2=0.01)
    assert not strict.ok and len(strict.overlaps) == 1


def test_grid_outside_parent() -> None:
    kids = tiling()
    kids[2] = ("g02", cell(0, 2, h=1.5))  # sticks out of the top by half a cell
    rep = check_coverage(kids, parent())
    assert not rep.ok
    [out] = rep.outside
    assert out.id == "g02"
    assert out.area_m2 == pytest.approx(CELL_M2 / 2, rel=1e-3)
    assert rep.overlaps == [] and rep.gaps == []


def test_everything_at_once_and_geojson() -> None:
    kids = [k for k in tiling() if k[0] != "g22"]
    kids[0] = ("g00", cell(0, 0, w=1.5))
    kids.append(("far", cell(10, 10)))
    rep = check_coverage(kids, parent())
    assert len(rep.overlaps) == 1 and len(rep.gaps) == 1 and len(rep.outside) == 1
    fc = rep.to_geojson()
    json.dumps(fc)
    assert fc["type"] == "FeatureCollection"
    kinds = [f["properties"]["kind"] for f in fc["features"]]
    assert {"overlap", "gap", "outside"} <= set(kinds)
    assert set(kinds) <= {"overlap", "gap", "outside", "invalid_edge"}
    for f in fc["features"]:
        assert f["type"] == "Feature" and f["geometry"]["type"]
        assert isinstance(f["properties"]["ids"], list)
    overlap = next(f for f in fc["features"] if f["properties"]["kind"] == "overlap")
    assert sorted(overlap["properties"]["ids"]) == ["g00", "g10"]
    assert overlap["properties"]["area_m2"] > 1000
    summary = fc["properties"]
    assert summary["ok"] is False
    assert summary["overlaps"] == 1 and summary["gaps"] == 1 and summary["outside"] == 1
    assert summary["children"] == len(kids)


def test_invalid_and_odd_children() -> None:
    bowtie = Polygon([(X0, Y0), (X0 + D, Y0 + D), (X0 + D, Y0), (X0, Y0 + D), (X0, Y0)])
    rep = check_coverage([("bow", bowtie), ("line", LineString([(X0, Y0), (X0 + D, Y0)]))])
    assert rep.invalid_children == ["bow", "line"]
    assert check_coverage([]).ok
    assert check_coverage([("only", cell(0, 0))]).ok


def test_empty_children_with_parent_is_one_big_gap() -> None:
    rep = check_coverage([], parent())
    assert len(rep.gaps) == 1
    assert rep.gaps[0].area_m2 == pytest.approx(9 * CELL_M2, rel=1e-3)


def _voronoi(n: int, seed: int) -> tuple[list[tuple[str, Polygon]], Polygon]:
    rng = np.random.default_rng(seed)
    rect = box(X0, Y0, X0 + 0.3, Y0 + 0.25)
    pts = np.column_stack([rng.uniform(X0, X0 + 0.3, n), rng.uniform(Y0, Y0 + 0.25, n)])
    cells = shapely.get_parts(shapely.voronoi_polygons(MultiPoint(pts), extend_to=rect))
    cells = shapely.set_precision(shapely.intersection(cells, rect), 1e-7)
    return [(f"v{i}", c) for i, c in enumerate(cells.tolist())], shapely.set_precision(rect, 1e-7)


def test_scales_to_2000_grids() -> None:
    kids, rect = _voronoi(2000, seed=7)
    t0 = time.perf_counter()
    rep = check_coverage(kids, rect)
    elapsed = time.perf_counter() - t0
    assert rep.ok and rep.coverage_valid, rep.summary()
    assert elapsed < 5.0
    # remove one cell and shift another: both found
    kids2 = list(kids)
    gone = kids2.pop(100)
    shifted_id, shifted = kids2[500]
    kids2[500] = (shifted_id, shapely.affinity.translate(shifted, xoff=5e-5))
    rep2 = check_coverage(kids2, rect)
    assert not rep2.ok
    assert any(g.geometry.intersects(gone[1]) for g in rep2.gaps)
    assert any(shifted_id in (o.a, o.b) for o in rep2.overlaps)


def test_report_defaults() -> None:
    rep = CoverageReport()
    assert rep.ok and rep.to_geojson()["features"] == []
