"""Validation and repair of untrusted point and polygon input (GeoJSON as decoded JSON).

Every problem is an :class:`Issue` with a stable machine ``code`` and a Chinese + English message;
the only exception raised for bad input is :class:`GeoValidationError`. Raw coordinates are checked
before shapely normalises anything (unclosed rings, too few positions, duplicates are only visible
there); then GEOS validity. ``repair=True`` fixes what can be fixed and reports it.
"""

from __future__ import annotations

import math
import numbers
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.crs import (
    CHINA_LAT_MAX,
    CHINA_LAT_MIN,
    CHINA_LON_MAX,
    CHINA_LON_MIN,
    CRS,
    parse_crs,
    to_wgs84,
)
from geo.measure import area_m2

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

NOT_FINITE = "not_finite"
OUT_OF_RANGE = "out_of_range"
SWAPPED_LAT_LON = "swapped_lat_lon"
WRONG_TYPE = "wrong_type"
TOO_FEW_POINTS = "too_few_points"
UNCLOSED_RING = "unclosed_ring"
SELF_INTERSECTION = "self_intersection"
DUPLICATE_POINTS = "duplicate_points"
TOO_MANY_VERTICES = "too_many_vertices"
SLIVER = "sliver"
INVALID_GEOMETRY = "invalid_geometry"
EMPTY = "empty"
UNKNOWN_CRS = "unknown_crs"
ORIENTATION = "orientation"  # only ever a repair, never an error (RFC 7946 §3.1.6)

CODES: frozenset[str] = frozenset(
    {
        NOT_FINITE,
        OUT_OF_RANGE,
        SWAPPED_LAT_LON,
        WRONG_TYPE,
        TOO_FEW_POINTS,
        UNCLOSED_RING,
        SELF_INTERSECTION,
        DUPLICATE_POINTS,
        TOO_MANY_VERTICES,
        SLIVER,
        INVALID_GEOMETRY,
        EMPTY,
        UNKNOWN_CRS,
        ORIENTATION,
    }
)

MAX_ISSUES_PER_CODE = 20
PRECISION = 7
_GRID = 10.0**-PRECISION

_MESSAGES: dict[str, tuple[str, str]] = {
    NOT_FINITE: (
        "坐标不是有限数值（NaN 或无穷大）：{value}",
        "coordinate is not finite (NaN/inf): {value}",
    ),
    OUT_OF_RANGE: (
        "坐标超出范围（经度须在 ±180、纬度须在 ±90 之内）：{lon}, {lat}",
        "coordinate out of range (longitude within ±180, latitude within ±90): {lon}, {lat}",
    ),
    SWAPPED_LAT_LON: (
        "经纬度似乎写反了：{lon}, {lat}（应为经度在前：{lat}, {lon}）",
        "latitude and longitude look swapped: {lon}, {lat} (lon first would be {lat}, {lon})",
    ),
    TOO_FEW_POINTS: (
        "环的点数太少：{n} 个（至少 4 个位置、3 个不同的点）",
        "ring has too few positions: {n} (needs 4 positions, 3 distinct points)",
    ),
    UNCLOSED_RING: (
        "环未闭合：首点与末点不同",
        "ring is not closed: first and last positions differ",
    ),
    SELF_INTERSECTION: (
        "边界自相交（或多个部分重叠），位置 {lon}, {lat}",
        "boundary self-intersects (or parts overlap) at {lon}, {lat}",
    ),
    DUPLICATE_POINTS: (
        "连续重复的点：{lon}, {lat}",
        "consecutive duplicate position: {lon}, {lat}",
    ),
    TOO_MANY_VERTICES: ("顶点太多：超过上限 {limit} 个", "too many vertices: more than {limit}"),
    SLIVER: (
        "面积太小：{area:.3f} 平方米（下限 {limit} 平方米）",
        "area too small: {area:.3f} m² (minimum {limit} m²)",
    ),
    INVALID_GEOMETRY: ("几何图形无效：{reason}", "invalid geometry: {reason}"),
    EMPTY: ("几何图形为空", "geometry is empty"),
    UNKNOWN_CRS: (
        "未知的坐标系：{crs}（可用：wgs84、gcj02、bd09、cgcs2000）",
        "unknown coordinate system: {crs} (use wgs84, gcj02, bd09 or cgcs2000)",
    ),
}

