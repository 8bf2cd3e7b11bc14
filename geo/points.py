"""Reading untrusted numbers and (lon, lat) points: finite, in range, not swapped, in a known CRS."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from decimal import Decimal

from geo.crs import (
    CHINA_LAT_MAX,
    CHINA_LAT_MIN,
    CHINA_LON_MAX,
    CHINA_LON_MIN,
    CRS,
    parse_crs,
    to_wgs84,
)
from geo.issues import (
    NOT_FINITE,
    OUT_OF_RANGE,
    SWAPPED_LAT_LON,
    UNKNOWN_CRS,
    WRONG_TYPE,
    GeoValidationError,
    Issue,
    _fmt,
    _issue,
)


def _number(v: object) -> float | None:
    """A JSON number as float, None if not a number. Huge integers become ±1e300."""
    if type(v) is float:  # the common case first (a query parameter, a JSON number)
        return v
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
    if not _in_range(float(x), float(y)):
        # BD-09's offset moves a point at the edge of the range past it (-180 → -180.0065, a pole
        # past ±90).
        raise GeoValidationError([_issue(OUT_OF_RANGE, lon=_fmt(float(x)), lat=_fmt(float(y)))])
    return float(x), float(y)
