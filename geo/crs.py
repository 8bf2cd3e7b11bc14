"""Coordinate systems used in China and conversions between them.

* ``WGS84``: GPS, our storage CRS (EPSG:4326).
* ``GCJ02``: the obfuscated "Mars" datum of Amap (高德) and Tencent map SDKs. The forward formula
  is the classic published one (a = 6378245.0, ee = 0.00669342162296594323, as in the open
  implementations wandergis/coordtransform and googollee/eviltransform); the offset applies only
  inside the usual China bounding box (:func:`out_of_china`), points outside are unchanged.
* ``BD09``: Baidu's extra rotation/offset on top of GCJ-02 (applied everywhere, like the SDKs).
* ``CGCS2000``: EPSG:4490, the official surveying datum. It agrees with WGS84 within centimetres;
  pyproj without a transformation grid uses a null ("ballpark") transform and returns the same
  numbers. We still go through a cached pyproj ``Transformer`` (always_xy) so that a proper
  transformation can drop in later.

Inverses (GCJ-02 -> WGS84, BD-09 -> GCJ-02/WGS84) are solved by fixed-point iteration (the
offsets vary slowly, so each step gains ~2-3 digits), exact to far better than 1 cm everywhere in
China, unlike the one-step approximation most libraries ship (off by metres).

All functions take scalars or numpy arrays for ``lon, lat`` and return a tuple of the same kind.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from functools import lru_cache
from typing import Any, TypeAlias

import numpy as np
import pyproj
import shapely
from numpy.typing import NDArray
from shapely.geometry.base import BaseGeometry

__all__ = [
    "CRS",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "parse_crs",
    "to_wgs84",
    "transform_geometry",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

Coord: TypeAlias = Any  # float | NDArray[np.float64]
FloatArray: TypeAlias = NDArray[np.float64]


class CRS(str, enum.Enum):  # noqa: UP042 - the service expects exactly str + Enum
    """Coordinate reference systems a client may send or ask for."""

    WGS84 = "wgs84"
    GCJ02 = "gcj02"
    BD09 = "bd09"
    CGCS2000 = "cgcs2000"


_ALIASES: dict[str, CRS] = {
    "wgs84": CRS.WGS84,
    "wgs-84": CRS.WGS84,
    "epsg:4326": CRS.WGS84,
    "4326": CRS.WGS84,
    "gcj02": CRS.GCJ02,
    "gcj-02": CRS.GCJ02,
    "bd09": CRS.BD09,
    "bd-09": CRS.BD09,
    "bd09ll": CRS.BD09,
    "cgcs2000": CRS.CGCS2000,
    "epsg:4490": CRS.CGCS2000,
    "4490": CRS.CGCS2000,
}


def parse_crs(crs: CRS | str) -> CRS:
    """Return the :class:`CRS` for an enum member or a (case-insensitive) name/alias.

    Raises ``ValueError`` for an unknown name.
    """
    if isinstance(crs, CRS):
        return crs
    if isinstance(crs, str):
        found = _ALIASES.get(crs.strip().lower())
        if found is not None:
            return found
    raise ValueError(f"unknown CRS {crs!r}; expected one of {[c.value for c in CRS]}")


# --- GCJ-02 ---------------------------------------------------------------------------------

_A = 6378245.0  # Krasovsky 1940 semi-major axis used by the GCJ-02 formula
_EE = 0.00669342162296594323  # its first eccentricity squared
_X_PI = np.pi * 3000.0 / 180.0

# The bounding box used by coordtransform / eviltransform (and most SDK ports).
CHINA_LON_MIN = 72.004
CHINA_LON_MAX = 137.8347
CHINA_LAT_MIN = 0.8293
CHINA_LAT_MAX = 55.8271

_MAX_ITER = 30
_TOL_DEG = 1e-12  # ~0.1 micrometre


def _as_arrays(lon: Coord, lat: Coord) -> tuple[FloatArray, FloatArray, bool]:
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    scalar = x.ndim == 0 and y.ndim == 0
    x, y = np.broadcast_arrays(x, y)
    return x, y, scalar


def _out(x: FloatArray, y: FloatArray, scalar: bool) -> tuple[Coord, Coord]:
    if scalar:
        return float(x), float(y)
    return x, y


def out_of_china(lon: Coord, lat: Coord) -> Any:
    """True where the point is outside the usual China bounding box (bool or bool array)."""
    x = np.asarray(lon, dtype=np.float64)
    y = np.asarray(lat, dtype=np.float64)
    inside = (
        (x >= CHINA_LON_MIN) & (x <= CHINA_LON_MAX) & (y >= CHINA_LAT_MIN) & (y <= CHINA_LAT_MAX)
    )
    out = ~inside
    if out.ndim == 0:
        return bool(out)
    return out


def _transform_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj_delta(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    """GCJ-02 offset (dlon, dlat) in degrees at WGS84 (x, y), without the China test."""
    dlat = _transform_lat(x - 105.0, y - 35.0)
    dlon = _transform_lon(x - 105.0, y - 35.0)
    radlat = y / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(radlat) ** 2
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def wgs84_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS84 -> GCJ-02 (classic formula; unchanged outside China)."""
    x, y, scalar = _as_arrays(lon, lat)
    ox, oy = x.copy(), y.copy()
    inside = ~np.asarray(out_of_china(x, y))
    if inside.any():
        dlon, dlat = _gcj_delta(x[inside], y[inside])
        ox[inside] += dlon
        oy[inside] += dlat
    return _out(ox, oy, scalar)


