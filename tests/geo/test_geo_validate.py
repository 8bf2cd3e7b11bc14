"""geo.validate: every issue code, the repair paths, and property tests on garbage input."""

from __future__ import annotations

import math
from typing import Any

import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from geo.crs import CRS, from_wgs84, wgs84_to_gcj02
from geo.geojson import to_geojson
from geo.measure import area_m2
from geo.validate import (
    CODES,
    GeoValidationError,
    Issue,
    parse_point,
    parse_polygonal,
    repair,
    validate_point,
)

# ~1 km square near Yingtan, counter-clockwise, closed.
SQ: list[list[float]] = [
    [117.0, 28.2],
    [117.01, 28.2],
    [117.01, 28.21],
    [117.0, 28.21],
    [117.0, 28.2],
]
HOLE_CW: list[list[float]] = [
    [117.002, 28.202],
    [117.002, 28.204],
    [117.004, 28.204],
    [117.004, 28.202],
    [117.002, 28.202],
]
BOWTIE: list[list[float]] = [
    [117.0, 28.2],
    [117.01, 28.21],
    [117.01, 28.2],
    [117.0, 28.21],
    [117.0, 28.2],
]


def poly(*rings: list[list[Any]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(rings)}


def codes_of(geometry: object, **kw: Any) -> list[str]:
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(geometry, **kw)
    issues = ei.value.issues
    assert issues and all(isinstance(i, Issue) for i in issues)
    assert all(i.code in CODES for i in issues)
    assert all(i.message and i.message_en for i in issues)
    return ei.value.codes


# --- points ---------------------------------------------------------------------------------


def test_valid_point() -> None:
    assert validate_point(117.03, 28.24) == []
    assert parse_point(117.03, 28.24) == (117.03, 28.24)


def test_point_not_finite() -> None:
    [issue] = validate_point(float("nan"), 28.0)
    assert issue.code == "not_finite"
    assert validate_point(117.0, math.inf)[0].code == "not_finite"


def test_point_out_of_range() -> None:
    [issue] = validate_point(181.0, 28.0)
    assert issue.code == "out_of_range"
    assert validate_point(10**400, 28.0)[0].code == "out_of_range"  # huge JSON integer


def test_point_swapped_has_priority_over_out_of_range() -> None:
    [issue] = validate_point(28.24, 117.03)  # lat 117 is out of range, but swapped is Yingtan
    assert issue.code == "swapped_lat_lon"
    assert issue.location == (117.03, 28.24)
    # in range but in the Arctic, and the swap lands in Xinjiang
    assert validate_point(40.0, 80.0)[0].code == "swapped_lat_lon"


def test_point_wrong_type() -> None:
    for bad in ("117", None, True, [117.0], {"lon": 1}):
        issues = validate_point(bad, 28.0)
        assert [i.code for i in issues] == ["wrong_type"]
        assert issues[0].path == "lon"


def test_parse_point_converts_crs() -> None:
    gx, gy = wgs84_to_gcj02(117.03, 28.24)
    x, y = parse_point(gx, gy, CRS.GCJ02)
    assert x == pytest.approx(117.03, abs=1e-9) and y == pytest.approx(28.24, abs=1e-9)
    bx, by = from_wgs84(117.03, 28.24, "bd09")
    assert parse_point(bx, by, "bd09") == pytest.approx((117.03, 28.24), abs=1e-9)


def test_parse_point_raises_only_geovalidationerror() -> None:
    with pytest.raises(GeoValidationError) as ei:
        parse_point(28.24, 117.03)
    assert ei.value.codes == ["swapped_lat_lon"]
    assert isinstance(ei.value, ValueError)
    with pytest.raises(GeoValidationError) as ei:
        parse_point(117.0, 28.0, "mars")
    assert ei.value.codes == ["unknown_crs"]


# --- polygons: each code ----------------------------------------------------------------------


def test_valid_polygon() -> None:
    res = parse_polygonal(poly(SQ))
    assert res.repair_issues == []
    assert isinstance(res.geometry, MultiPolygon) and res.geometry.is_valid
    assert res.repairs == []
    assert res.area_after_m2 == pytest.approx(area_m2(Polygon(SQ)))
    assert res.area_before_m2 == pytest.approx(res.area_after_m2)


def test_valid_multipolygon_with_hole() -> None:
    other = [[x + 0.02, y] for x, y in SQ]
    res = parse_polygonal({"type": "MultiPolygon", "coordinates": [[SQ, HOLE_CW], [other]]})
    assert len(res.geometry.geoms) == 2
    assert len(res.geometry.geoms[0].interiors) == 1
    assert res.repairs == []


def test_not_finite() -> None:
    ring = [list(p) for p in SQ]
    ring[2] = [117.01, float("nan")]
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(ring))
    [issue] = ei.value.issues
    assert issue.code == "not_finite" and issue.path == "coordinates[0][2]"


