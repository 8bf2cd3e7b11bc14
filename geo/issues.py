"""The issue codes of geometry input, their Chinese + English messages, and the result types.

Every problem is an :class:`Issue` with a stable machine ``code``; the only exception raised for
bad input is :class:`GeoValidationError`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry import MultiPolygon

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