_REPAIR_MESSAGES: dict[str, tuple[str, str]] = {
    UNCLOSED_RING: ("已闭合未闭合的环", "closed unclosed ring"),
    DUPLICATE_POINTS: ("已删除连续重复的点", "removed consecutive duplicate positions"),
    SELF_INTERSECTION: (
        "已修复自相交（只保留面状部分）",
        "repaired self-intersection (kept polygonal parts only)",
    ),
    INVALID_GEOMETRY: (
        "已修复无效几何（只保留面状部分）",
        "repaired invalid geometry (kept polygonal parts only)",
    ),
    ORIENTATION: (
        "已调整环的方向（外环逆时针、内环顺时针）",
        "normalised ring orientation (exterior counter-clockwise, holes clockwise)",
    ),
    TOO_FEW_POINTS: ("已删除退化的内环（洞）", "dropped degenerate hole"),
    SLIVER: ("已删除面积过小的碎片", "dropped sliver parts"),
    EMPTY: ("已删除空的部分", "dropped empty parts"),
}


@dataclass(frozen=True)
class Issue:
    """One problem (or one repair) found in the input.

    ``location`` is the (lon, lat) of the problem spot when it can be shown on a map (for
    ``swapped_lat_lon``: the likely intended spot); ``path`` points into the raw GeoJSON,
    e.g. ``"coordinates[0][3]"``.
    """

    code: str
    message: str
    message_en: str
    location: tuple[float, float] | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "message_en": self.message_en,
            "location": list(self.location) if self.location is not None else None,
            "path": self.path,
        }


class GeoValidationError(ValueError):
    """Bad geometry input; ``issues`` lists every problem found."""

    def __init__(self, issues: Sequence[Issue]) -> None:
        self.issues: list[Issue] = list(issues)
        text = "; ".join(f"{i.code}: {i.message_en}" for i in self.issues[:5])
        if len(self.issues) > 5:
            text += f"; … ({len(self.issues)} issues)"
        super().__init__(text or "invalid geometry")

    @property
    def codes(self) -> list[str]:
        """Distinct issue codes in order of first appearance."""
        return list(dict.fromkeys(i.code for i in self.issues))


@dataclass(frozen=True)
class ParsedPolygon:
    """Result of :func:`parse_polygonal`: a valid WGS84 MultiPolygon, RFC 7946 oriented."""

    geometry: MultiPolygon
    repairs: list[str]
    area_before_m2: float | None
    area_after_m2: float
    repair_issues: list[Issue] = field(default_factory=list)


@dataclass(frozen=True)
class RepairResult:
    """Result of :func:`repair`."""

    geometry: MultiPolygon
    changes: list[str]
    area_before_m2: float | None
    area_after_m2: float
    change_issues: list[Issue] = field(default_factory=list)


# --- helpers --------------------------------------------------------------------------------


def _fmt(v: float) -> str:
    return f"{v:.7f}".rstrip("0").rstrip(".") if math.isfinite(v) else repr(v)


def _issue(
    code: str,
    *,
    path: str | None = None,
    location: tuple[float, float] | None = None,
    zh: str | None = None,
    en: str | None = None,
    **fmt: Any,
) -> Issue:
    if zh is None or en is None:
        tzh, ten = _MESSAGES[code]
        zh = tzh.format(**fmt) if zh is None else zh
        en = ten.format(**fmt) if en is None else en
    return Issue(code=code, message=zh, message_en=en, location=location, path=path)


class _Collector:
    """Collects issues, keeping at most MAX_ISSUES_PER_CODE of each code plus a count."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.counts: Counter[str] = Counter()

    def add(self, issue: Issue) -> None:
        self.counts[issue.code] += 1
        if self.counts[issue.code] <= MAX_ISSUES_PER_CODE:
            self.issues.append(issue)

    def __bool__(self) -> bool:
        return bool(self.issues)

    def has(self, *codes: str) -> bool:
        return any(self.counts[c] for c in codes)

    def result(self) -> list[Issue]:
        out = list(self.issues)
        for code, n in self.counts.items():
            extra = n - MAX_ISSUES_PER_CODE
            if extra > 0:
                out.append(
                    Issue(
                        code=code,
                        message=f"另有 {extra} 处同类问题",
                        message_en=f"{extra} more of the same",
                    )
                )
        return out

    def raise_if_any(self) -> None:
        if self.issues:
            raise GeoValidationError(self.result())


def _number(v: object) -> float | None:
    """A JSON number as float, None if not a number. Huge integers become ±1e300."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return float(max(min(v, 10**300), -(10**300)))
    if isinstance(v, numbers.Real | Decimal):
        try:
            return float(v)
        except (OverflowError, ValueError, TypeError, ArithmeticError):
            return math.inf
    return None


