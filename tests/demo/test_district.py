"""The demo district generator: counts, codes, households, buildings and exact tiling."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict

import pytest
import shapely
from shapely.geometry import MultiPolygon, Point
from shapely.geometry.base import BaseGeometry

from app.demo import DemoDistrict, generate_district
from app.demo.district import GRID_SIZE, KM_PER_DEG_LAT, KM_PER_DEG_LON, YINGTAN_BBOX

AREA_TOL = 1e-12  # deg², ~0.01 m²


@pytest.fixture(scope="module")
def district() -> DemoDistrict:
    return generate_district()


def _by_level(d: DemoDistrict, level: str) -> list:
    return [a for a in d.areas if a.level == level]


def _km2(geom: BaseGeometry) -> float:
    return geom.area * KM_PER_DEG_LON * KM_PER_DEG_LAT


def _assert_tiles(parts: list[BaseGeometry], whole: BaseGeometry, what: str) -> None:
    """parts cover whole exactly: a valid coverage (no overlaps, noded edges) with no gaps."""
    assert shapely.coverage_is_valid(parts), f"{what}: invalid coverage"
    union = shapely.union_all(parts)
    assert shapely.symmetric_difference(union, whole).area < AREA_TOL, f"{what}: union differs"
    assert abs(sum(p.area for p in parts) - whole.area) < AREA_TOL, f"{what}: gaps or overlaps"
    for p in parts:
        assert whole.covers(p), f"{what}: a part sticks out"


# -- counts and names ------------------------------------------------------------------------


def test_counts(district: DemoDistrict) -> None:
    kinds = Counter(g.kind for g in district.grids)
    assert len(district.grids) == 273
    assert kinds == {"city": 213, "rural": 57, "special": 3}
    assert len(_by_level(district, "city")) == 1
    assert len(_by_level(district, "district")) == 1
    assert 5 <= len(_by_level(district, "street")) <= 6
    assert 30 <= len(_by_level(district, "community")) <= 40


def test_names_are_chinese_and_plausible(district: DemoDistrict) -> None:
    levels = {a.code: a for a in district.areas}
    assert levels["360600000000"].name == "鹰潭市"
    assert levels["360602000000"].name == "月湖区"
    streets = {a.name for a in _by_level(district, "street")}
    assert {"江边街道", "交通街道", "梅园街道", "童家镇"} <= streets
    assert all(s.endswith(("街道", "镇")) for s in streets)
    for a in _by_level(district, "community"):
        assert a.name.endswith(("社区", "村")), a.name
    names = {a.name for a in district.areas}
    assert {"磷肥厂社区", "立新社区", "东湖家园社区"} <= names  # from the seed article
    assert len(names) == len(district.areas)
    area_names = {a.code: a.name for a in district.areas}
    for g in district.grids:
        cname = area_names[g.community_code]
        if g.kind == "city":
            assert re.fullmatch(re.escape(cname) + r"第\d+网格", g.name), g.name
        elif g.kind == "rural":
            assert cname.endswith("村")
            assert g.name.startswith(cname) and g.name.endswith("组网格"), g.name
        else:
            assert g.notes and g.name == f"{g.notes}专属网格"
    assert len({g.name for g in district.grids}) == len(district.grids)
    special = sorted(g.notes or "" for g in district.grids if g.kind == "special")
    assert any("中学" in n for n in special)
    assert any("医院" in n for n in special)


def test_codes(district: DemoDistrict) -> None:
    codes = [a.code for a in district.areas]
    assert len(set(codes)) == len(codes)
    assert all(re.fullmatch(r"\d{12}", c) for c in codes)
    by_code = {a.code: a for a in district.areas}
    assert by_code["360600000000"].level == "city"
    assert by_code["360600000000"].parent_code is None
    assert by_code["360602000000"].parent_code == "360600000000"
    for a in _by_level(district, "street"):
        assert a.parent_code == "360602000000"
        assert a.code.startswith("360602") and a.code.endswith("000")
    for a in _by_level(district, "community"):
        assert a.parent_code is not None and by_code[a.parent_code].level == "street"
        assert a.code[:9] == a.parent_code[:9] and a.code[9:] != "000"
        assert (int(a.code[9:]) >= 200) == a.name.endswith("村")
    grid_codes = [g.code for g in district.grids]
    assert len(set(grid_codes)) == len(grid_codes)
    assert grid_codes == sorted(grid_codes)
    for g in district.grids:
        assert re.fullmatch(r"\d{15}", g.code)
        assert g.code[:12] == g.community_code
        assert by_code[g.community_code].level == "community"
    # every community has grids, and villages have only rural grids
    kinds: dict[str, set[str]] = defaultdict(set)
    for g in district.grids:
        kinds[g.community_code].add(g.kind)
    for a in _by_level(district, "community"):
        assert kinds[a.code], a.name
        assert (kinds[a.code] == {"rural"}) == a.name.endswith("村"), a.name


# -- people ----------------------------------------------------------------------------------


def test_household_bands(district: DemoDistrict) -> None:
    for g in district.grids:
        if g.kind == "city":
            assert 250 <= g.households <= 350
            assert 2.6 <= g.population / g.households <= 3.3 + 0.01
        elif g.kind == "rural":
            assert 80 <= g.households <= 200
            assert 2.5 <= g.population / g.households <= 4.0
        else:
            assert 0 < g.households < 250
            assert g.population > 0
    city_pop = sum(g.population for g in district.grids if g.kind == "city")
    assert 150_000 < city_pop < 230_000  # the seed: 17.08万 urban residents


def test_buildings(district: DemoDistrict) -> None:
    grids = {g.code: g for g in district.grids}
    per_grid: dict[str, list] = defaultdict(list)
    for b in district.buildings:
        per_grid[b.grid_code].append(b)
    assert set(per_grid) == {g.code for g in district.grids if g.kind != "rural"}
    for code, bs in per_grid.items():
        grid = grids[code]
        assert sum(b.households for b in bs) == grid.households
        if grid.kind == "city":
            assert 4 <= len(bs) <= 12
            assert all(b.households > 0 for b in bs)
        assert len({b.name for b in bs}) == len(bs)
        for b in bs:
            assert isinstance(b.geometry, Point)
            assert b.name.endswith(("栋", "楼", "部", "馆", "区", "库"))
            assert b.units >= 1 and b.households >= 0
            assert grid.geometry.contains(b.geometry), b.name
            assert grid.geometry.boundary.distance(b.geometry) > 5e-6  # > ~0.5 m off the edge
            assert shapely.equals_exact(b.geometry, shapely.set_precision(b.geometry, GRID_SIZE))
    names = [b.name for b in district.buildings]
    assert len(set(names)) == len(names)


# -- geometry --------------------------------------------------------------------------------


def test_geometries_valid_and_snapped(district: DemoDistrict) -> None:
    minx, miny, maxx, maxy = YINGTAN_BBOX
    geoms = [a.geometry for a in district.areas] + [g.geometry for g in district.grids]
    for geom in geoms:
        assert isinstance(geom, MultiPolygon)
        assert shapely.is_valid(geom), shapely.is_valid_reason(geom)
        assert not geom.is_empty
        snapped = shapely.set_precision(geom, GRID_SIZE)
        assert shapely.equals_exact(shapely.normalize(geom), shapely.normalize(snapped))
        gx0, gy0, gx1, gy1 = geom.bounds
        assert minx <= gx0 and gx1 <= maxx and miny <= gy0 and gy1 <= maxy
    for a in district.areas:
        if a.level != "city":
            assert len(a.geometry.geoms) == 1, f"{a.name} is not contiguous"
    for g in district.grids:
        assert len(g.geometry.geoms) == 1, f"{g.name} is not contiguous"


def test_where_and_how_big(district: DemoDistrict) -> None:
    d = _by_level(district, "district")[0].geometry
    x0, y0, x1, y1 = d.bounds
    assert x0 >= 116.9 and y0 >= 28.15
    assert x1 <= 117.15 and y1 <= 28.35
    width_km = (x1 - x0) * KM_PER_DEG_LON
    height_km = (y1 - y0) * KM_PER_DEG_LAT
    assert 12 <= width_km <= 25 and 12 <= height_km <= 25
    assert d.contains(Point(117.03, 28.24))  # the urban core
    city_km2 = sorted(_km2(g.geometry) for g in district.grids if g.kind == "city")
    rural_km2 = sorted(_km2(g.geometry) for g in district.grids if g.kind == "rural")
    assert city_km2[0] > 0.02 and city_km2[-1] < 0.5  # a few hundred metres across
    assert rural_km2[0] > city_km2[-1]  # villages are larger than city grids
    # no slivers: every grid is reasonably compact (isoperimetric quotient)
    for g in district.grids:
        quotient = 4 * math.pi * g.geometry.area / g.geometry.length**2
        assert quotient > 0.3, g.name


def test_city_contains_district(district: DemoDistrict) -> None:
    city = _by_level(district, "city")[0].geometry
    d = _by_level(district, "district")[0].geometry
    assert city.contains(d)


def test_grids_tile_communities(district: DemoDistrict) -> None:
    grids: dict[str, list[BaseGeometry]] = defaultdict(list)
    for g in district.grids:
        grids[g.community_code].append(g.geometry)
    for a in _by_level(district, "community"):
        _assert_tiles(grids[a.code], a.geometry, a.name)


def test_communities_tile_streets(district: DemoDistrict) -> None:
    for s in _by_level(district, "street"):
        parts = [a.geometry for a in _by_level(district, "community") if a.parent_code == s.code]
        _assert_tiles(parts, s.geometry, s.name)


def test_streets_tile_district(district: DemoDistrict) -> None:
    d = _by_level(district, "district")[0]
    _assert_tiles([s.geometry for s in _by_level(district, "street")], d.geometry, d.name)


def test_all_grids_tile_district(district: DemoDistrict) -> None:
    d = _by_level(district, "district")[0]
    _assert_tiles([g.geometry for g in district.grids], d.geometry, "all grids")


# -- determinism and speed ---------------------------------------------------------------------


def _fingerprint(d: DemoDistrict) -> list[tuple]:
    return (
        [(a.code, a.name, a.level, a.parent_code, a.geometry.wkb) for a in d.areas]
        + [
            (
                g.code,
                g.name,
                g.kind,
                g.community_code,
                g.households,
                g.population,
                g.notes,
                g.geometry.wkb,
            )
            for g in d.grids
        ]
        + [(b.grid_code, b.name, b.households, b.units, b.geometry.wkb) for b in d.buildings]
    )


def test_deterministic(district: DemoDistrict) -> None:
    # (how long it takes is a benchmark's business, never a test's: the machine is shared)
    again = generate_district()
    assert _fingerprint(again) == _fingerprint(district)
    other = generate_district(seed=7)
    assert _fingerprint(other) != _fingerprint(district)


@pytest.mark.parametrize("seed", [1, 2024])
def test_other_seeds_hold_the_invariants(seed: int) -> None:
    d = generate_district(seed)
    assert Counter(g.kind for g in d.grids) == {"city": 213, "rural": 57, "special": 3}
    assert 30 <= len(_by_level(d, "community")) <= 40
    district_geom = _by_level(d, "district")[0].geometry
    _assert_tiles([g.geometry for g in d.grids], district_geom, "all grids")
    by_community: dict[str, list[BaseGeometry]] = defaultdict(list)
    for g in d.grids:
        by_community[g.community_code].append(g.geometry)
    for a in _by_level(d, "community"):
        _assert_tiles(by_community[a.code], a.geometry, a.name)
    for a in d.areas:
        assert shapely.is_valid(a.geometry)