def test_out_of_range() -> None:
    ring = [list(p) for p in SQ]
    ring[1] = [117.01, 128.2]
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(ring))
    [issue] = ei.value.issues
    assert issue.code == "out_of_range" and issue.path == "coordinates[0][1]"


def test_swapped_whole_polygon() -> None:
    swapped = [[y, x] for x, y in SQ]
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(swapped))
    assert [i.code for i in ei.value.issues] == ["swapped_lat_lon"]  # one issue, not five
    assert ei.value.issues[0].location == (117.0, 28.2)


def test_swapped_single_vertex() -> None:
    ring = [list(p) for p in SQ]
    ring[2] = [28.21, 117.01]
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(ring))
    [issue] = ei.value.issues
    assert issue.code == "swapped_lat_lon" and issue.path == "coordinates[0][2]"


@pytest.mark.parametrize(
    "geometry",
    [
        None,
        "POLYGON((0 0, 1 0, 1 1, 0 0))",
        [SQ],
        {"type": "Point", "coordinates": [117.0, 28.2]},
        {"type": "LineString", "coordinates": SQ},
        {"type": "Feature", "geometry": poly(SQ)},
        {"type": ["Polygon"], "coordinates": [SQ]},
        {"type": "Polygon"},
        {"type": "Polygon", "coordinates": "[[...]]"},
        {"type": "Polygon", "coordinates": [SQ[0]]},
        {"type": "Polygon", "coordinates": [[117.0, 28.2]]},
        {"type": "Polygon", "coordinates": [[[117.0, "28.2"], *SQ[1:]]]},
        {"type": "Polygon", "coordinates": [[[117.0], *SQ[1:]]]},
        {"type": "Polygon", "coordinates": [[[117.0, 28.2, 0.0, 1.0, 2.0], *SQ[1:]]]},
        {"type": "Polygon", "coordinates": [[[True, 28.2], *SQ[1:]]]},
        {"type": "MultiPolygon", "coordinates": [SQ]},
    ],
)
def test_wrong_type(geometry: object) -> None:
    assert "wrong_type" in codes_of(geometry)


def test_wrong_type_path() -> None:
    ring: list[list[Any]] = [list(p) for p in SQ]
    ring[3] = ["117", 28.21]
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal({"type": "MultiPolygon", "coordinates": [[SQ], [ring]]})
    assert ei.value.issues[0].path == "coordinates[1][0][3]"


def test_three_d_positions_accepted() -> None:
    res = parse_polygonal(poly([[x, y, 12.5] for x, y in SQ]))
    assert not res.geometry.has_z


def test_too_few_points() -> None:
    ring = [SQ[0], SQ[1], SQ[0]]
    assert codes_of(poly(ring)) == ["too_few_points"]
    # 4 positions but only 2 distinct points
    assert "too_few_points" in codes_of(poly([SQ[0], SQ[1], SQ[0], SQ[1], SQ[0]]))
    assert codes_of(poly([SQ[0], SQ[1], SQ[0]]), repair=True) == ["too_few_points"]