def _in_box(x: float, y: float) -> bool:
    return CHINA_LON_MIN <= x <= CHINA_LON_MAX and CHINA_LAT_MIN <= y <= CHINA_LAT_MAX


def _in_range(x: float, y: float) -> bool:
    return -180.0 <= x <= 180.0 and -90.0 <= y <= 90.0


def _looks_swapped(x: float, y: float) -> bool:
    return not _in_box(x, y) and _in_box(y, x)


def _point_issue(x: float, y: float, path: str | None) -> Issue | None:
    if not (math.isfinite(x) and math.isfinite(y)):
        bad = x if not math.isfinite(x) else y
        return _issue(NOT_FINITE, path=path, value=repr(bad))
    if _looks_swapped(x, y):
        return _issue(SWAPPED_LAT_LON, path=path, location=(y, x), lon=_fmt(x), lat=_fmt(y))
    if not _in_range(x, y):
        return _issue(OUT_OF_RANGE, path=path, lon=_fmt(x), lat=_fmt(y))
    return None


def _crs_or_raise(crs: object) -> CRS:
    try:
        return parse_crs(crs)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise GeoValidationError([_issue(UNKNOWN_CRS, path="crs", crs=repr(crs)[:50])]) from None


def _wrong_type(path: str | None, zh: str, en: str) -> Issue:
    return _issue(WRONG_TYPE, path=path, zh=zh, en=en)


def _type_name(v: object) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, str):
        return "string"
    if isinstance(v, Mapping):
        return "object"
    if isinstance(v, list | tuple):
        return "array"
    if isinstance(v, numbers.Number | Decimal):
        return "number"
    return type(v).__name__


def _is_array(v: object) -> bool:
    return isinstance(v, list | tuple)


# --- points ---------------------------------------------------------------------------------


def validate_point(lon: object, lat: object) -> list[Issue]:
    """Problems with a (lon, lat) pair; an empty list means it is fine."""
    x = _number(lon)
    y = _number(lat)
    issues: list[Issue] = []
    if x is None:
        issues.append(
            _wrong_type(
                "lon", "经度必须是数字", f"longitude must be a number, got {_type_name(lon)}"
            )
        )
    if y is None:
        issues.append(
            _wrong_type(
                "lat", "纬度必须是数字", f"latitude must be a number, got {_type_name(lat)}"
            )
        )
    if x is None or y is None:
        return issues
    issue = _point_issue(x, y, None)
    return [issue] if issue is not None else []


def parse_point(lon: object, lat: object, crs: CRS | str = CRS.WGS84) -> tuple[float, float]:
    """Validated (lon, lat) converted to WGS84; raises :class:`GeoValidationError`."""
    src = _crs_or_raise(crs)
    issues = validate_point(lon, lat)
    if issues:
        raise GeoValidationError(issues)
    x, y = to_wgs84(_number(lon), _number(lat), src)
    return float(x), float(y)


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

_LOC_RE = re.compile(r"\[\s*([-+0-9.eE]+|nan|inf)\s+([-+0-9.eE]+|nan|inf)\s*\]")


def _reason_issue(reason: str, path: str | None) -> Issue:
    m = _LOC_RE.search(reason)
    loc: tuple[float, float] | None = None
    if m:
        try:
            loc = (float(m.group(1)), float(m.group(2)))
        except ValueError:
            loc = None
        if loc is not None and not all(math.isfinite(v) for v in loc):
            loc = None
    if reason.startswith(("Self-intersection", "Ring Self-intersection")) and loc is not None:
        return _issue(
            SELF_INTERSECTION, path=path, location=loc, lon=_fmt(loc[0]), lat=_fmt(loc[1])
        )
    return _issue(INVALID_GEOMETRY, path=path, location=loc, reason=reason)


def _polygonal_parts(geom: BaseGeometry) -> list[Polygon]:
    out: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            if not part.is_empty:
                out.append(part)
        elif isinstance(part, MultiPolygon) or hasattr(part, "geoms"):
            out.extend(_polygonal_parts(part))
    return out


def _as_multipolygon(parts: Sequence[Polygon]) -> MultiPolygon:
    mp = MultiPolygon(list(parts))
    if len(parts) > 1 and not mp.is_valid:
        merged = shapely.union_all(list(parts))
        mp = MultiPolygon(_polygonal_parts(merged))
    return mp