def _invert(
    forward: Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]],
    tx: FloatArray,
    ty: FloatArray,
    x0: FloatArray,
    y0: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Solve forward(x, y) == (tx, ty) by fixed-point iteration from (x0, y0)."""
    x = np.array(x0, dtype=np.float64, copy=True)
    y = np.array(y0, dtype=np.float64, copy=True)
    for _ in range(_MAX_ITER):
        fx, fy = forward(x, y)
        ex = fx - tx
        ey = fy - ty
        x = x - ex
        y = y - ey
        err = np.maximum(np.abs(ex), np.abs(ey))
        if not np.any(err > _TOL_DEG):  # also stops on NaN input
            break
    return x, y


def _gcj_forward_raw(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    dlon, dlat = _gcj_delta(x, y)
    return x + dlon, y + dlat


def gcj02_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """GCJ-02 -> WGS84, iterative exact inverse (unchanged outside China)."""
    gx, gy, scalar = _as_arrays(lon, lat)
    ox, oy = gx.copy(), gy.copy()
    inside = ~np.asarray(out_of_china(gx, gy))
    if inside.any():
        tx, ty = gx[inside], gy[inside]
        dlon, dlat = _gcj_delta(tx, ty)
        ox[inside], oy[inside] = _invert(_gcj_forward_raw, tx, ty, tx - dlon, ty - dlat)
    return _out(ox, oy, scalar)


# --- BD-09 ----------------------------------------------------------------------------------


def _bd_forward(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
    z = np.sqrt(x * x + y * y) + 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) + 0.000003 * np.cos(x * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


@np.errstate(invalid="ignore", over="ignore")
def gcj02_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """GCJ-02 -> BD-09 (Baidu's published formula)."""
    x, y, scalar = _as_arrays(lon, lat)
    bx, by = _bd_forward(x, y)
    return _out(bx, by, scalar)


@np.errstate(invalid="ignore", over="ignore")
def bd09_to_gcj02(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """BD-09 -> GCJ-02: the published one-step inverse refined by fixed-point iteration."""
    bx, by, scalar = _as_arrays(lon, lat)
    x = bx - 0.0065
    y = by - 0.006
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    gx, gy = _invert(_bd_forward, bx, by, z * np.cos(theta), z * np.sin(theta))
    return _out(gx, gy, scalar)


def wgs84_to_bd09(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """WGS84 -> BD-09 (via GCJ-02)."""
    gx, gy = wgs84_to_gcj02(lon, lat)
    return gcj02_to_bd09(gx, gy)


def bd09_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    """BD-09 -> WGS84 (via GCJ-02), iterative exact inverse."""
    gx, gy = bd09_to_gcj02(lon, lat)
    return gcj02_to_wgs84(gx, gy)


# --- CGCS2000 and dispatch ------------------------------------------------------------------


@lru_cache(maxsize=4)
def _transformer(src: str, dst: str) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(src, dst, always_xy=True)


def _cgcs2000_to_wgs84(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    x, y, scalar = _as_arrays(lon, lat)
    ox, oy = _transformer("EPSG:4490", "EPSG:4326").transform(x, y)
    return _out(np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64), scalar)


def _wgs84_to_cgcs2000(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    x, y, scalar = _as_arrays(lon, lat)
    ox, oy = _transformer("EPSG:4326", "EPSG:4490").transform(x, y)
    return _out(np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64), scalar)


def _identity(lon: Coord, lat: Coord) -> tuple[Coord, Coord]:
    if type(lon) is float and type(lat) is float:  # one point (the lookup's): nothing to copy
        return lon, lat
    x, y, scalar = _as_arrays(lon, lat)
    return _out(x.copy(), y.copy(), scalar)


_TO_WGS84: dict[CRS, Callable[[Coord, Coord], tuple[Coord, Coord]]] = {
    CRS.WGS84: _identity,
    CRS.GCJ02: gcj02_to_wgs84,
    CRS.BD09: bd09_to_wgs84,
    CRS.CGCS2000: _cgcs2000_to_wgs84,
}
_FROM_WGS84: dict[CRS, Callable[[Coord, Coord], tuple[Coord, Coord]]] = {
    CRS.WGS84: _identity,
    CRS.GCJ02: wgs84_to_gcj02,
    CRS.BD09: wgs84_to_bd09,
    CRS.CGCS2000: _wgs84_to_cgcs2000,
}


def to_wgs84(lon: Coord, lat: Coord, crs: CRS | str) -> tuple[Coord, Coord]:
    """Convert from ``crs`` to WGS84."""
    return _TO_WGS84[parse_crs(crs)](lon, lat)


def from_wgs84(lon: Coord, lat: Coord, crs: CRS | str) -> tuple[Coord, Coord]:
    """Convert from WGS84 to ``crs``."""
    return _FROM_WGS84[parse_crs(crs)](lon, lat)


def transform_geometry(geom: BaseGeometry, src: CRS | str, dst: CRS | str) -> BaseGeometry:
    """Convert any shapely geometry between two CRSs (2D; Z is dropped)."""
    s = parse_crs(src)
    d = parse_crs(dst)
    if s == d:
        return geom

    def _fn(x: FloatArray, y: FloatArray) -> tuple[FloatArray, FloatArray]:
        wx, wy = _TO_WGS84[s](x, y)
        ox, oy = _FROM_WGS84[d](wx, wy)
        return np.asarray(ox, dtype=np.float64), np.asarray(oy, dtype=np.float64)

    result: BaseGeometry = shapely.transform(geom, _fn, interleaved=False)
    return result