def test_unclosed_ring() -> None:
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(SQ[:-1]))
    [issue] = ei.value.issues
    assert issue.code == "unclosed_ring"
    assert issue.path == "coordinates[0]" and issue.location == (117.0, 28.2)


def test_self_intersection_with_location() -> None:
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(BOWTIE))
    [issue] = ei.value.issues
    assert issue.code == "self_intersection"
    assert issue.location == pytest.approx((117.005, 28.205))


def test_duplicate_points() -> None:
    ring = [SQ[0], SQ[1], SQ[1], SQ[2], SQ[3], SQ[4]]
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(ring))
    [issue] = ei.value.issues
    assert issue.code == "duplicate_points"
    assert issue.path == "coordinates[0][2]" and issue.location == (117.01, 28.2)


def test_too_many_vertices() -> None:
    assert codes_of(poly(SQ), max_vertices=4) == ["too_many_vertices"]
    assert codes_of(poly(SQ), max_vertices=4, repair=True) == ["too_many_vertices"]
    assert parse_polygonal(poly(SQ), max_vertices=5).area_after_m2 > 0


def test_sliver() -> None:
    tiny = [[117.0, 28.2], [117.00001, 28.2], [117.00001, 28.20001], [117.0, 28.2]]  # ~0.5 m²
    assert codes_of(poly(tiny)) == ["sliver"]
    assert codes_of(poly(tiny), repair=True) == ["sliver"]
    assert parse_polygonal(poly(tiny), min_area_m2=0.1).area_after_m2 == pytest.approx(0.54, 0.05)
    assert codes_of(poly(SQ), min_area_m2=1e7) == ["sliver"]


def test_sliver_part_of_multipolygon() -> None:
    tiny = [[117.02, 28.2], [117.02001, 28.2], [117.02001, 28.20001], [117.02, 28.2]]
    mp = {"type": "MultiPolygon", "coordinates": [[SQ], [tiny]]}
    assert codes_of(mp) == ["sliver"]
    res = parse_polygonal(mp, repair=True)
    assert len(res.geometry.geoms) == 1
    assert any(r.startswith("sliver") for r in res.repairs)


def test_invalid_geometry_hole_outside_shell() -> None:
    outside_hole = [[x + 0.02, y] for x, y in HOLE_CW]
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(SQ, outside_hole))
    [issue] = ei.value.issues
    assert issue.code == "invalid_geometry"
    assert "Hole lies outside shell" in issue.message_en


def test_overlapping_multipolygon_parts() -> None:
    shifted = [[x + 0.005, y] for x, y in SQ]
    mp = {"type": "MultiPolygon", "coordinates": [[SQ], [shifted]]}
    assert codes_of(mp) == ["self_intersection"]
    res = parse_polygonal(mp, repair=True)
    assert len(res.geometry.geoms) == 1  # merged
    assert res.area_after_m2 == pytest.approx(1.5 * area_m2(Polygon(SQ)), rel=1e-3)
    assert res.area_before_m2 == pytest.approx(2 * area_m2(Polygon(SQ)), rel=1e-3)


@pytest.mark.parametrize(
    "geometry",
    [
        {"type": "Polygon", "coordinates": []},
        {"type": "MultiPolygon", "coordinates": []},
        {"type": "MultiPolygon", "coordinates": [[]]},
    ],
)
def test_empty(geometry: object) -> None:
    assert codes_of(geometry) == ["empty"]
    assert codes_of(geometry, repair=True) == ["empty"]


def test_unknown_crs() -> None:
    assert codes_of(poly(SQ), crs="mars") == ["unknown_crs"]


def test_many_issues_are_capped() -> None:
    ring = [[float("nan"), 28.0]] * 500
    with pytest.raises(GeoValidationError) as ei:
        parse_polygonal(poly(ring))
    assert len(ei.value.issues) == 21
    assert "480" in ei.value.issues[-1].message_en


