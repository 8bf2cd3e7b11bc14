"""Property tests (Hypothesis) for coordinates and geometry at the API boundary: whatever a
client sends, the answer is a value in range or a problem naming the field, never a crash."""

from __future__ import annotations

import math
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.errors import ApiError
from app.geometry import parse_boundary, parse_lonlat
from app.schemas import parse_bbox

floats = st.floats(allow_nan=True, allow_infinity=True, width=64)
near = st.floats(min_value=-200, max_value=200, allow_nan=False)
crs = st.sampled_from(["wgs84", "gcj02", "bd09", "cgcs2000"])
position = st.lists(st.one_of(floats, near, st.integers(-1000, 1000)), min_size=0, max_size=4)
ring = st.lists(position, min_size=0, max_size=12)
junk: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.text(max_size=5) | floats,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=20,
)
polygon = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["Polygon", "MultiPolygon", "Point", "polygon"]),
        "coordinates": st.one_of(
            st.lists(ring, max_size=3), st.lists(st.lists(ring, max_size=2), max_size=2), junk
        ),
    }
)


@settings(max_examples=300, deadline=None)
@given(lon=st.one_of(floats, near), lat=st.one_of(floats, near), crs=crs)
def test_a_point_is_in_range_or_invalid_point(lon: float, lat: float, crs: str) -> None:
    try:
        x, y = parse_lonlat(lon, lat, crs)
    except ApiError as e:
        assert e.code == "invalid_point" and e.field == "lon,lat" and e.errors
        return
    assert math.isfinite(x) and math.isfinite(y)
    assert -180 <= x <= 180 and -90 <= y <= 90


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(geometry=st.one_of(polygon, junk), crs=crs, repair=st.booleans())
def test_a_boundary_is_valid_or_invalid_geometry(geometry: Any, crs: str, repair: bool) -> None:
    try:
        parsed = parse_boundary(geometry, crs, repair=repair)
    except ApiError as e:
        assert e.code == "invalid_geometry" and e.field == "boundary"
        assert all(err.field == "boundary" and err.code for err in e.errors)
        return
    g = parsed.geometry
    assert g.is_valid and not g.is_empty and g.geom_type in ("Polygon", "MultiPolygon")
    minx, miny, maxx, maxy = g.bounds
    assert -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(
        st.text(max_size=40),
        st.lists(st.one_of(floats, near), min_size=0, max_size=6).map(
            lambda xs: ",".join(str(x) for x in xs)
        ),
    )
)
def test_a_bbox_is_ordered_small_and_finite_or_refused(value: str) -> None:
    try:
        got = parse_bbox(value)
    except ApiError as e:
        assert e.code == "validation_error" and e.field == "bbox"
        return
    if got is None:
        assert value == ""
        return
    a, b, c, d = got
    assert all(math.isfinite(v) for v in got)
    assert -180 <= a <= c <= 180 and -90 <= b <= d <= 90


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(lon=st.one_of(floats, near), lat=st.one_of(floats, near), crs=crs)
async def test_lookup_over_http_never_fails(anon: httpx.AsyncClient, lon, lat, crs) -> None:
    r = await anon.get(
        "/api/v1/grids/lookup", params={"lon": str(lon), "lat": str(lat), "crs": crs}
    )
    assert r.status_code in (200, 404, 422), r.text
    if r.status_code != 200:
        assert r.headers["content-type"].startswith("application/problem+json")