def _bad_orientation(geom: BaseGeometry) -> bool:
    for poly in _polygonal_parts(geom):
        if not shapely.is_ccw(poly.exterior):
            return True
        if any(shapely.is_ccw(h) for h in poly.interiors):
            return True
    return False


def _orient(geom: MultiPolygon) -> MultiPolygon:
    result: MultiPolygon = shapely.orient_polygons(geom, exterior_cw=False)
    return result


def _make_valid_polygonal(geom: BaseGeometry) -> list[Polygon]:
    fixed = shapely.make_valid(geom, method="structure", keep_collapsed=False)
    return _polygonal_parts(fixed)


def _round_valid(geom: MultiPolygon) -> MultiPolygon:
    """Round to PRECISION decimals keeping the geometry valid (vertex order kept if possible)."""
    rounded = shapely.transform(geom, lambda xy: np.round(xy, PRECISION))
    rounded = shapely.remove_repeated_points(rounded)
    if rounded.is_valid and all(len(p.exterior.coords) >= 4 for p in rounded.geoms):
        return MultiPolygon(_polygonal_parts(rounded))
    snapped = shapely.set_precision(geom, _GRID)
    snapped = shapely.transform(snapped, lambda xy: np.round(xy, PRECISION))
    return MultiPolygon(_polygonal_parts(snapped))


def _repair_strings(fixes: list[Issue]) -> list[str]:
    counts = Counter(i.code for i in fixes)
    out: list[str] = []
    for code, n in counts.items():
        zh, en = _REPAIR_MESSAGES.get(code, (code, code))
        suffix = f" ×{n}" if n > 1 else ""
        out.append(f"{code}: {zh} / {en}{suffix}")
    return out


def _repair_issue(code: str, *, path: str | None = None, detail: str = "") -> Issue:
    zh, en = _REPAIR_MESSAGES[code]
    return Issue(code=code, message=zh + detail, message_en=en + detail, path=path)


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


def repair(geom: BaseGeometry) -> RepairResult:
    """Repair a shapely polygonal geometry: drop repeated points, ``make_valid`` (structure
    method, polygonal parts only), RFC 7946 orientation. Returns a MultiPolygon (no rounding).

    Raises :class:`GeoValidationError` (``wrong_type`` / ``empty``) if nothing polygonal remains.
    """
    if not isinstance(geom, BaseGeometry):
        raise GeoValidationError(
            [
                _wrong_type(
                    None,
                    "需要 shapely 几何对象",
                    f"expected a shapely geometry, got {_type_name(geom)}",
                )
            ]
        )
    if geom.is_empty:
        raise GeoValidationError([_issue(EMPTY)])
    parts = _polygonal_parts(geom)
    if not parts:
        raise GeoValidationError(
            [
                _wrong_type(
                    None,
                    "需要面状几何（Polygon/MultiPolygon）",
                    f"expected a polygonal geometry, got {geom.geom_type}",
                )
            ]
        )
    changes: list[Issue] = []
    try:
        current: BaseGeometry = MultiPolygon(parts)
        area_before = area_m2(current)
        coords = shapely.get_coordinates(current)
        if not np.isfinite(coords).all():
            raise GeoValidationError([_issue(NOT_FINITE, value="NaN/inf")])
        deduped = shapely.remove_repeated_points(current)
        if shapely.get_num_coordinates(deduped) != shapely.get_num_coordinates(current):
            changes.append(_repair_issue(DUPLICATE_POINTS))
            current = deduped
        if _bad_orientation(current):
            changes.append(_repair_issue(ORIENTATION))
        reason = shapely.is_valid_reason(current)
        if reason != "Valid Geometry":
            i = _reason_issue(reason, None)
            detail = f"（{reason}）" if i.code == INVALID_GEOMETRY else ""
            fix = _repair_issue(i.code, detail=detail)
            changes.append(Issue(fix.code, fix.message, fix.message_en, i.location, None))
            current = MultiPolygon(_make_valid_polygonal(current))
        result = _orient(_as_multipolygon(_polygonal_parts(current)))
    except GEOSException as exc:
        raise GeoValidationError([_issue(INVALID_GEOMETRY, reason=str(exc)[:200])]) from None
    if result.is_empty:
        raise GeoValidationError([_issue(EMPTY)])
    return RepairResult(
        geometry=result,
        changes=_repair_strings(changes),
        area_before_m2=area_before,
        area_after_m2=area_m2(result),
        change_issues=changes,
    )
