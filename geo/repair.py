"""Repair of polygonal geometry (shapely side): GEOS validity reasons as issues, make_valid,
RFC 7946 orientation, rounding to 7 decimals that stays valid, and :func:`repair`."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import shapely
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geo.issues import (
    _GRID,
    _REPAIR_MESSAGES,
    DUPLICATE_POINTS,
    EMPTY,
    INVALID_GEOMETRY,
    NOT_FINITE,
    ORIENTATION,
    PRECISION,
    SELF_INTERSECTION,
    GeoValidationError,
    Issue,
    RepairResult,
    _fmt,
    _issue,
)
from geo.measure import area_m2
from geo.points import (
    _type_name,
    _wrong_type,
)

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