# --- CRS input ------------------------------------------------------------------------------


def test_gcj02_input_is_converted_to_wgs84() -> None:
    gx, gy = wgs84_to_gcj02([p[0] for p in SQ], [p[1] for p in SQ])
    res = parse_polygonal(poly([[x, y] for x, y in zip(gx, gy, strict=True)]), crs="gcj02")
    expected = Polygon(SQ)
    assert shapely.get_coordinates(res.geometry) == pytest.approx(
        shapely.get_coordinates(expected), abs=2e-7
    )


# --- repairs --------------------------------------------------------------------------------


def test_repair_bowtie() -> None:
    res = parse_polygonal(poly(BOWTIE), repair=True)
    assert res.geometry.is_valid and len(res.geometry.geoms) == 2
    assert res.area_before_m2 == pytest.approx(0.0, abs=1.0)  # the lobes cancel out
    assert res.area_after_m2 == pytest.approx(area_m2(Polygon(SQ)) / 2, rel=1e-3)
    assert [i.code for i in res.repair_issues] == ["self_intersection"]
    assert res.repair_issues[0].location == pytest.approx((117.005, 28.205))
    assert res.repairs[0].startswith("self_intersection:")


def test_repair_unclosed_ring() -> None:
    res = parse_polygonal(poly(SQ[:-1]), repair=True)
    assert [i.code for i in res.repair_issues] == ["unclosed_ring"]
    assert res.area_before_m2 == pytest.approx(res.area_after_m2)
    # three positions, unclosed: closing gives a valid triangle
    tri = parse_polygonal(poly(SQ[:3]), repair=True)
    assert tri.area_after_m2 == pytest.approx(area_m2(Polygon(SQ)) / 2, rel=1e-3)


def test_repair_duplicate_points() -> None:
    ring = [SQ[0], SQ[0], SQ[1], SQ[2], SQ[2], SQ[2], SQ[3], SQ[4], SQ[4]]
    res = parse_polygonal(poly(ring), repair=True)
    assert [i.code for i in res.repair_issues] == ["duplicate_points"] * 4
    assert res.repairs == [
        "duplicate_points: 已删除连续重复的点 / removed consecutive duplicate positions ×4"
    ]
    assert len(res.geometry.geoms[0].exterior.coords) == 5
    assert res.area_before_m2 == pytest.approx(res.area_after_m2)


def test_wrong_orientation_is_normalised() -> None:
    cw = list(reversed(SQ))
    ccw_hole = list(reversed(HOLE_CW))
    for rep in (False, True):
        res = parse_polygonal(poly(cw, ccw_hole), repair=rep)
        p = res.geometry.geoms[0]
        assert p.exterior.is_ccw and not p.interiors[0].is_ccw
        assert [i.code for i in res.repair_issues] == ["orientation"]
        assert res.area_before_m2 == pytest.approx(res.area_after_m2)


def test_repair_drops_degenerate_hole() -> None:
    res = parse_polygonal(poly(SQ, [HOLE_CW[0], HOLE_CW[1], HOLE_CW[0]]), repair=True)
    assert "too_few_points" in [i.code for i in res.repair_issues]
    assert not res.geometry.geoms[0].interiors
    assert codes_of(poly(SQ, [HOLE_CW[0], HOLE_CW[1], HOLE_CW[0]])) == ["too_few_points"]


def test_repair_reports_several_fixes() -> None:
    ring = [BOWTIE[0], BOWTIE[1], BOWTIE[1], BOWTIE[2], BOWTIE[3]]  # dup + unclosed + bow-tie
    res = parse_polygonal(poly(ring), repair=True)
    assert {i.code for i in res.repair_issues} == {
        "duplicate_points",
        "unclosed_ring",
        "self_intersection",
    }
    assert len(res.repairs) == 3


