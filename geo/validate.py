"""Validation and repair of untrusted point and polygon input (GeoJSON as decoded JSON).

Every problem is an :class:`Issue` with a stable machine ``code`` and a Chinese + English message;
the only exception raised for bad input is :class:`GeoValidationError`. Raw coordinates are checked
before shapely normalises anything (unclosed rings, too few positions, duplicates are only visible
there); then GEOS validity. ``repair=True`` fixes what can be fixed and reports it.

The issue codes and result types are in :mod:`geo.issues`, points in :mod:`geo.points`, the
shapely-side repair in :mod:`geo.repair`; this module is the public door to all of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon

from geo.crs import (
    CRS,
    to_wgs84,
)
from geo.issues import (
    CODES,
    DUPLICATE_POINTS,
    EMPTY,
    INVALID_GEOMETRY,
    ORIENTATION,
    SLIVER,
    SWAPPED_LAT_LON,
    TOO_FEW_POINTS,
    TOO_MANY_VERTICES,
    UNCLOSED_RING,
    GeoValidationError,
    Issue,
    ParsedPolygon,
    RepairResult,
    _Collector,
    _fmt,
    _issue,
)
from geo.measure import area_m2
from geo.points import (
    _crs_or_raise,
    _is_array,
    _looks_swapped,
    _number,
    _point_issue,
    _type_name,
    _wrong_type,
    parse_point,
    validate_point,
)
from geo.repair import (
    _as_multipolygon,
    _bad_orientation,
    _make_valid_polygonal,
    _orient,
    _reason_issue,
    _repair_issue,
    _repair_strings,
    _round_valid,
    repair,
)

__all__ = [
    "CODES",
    "GeoValidationError",
    "Issue",
    "ParsedPolygon",
    "RepairResult",
    "parse_point",
    "parse_polygonal",
    "repair",
    "validate_point",
]

# --- polygons: raw structure ----------------------------------------------------------------


@dataclass
class _Ring:
    path: str
    points: list[tuple[float, float]]


@dataclass
class _RawPolygon:
    path: str
    rings: list[_Ring]


class _TooMany(Exception):
    pass


def _read_structure(geometry: object, max_vertices: int, issues: _Collector) -> list[_RawPolygon]:
    """Walk the GeoJSON dict into raw polygons, collecting wrong_type issues."""
    if not isinstance(geometry, Mapping):
        issues.add(
            _wrong_type(
                None,
                "几何必须是 GeoJSON 对象（Polygon 或 MultiPolygon）",
                f"geometry must be a GeoJSON object (Polygon or MultiPolygon), "
                f"got {_type_name(geometry)}",
            )
        )
        return []
    gtype = geometry.get("type")
    if not isinstance(gtype, str) or gtype not in ("Polygon", "MultiPolygon"):
        shown = gtype if isinstance(gtype, str) else _type_name(gtype)
        issues.add(
            _wrong_type(
                "type",
                f"几何类型必须是 Polygon 或 MultiPolygon，而不是 {shown[:40]}",
                f"geometry type must be Polygon or MultiPolygon, got {shown[:40]}",
            )
        )
        return []
    coords = geometry.get("coordinates")
    if not _is_array(coords):
        issues.add(
            _wrong_type(
                "coordinates",
                "coordinates 必须是数组",
                f"coordinates must be an array, got {_type_name(coords)}",
            )
        )
        return []
    assert isinstance(coords, list | tuple)
    multi = gtype == "MultiPolygon"
    counter = [0]
    polygons: list[_RawPolygon] = []
    if multi:
        for pi, pcoords in enumerate(coords):
            poly = _read_polygon(pcoords, f"coordinates[{pi}]", max_vertices, counter, issues)
            if poly is not None:
                polygons.append(poly)
    else:
        poly = _read_polygon(coords, "coordinates", max_vertices, counter, issues)
        if poly is not None:
            polygons.append(poly)
    return polygons


def _read_polygon(
    pcoords: object, path: str, max_vertices: int, counter: list[int], issues: _Collector
) -> _RawPolygon | None:
    if not _is_array(pcoords):
        issues.add(
            _wrong_type(
                path,
                "多边形必须是环的数组",
                f"polygon must be an array of rings, got {_type_name(pcoords)}",
            )
        )
        return None
    assert isinstance(pcoords, list | tuple)
    rings: list[_Ring] = []
    for ri, rcoords in enumerate(pcoords):
        rpath = f"{path}[{ri}]"
        if not _is_array(rcoords):
            issues.add(
                _wrong_type(
                    rpath,
                    "环必须是位置的数组",
                    f"ring must be an array of positions, got {_type_name(rcoords)}",
                )
            )
            continue
        assert isinstance(rcoords, list | tuple)
        points: list[tuple[float, float]] = []
        for i, pos in enumerate(rcoords):
            counter[0] += 1
            if counter[0] > max_vertices:
                raise _TooMany
            ppath = f"{rpath}[{i}]"
            if not _is_array(pos) or not 2 <= len(pos) <= 4:
                issues.add(
                    _wrong_type(
                        ppath,
                        "位置必须是 [经度, 纬度] 数组",
                        f"position must be an array [lon, lat], got {_type_name(pos)}",
                    )
                )
                continue
            assert isinstance(pos, list | tuple)
            values = [_number(v) for v in pos]
            if any(v is None for v in values):
                issues.add(_wrong_type(ppath, "坐标必须是数字", "coordinates must be numbers"))
                continue
            points.append((values[0], values[1]))  # type: ignore[arg-type]
        rings.append(_Ring(rpath, points))
    return _RawPolygon(path, rings)


def _check_positions(polygons: list[_RawPolygon], issues: _Collector) -> None:
    """not_finite / out_of_range / swapped_lat_lon, with a whole-geometry swap check."""
    all_pts = [
        (p, r.path, i) for poly in polygons for r in poly.rings for i, p in enumerate(r.points)
    ]
    if not all_pts:
        return
    if all(
        math.isfinite(x) and math.isfinite(y) and _looks_swapped(x, y) for (x, y), _, _ in all_pts
    ):
        (x, y), rpath, i = all_pts[0]
        issues.add(
            _issue(
                SWAPPED_LAT_LON,
                path="coordinates",
                location=(y, x),
                zh=f"所有坐标的经纬度似乎都写反了（例如 {_fmt(x)}, {_fmt(y)}）",
                en=f"latitude and longitude look swapped in all coordinates "
                f"(e.g. {_fmt(x)}, {_fmt(y)})",
            )
        )
        return
    for (x, y), rpath, i in all_pts:
        issue = _point_issue(x, y, f"{rpath}[{i}]")
        if issue is not None:
            issues.add(issue)


def _clean_ring(
    ring: _Ring, *, strict: bool, issues: _Collector, fixes: _Collector
) -> list[tuple[float, float]] | None:
    """Deduplicate and close a raw ring; returns None if it is degenerate (too few points)."""
    pts = ring.points
    target = issues if strict else fixes
    if not pts:
        return None
    dedup = [pts[0]]
    for i in range(1, len(pts)):
        if pts[i] == dedup[-1]:
            target.add(
                _issue(
                    DUPLICATE_POINTS,
                    path=f"{ring.path}[{i}]",
                    location=pts[i],
                    lon=_fmt(pts[i][0]),
                    lat=_fmt(pts[i][1]),
                )
            )
        else:
            dedup.append(pts[i])
    if pts[0] != pts[-1]:
        target.add(_issue(UNCLOSED_RING, path=ring.path, location=pts[0]))
        dedup.append(dedup[0])
    distinct = len(set(dedup))
    if (strict and len(pts) < 4) or len(dedup) < 4 or distinct < 3:
        return None
    return dedup


# --- polygons: geometry phase ---------------------------------------------------------------


def parse_polygonal(
    geometry: object,
    *,
    max_vertices: int = 20000,
    min_area_m2: float = 1.0,
    repair: bool = False,
    crs: CRS | str = CRS.WGS84,
) -> ParsedPolygon:
    """Validate a raw GeoJSON Polygon/MultiPolygon dict and return a clean WGS84 MultiPolygon.

    Raises :class:`GeoValidationError` (and nothing else) for any bad input. With ``repair=True``,
    unclosed rings, duplicate points, self-intersections/other invalidity (``make_valid``, polygonal
    parts kept), degenerate holes and sliver parts are fixed and listed in ``repairs``; not finite,
    out of range, swapped, wrong type, too few points, too many vertices, empty or sliver results
    still raise. Ring orientation is always normalised (RFC 7946) and noted in ``repairs``.
    Coordinates are validated in ``crs`` and converted to WGS84, then rounded to 7 decimals.
    """
    src = _crs_or_raise(crs)
    issues = _Collector()
    fixes = _Collector()
    strict = not repair
    try:
        polygons = _read_structure(geometry, max_vertices, issues)
    except _TooMany:
        raise GeoValidationError(
            [_issue(TOO_MANY_VERTICES, path="coordinates", limit=max_vertices)]
        ) from None
    issues.raise_if_any()
    if not polygons or all(not p.rings for p in polygons):
        raise GeoValidationError([_issue(EMPTY, path="coordinates")])
    _check_positions(polygons, issues)
    issues.raise_if_any()

    # Ring level (raw coordinates).
    shells: list[tuple[str, list[tuple[float, float]], list[list[tuple[float, float]]]]] = []
    for poly in polygons:
        if not poly.rings:
            if strict:
                issues.add(_issue(EMPTY, path=poly.path))
            else:
                fixes.add(_repair_issue(EMPTY, path=poly.path))
            continue
        shell_ring, *hole_rings = poly.rings
        shell = _clean_ring(shell_ring, strict=strict, issues=issues, fixes=fixes)
        if shell is None:
            issues.add(_issue(TOO_FEW_POINTS, path=shell_ring.path, n=len(shell_ring.points)))
        holes: list[list[tuple[float, float]]] = []
        for hr in hole_rings:
            hole = _clean_ring(hr, strict=strict, issues=issues, fixes=fixes)
            if hole is None:
                if strict:
                    issues.add(_issue(TOO_FEW_POINTS, path=hr.path, n=len(hr.points)))
                else:
                    fixes.add(_repair_issue(TOO_FEW_POINTS, path=hr.path))
            else:
                holes.append(hole)
        if shell is not None:
            shells.append((poly.path, shell, holes))
    issues.raise_if_any()
    if not shells:
        raise GeoValidationError([_issue(EMPTY, path="coordinates")])

    try:
        return _finish(shells, src, strict, min_area_m2, issues, fixes)
    except GEOSException as exc:
        raise GeoValidationError([_issue(INVALID_GEOMETRY, reason=str(exc)[:200])]) from None


def _to_wgs84_ring(ring: list[tuple[float, float]], src: CRS) -> list[tuple[float, float]]:
    if src == CRS.WGS84:
        return ring
    arr = np.asarray(ring, dtype=np.float64)
    x, y = to_wgs84(arr[:, 0], arr[:, 1], src)
    return list(zip(np.asarray(x).tolist(), np.asarray(y).tolist(), strict=True))


def _finish(
    shells: list[tuple[str, list[tuple[float, float]], list[list[tuple[float, float]]]]],
    src: CRS,
    strict: bool,
    min_area_m2: float,
    issues: _Collector,
    fixes: _Collector,
) -> ParsedPolygon:
    built: list[tuple[str, Polygon]] = []
    for path, shell, holes in shells:
        poly = Polygon(_to_wgs84_ring(shell, src), [_to_wgs84_ring(h, src) for h in holes])
        built.append((path, poly))
    raw = MultiPolygon([p for _, p in built])
    area_before = area_m2(raw)
    if _bad_orientation(raw):
        fixes.add(_repair_issue(ORIENTATION))

    # GEOS validity: each part, then the parts together.
    invalid: list[Issue] = []
    for path, poly in built:
        reason = shapely.is_valid_reason(poly)
        if reason != "Valid Geometry":
            invalid.append(_reason_issue(reason, path))
    if not invalid and len(built) > 1:
        reason = shapely.is_valid_reason(raw)
        if reason != "Valid Geometry":
            invalid.append(_reason_issue(reason, "coordinates"))

    parts: list[Polygon] = [p for _, p in built]
    if invalid:
        if strict:
            for i in invalid:
                issues.add(i)
            issues.raise_if_any()
        for i in invalid:
            detail = f"（{i.message_en}）" if i.code == INVALID_GEOMETRY else ""
            fix = _repair_issue(i.code, path=i.path, detail=detail)
            fixes.add(Issue(fix.code, fix.message, fix.message_en, i.location, i.path))
        parts = _make_valid_polygonal(raw)

    # Slivers: parts below the threshold.
    kept: list[Polygon] = []
    for poly in parts:
        a = area_m2(poly)
        if a < min_area_m2 and len(parts) > 1:
            loc = poly.representative_point()
            if strict:
                issues.add(_issue(SLIVER, location=(loc.x, loc.y), area=a, limit=min_area_m2))
            else:
                fixes.add(_repair_issue(SLIVER, detail=f" ({a:.3f} m²)"))
            continue
        kept.append(poly)
    issues.raise_if_any()
    if not kept:
        raise GeoValidationError([_issue(EMPTY, path="coordinates")])

    geom = _orient(_round_valid(_as_multipolygon(kept)))
    if geom.is_empty:
        code = SLIVER if area_before > 0 else EMPTY
        if code == SLIVER:
            raise GeoValidationError([_issue(SLIVER, area=area_before, limit=min_area_m2)])
        raise GeoValidationError([_issue(EMPTY, path="coordinates")])
    area_after = area_m2(geom)
    if area_after < min_area_m2:
        loc = geom.representative_point()
        raise GeoValidationError(
            [_issue(SLIVER, location=(loc.x, loc.y), area=area_after, limit=min_area_m2)]
        )
    fix_list = fixes.result()
    return ParsedPolygon(
        geometry=geom,
        repairs=_repair_strings(fix_list),
        area_before_m2=area_before,
        area_after_m2=area_after,
        repair_issues=fix_list,
    )


# --- shapely geometries ---------------------------------------------------------------------