def test_output_rounded_to_7_decimals() -> None:
    ring = [[x + 1.23456789e-9, y] for x, y in SQ]
    res = parse_polygonal(poly(ring))
    for x, y in shapely.get_coordinates(res.geometry):
        assert round(x, 7) == x and round(y, 7) == y


def test_repair_function() -> None:
    res = repair(Polygon(BOWTIE))
    assert res.geometry.is_valid and isinstance(res.geometry, MultiPolygon)
    assert res.area_before_m2 == pytest.approx(0.0, abs=1.0)
    assert res.area_after_m2 == pytest.approx(area_m2(Polygon(SQ)) / 2, rel=1e-3)
    assert [i.code for i in res.change_issues] == ["self_intersection"]

    dup = repair(Polygon([SQ[0], SQ[1], SQ[1], SQ[2], SQ[3], SQ[4]]))
    assert [i.code for i in dup.change_issues] == ["duplicate_points"]

    cw = repair(Polygon(list(reversed(SQ))))
    assert [i.code for i in cw.change_issues] == ["orientation"]
    assert cw.geometry.geoms[0].exterior.is_ccw

    ok = repair(Polygon(SQ))
    assert ok.changes == [] and ok.area_before_m2 == pytest.approx(ok.area_after_m2)

    with pytest.raises(GeoValidationError) as ei:
        repair(LineString(SQ))
    assert ei.value.codes == ["wrong_type"]
    with pytest.raises(GeoValidationError) as ei:
        repair(Polygon())
    assert ei.value.codes == ["empty"]
    with pytest.raises(GeoValidationError):
        repair("POLYGON EMPTY")  # type: ignore[arg-type]
    assert repair(shapely.GeometryCollection([Point(1, 1), Polygon(SQ)])).geometry.equals(
        Polygon(SQ)
    )


# --- properties -----------------------------------------------------------------------------


@st.composite
def star_polygons(draw: st.DrawFn) -> Polygon:
    """Random simple star-shaped polygons (optionally with a hole) somewhere in China."""
    cx = draw(st.floats(min_value=74.0, max_value=134.0))
    cy = draw(st.floats(min_value=19.0, max_value=53.0))
    radius_m = draw(st.floats(min_value=30.0, max_value=5000.0))
    n = draw(st.integers(min_value=3, max_value=40))
    jitter = draw(st.lists(st.floats(-0.2, 0.2), min_size=n, max_size=n))  # gaps < pi
    radii = draw(st.lists(st.floats(0.5, 1.0), min_size=n, max_size=n))
    ry = radius_m / 111_000.0
    rx = ry / math.cos(math.radians(cy))

    def ring(scale: float) -> list[tuple[float, float]]:
        pts = []
        for k in range(n):
            a = 2 * math.pi * (k + jitter[k]) / n
            pts.append(
                (cx + scale * radii[k] * rx * math.cos(a), cy + scale * radii[k] * ry * math.sin(a))
            )
        return pts

    holes = [ring(0.2)[::-1]] if n >= 6 and draw(st.booleans()) else []  # hole inside
    return Polygon(ring(1.0), holes)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(star_polygons(), st.sampled_from([False, True]))
def test_valid_polygons_survive_round_trip(p: Polygon, rep: bool) -> None:
    assert p.is_valid
    gj = to_geojson(p)
    res = parse_polygonal(gj, repair=rep)
    expected = shapely.geometry.shape(gj)
    [got] = res.geometry.geoms
    # Already on the 7-decimal grid and RFC 7946 oriented: comes back vertex for vertex.
    assert got.equals_exact(expected, tolerance=1e-7)
    assert res.area_after_m2 == pytest.approx(area_m2(p), rel=1e-3, abs=1.0)
    assert res.repairs == []


_leaf = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(min_value=-200, max_value=200)
    | st.text(max_size=4)
)
json_like = st.recursive(
    _leaf,
    lambda children: (
        st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=40,
)
_num = st.floats(min_value=116.99, max_value=117.02) | st.floats(min_value=28.19, max_value=28.22)
_position = st.lists(_num, min_size=2, max_size=2) | st.lists(json_like, max_size=4)
_ring = st.lists(
    st.one_of(
        _position, st.lists(st.floats(min_value=117.0, max_value=117.01), min_size=2, max_size=3)
    ),
    max_size=9,
)
_near_valid_ring = st.lists(
    st.tuples(st.floats(117.0, 117.01), st.floats(28.2, 28.21)).map(list), min_size=0, max_size=8
)


@st.composite
def _plausible_ring(draw: st.DrawFn) -> list[list[float]]:
    """Random positions in a ~1 km box, usually closed: bow-ties, spikes, collinear rings..."""
    grid = draw(st.booleans())  # few distinct values -> duplicates, collinear, touching rings
    coord_x = st.sampled_from([117.0, 117.005, 117.01]) if grid else st.floats(117.0, 117.01)
    coord_y = st.sampled_from([28.2, 28.205, 28.21]) if grid else st.floats(28.2, 28.21)
    pts = draw(st.lists(st.tuples(coord_x, coord_y).map(list), min_size=1, max_size=8))
    if draw(st.integers(0, 4)):
        pts.append(list(pts[0]))
    return pts


_rings = st.lists(st.one_of(_ring, _near_valid_ring, json_like), max_size=3)
_plausible_polygon = st.lists(_plausible_ring(), min_size=1, max_size=3)
garbage_geometry = st.one_of(
    json_like,
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "Feature"]) | json_like,
            "coordinates": st.one_of(_rings, st.lists(_rings, max_size=3), json_like),
        }
    ),
    st.fixed_dictionaries({"type": st.just("Polygon"), "coordinates": _rings}),
    st.fixed_dictionaries(
        {"type": st.just("MultiPolygon"), "coordinates": st.lists(_rings, max_size=3)}
    ),
    st.fixed_dictionaries({"type": st.just("Polygon"), "coordinates": _plausible_polygon}),
    st.fixed_dictionaries(
        {
            "type": st.just("MultiPolygon"),
            "coordinates": st.lists(_plausible_polygon, min_size=1, max_size=3),
        }
    ),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    garbage_geometry,
    st.booleans(),
    st.sampled_from(["wgs84", "gcj02", "bd09", "cgcs2000", "mars", None]),
)
def test_garbage_polygonal_only_raises_geovalidationerror(
    geometry: object, rep: bool, crs: Any
) -> None:
    try:
        res = parse_polygonal(geometry, repair=rep, min_area_m2=0.01, crs=crs)
    except GeoValidationError as e:
        assert e.issues and all(i.code in CODES for i in e.issues)
        return
    assert isinstance(res.geometry, MultiPolygon) and res.geometry.is_valid
    assert not res.geometry.is_empty and res.area_after_m2 >= 0.01


@settings(max_examples=200, deadline=None)
@given(json_like, json_like, st.one_of(st.sampled_from(list(CRS)), json_like))
def test_garbage_point_only_raises_geovalidationerror(lon: Any, lat: Any, crs: Any) -> None:
    try:
        x, y = parse_point(lon, lat, crs)
    except GeoValidationError as e:
        assert e.issues
        return
    assert math.isfinite(x) and math.isfinite(y)


def test_a_point_converted_past_the_range_is_refused() -> None:
    """BD-09's offset moves a longitude at the edge past it (-180 → -180.0065): refused, not
    stored (found by tests/reliability/test_properties.py)."""
    from geo.issues import GeoValidationError
    from geo.points import parse_point

    with pytest.raises(GeoValidationError) as e:
        parse_point(-180.0, 0.0, "bd09")
    assert e.value.issues[0].code == "out_of_range"
    assert parse_point(116.4, 39.9, "bd09")[0] < 116.4
