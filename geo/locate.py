"""Which of many polygons holds a point: a uniform grid of cells over the polygons' extent.

Each cell lists the polygons whose bounding box meets it, ranked (the lowest rank first), and a
point is tested only against its cell's list with GEOS's prepared point-in-polygon
(`shapely.intersects_xy`: the boundary counts as inside, as PostGIS's `ST_Intersects`). The
answer is the lowest-ranked polygon that holds the point.

Why not shapely's `STRtree.query(point, predicate="intersects")`: on the demo district it took
6.7 µs a point in a loop against 4.6 for this index (the polygons prepared once). In a one-off
measurement on the development machine (uvicorn, 16 clients asking for one point inside a demo
grid, the server's CPU from /proc) the lookup cost about 300 µs of CPU a request with it and
about 280 with this index, 250 with the index's answer taken as given; `bench/bench_lookup.py`
shows the whole lookup's throughput beside `/healthz` (docs/benchmarks.md, "Grid lookup").

`PolygonIndex.nearest` answers a point in no polygon as PostGIS's lookup does: the nearest
polygon on the ellipsoid among those nearest in the plane, with its distance in metres as
`ST_Distance(geography, geography)` measures it (`distance_m`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyproj
import shapely
from shapely.strtree import STRtree

CELLS_PER_POLYGON = 4.0
"""Cells per polygon: about two cells across a polygon of average size."""

NEAREST_MAX_CANDIDATES = 256
"""`nearest` gives up (the caller asks the database) when more polygons than this are within
its reach: a point far outside a city of small grids would otherwise rank thousands of them in
the plane, where the database's KNN index stops at eight."""

RINGS_CACHED = 4096
"""How many polygons' rings (`Ring`) `nearest` keeps ready, least recently used first out."""

MAX_CELLS = 1 << 21
"""At most this many cells (16 MB of offsets), whatever the number of polygons."""


class PolygonIndex:
    """The polygons `geoms` (shapely geometries, WGS84 or any planar x/y), ranked by `rank`
    (any sortable keys, one per polygon): `find(x, y)` is the position of the lowest-ranked one
    that holds (x, y), or None."""

    def __init__(self, geoms: Sequence[Any] | np.ndarray, rank: Sequence[Any]) -> None:
        self.geoms = np.asarray(geoms, dtype=object)
        n = len(self.geoms)
        if n != len(rank):
            raise ValueError("one rank per polygon")
        if n == 0:
            self.x0 = self.y0 = 0.0
            self.x1 = self.y1 = -1.0  # no point is inside an empty extent
            self.nx = self.ny = 1
            self.fx = self.fy = 1.0
            self.starts = np.zeros(2, dtype=np.int64)
            self.items = np.zeros(0, dtype=np.int32)
            self.tree = STRtree(self.geoms)
            self.rings = functools.lru_cache(maxsize=RINGS_CACHED)(self._rings)
            return
        b = shapely.bounds(self.geoms)
        self.x0, self.y0 = float(b[:, 0].min()), float(b[:, 1].min())
        self.x1, self.y1 = float(b[:, 2].max()), float(b[:, 3].max())
        w = max(self.x1 - self.x0, 1e-12)
        h = max(self.y1 - self.y0, 1e-12)
        cells = max(1, min(MAX_CELLS, int(n * CELLS_PER_POLYGON)))
        side = math.sqrt(w * h / cells)
        self.nx = max(1, min(cells, math.ceil(w / side)))
        self.ny = max(1, min(cells // self.nx, math.ceil(h / side)))
        self.fx, self.fy = self.nx / w, self.ny / h
        # Each polygon's rectangle of cells, by the same arithmetic `find` uses for a point.
        i0, i1 = self._column(b[:, 0]), self._column(b[:, 2])
        j0, j1 = self._row(b[:, 1]), self._row(b[:, 3])
        wide, tall = i1 - i0 + 1, j1 - j0 + 1
        count = wide * tall
        owner = np.repeat(np.arange(n), count)
        k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
        cell = (j0[owner] + k // wide[owner]) * self.nx + i0[owner] + k % wide[owner]
        # Within a cell, the lowest rank first.
        ranks = np.empty(n, dtype=np.int64)
        ranks[sorted(range(n), key=lambda i: rank[i])] = np.arange(n)
        order = np.lexsort((ranks[owner], cell))
        self.items = owner[order].astype(np.int32)
        self.starts = np.searchsorted(cell[order], np.arange(self.nx * self.ny + 1))
        shapely.prepare(self.geoms)
        self.tree = STRtree(self.geoms)
        self.rings = functools.lru_cache(maxsize=RINGS_CACHED)(self._rings)

    def _column(self, x: np.ndarray) -> np.ndarray:
        return np.minimum(np.floor((x - self.x0) * self.fx).astype(np.int64), self.nx - 1)

    def _row(self, y: np.ndarray) -> np.ndarray:
        return np.minimum(np.floor((y - self.y0) * self.fy).astype(np.int64), self.ny - 1)

    def find(self, x: float, y: float) -> int | None:
        if not (self.x0 <= x <= self.x1 and self.y0 <= y <= self.y1):
            return None
        c = min(math.floor((y - self.y0) * self.fy), self.ny - 1) * self.nx + min(
            math.floor((x - self.x0) * self.fx), self.nx - 1
        )
        start, end = self.starts[c], self.starts[c + 1]
        if start == end:
            return None
        candidates = self.items[start:end]
        holds = np.flatnonzero(shapely.intersects_xy(self.geoms[candidates], x, y))
        return None if len(holds) == 0 else int(candidates[holds[0]])

    def nearest(self, x: float, y: float, k: int = 8) -> list[tuple[int, float]] | None:
        """For a point in no polygon: the `k` polygons nearest in the plane (as PostGIS's KNN
        `<->` orders them), with each one's distance in metres (`distance_m`); the caller picks
        the least. Only those can be the nearest on the ellipsoid: a polygon nearer there than the
        planar nearest is at most 1.02 / cos(latitude) times as far in the plane, and every
        polygon within that is ranked. None when nothing is within `NEAREST_MAX_DEGREES`, or
        when more than `NEAREST_MAX_CANDIDATES` are within that reach."""
        if len(self.geoms) == 0:
            return None
        p = shapely.points(np.array((x, y)))
        _, dist = self.tree.query_nearest(p, return_distance=True)
        d = float(dist[0])
        if not d <= NEAREST_MAX_DEGREES:
            return None
        reach = d * 1.02 / math.cos(math.radians(min(89.0, abs(y) + 2 * d)))
        near = self.tree.query(p, predicate="dwithin", distance=reach)
        if len(near) > NEAREST_MAX_CANDIDATES:
            return None  # far from a dense set: the database's KNN ranks them cheaper
        if len(near) > k:
            near = near[np.argsort(shapely.distance(self.geoms[near], p), kind="stable")[:k]]
        ranked = near
        return [(int(i), min(r.distance_m(x, y) for r in self.rings(int(i)))) for i in ranked]

    def _rings(self, i: int) -> list[Ring]:
        return rings_of(self.geoms[i])

    def __len__(self) -> int:
        return len(self.geoms)


# --- the nearest polygon, as PostGIS's geography distance measures it ----------------------------

_GEOD = pyproj.Geod(ellps="WGS84")

NEAREST_MAX_DEGREES = 0.5
"""Beyond this planar distance (about 50 km) `nearest` gives up (the caller asks the database):
its bound on which polygons can be nearest assumes distances small beside the Earth."""


def _unit(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    clat = np.cos(lat)
    return np.stack((clat * np.cos(lon), clat * np.sin(lon), np.sin(lat)), axis=-1)


class Ring:
    """A closed ring of (lon, lat) vertices on the unit sphere, its edges as great-circle arcs,
    with what `distance_m` needs of each edge that does not depend on the point: the unit
    vectors of the vertices, each edge's unit normal and the unit bisector of its ends."""

    def __init__(self, coords: np.ndarray) -> None:
        self.v = _unit(np.radians(coords[:, 0]), np.radians(coords[:, 1]))
        s, e = self.v[:-1], self.v[1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            n = np.cross(s, e)
            self.n = n / np.linalg.norm(n, axis=-1)[:, None]  # NaN for a zero-length edge
            mid = s + e
            self.mid = mid / np.linalg.norm(mid, axis=-1)[:, None]
        self.s_mid = np.einsum("ij,ij->i", s, self.mid)

    def distance_m(self, x: float, y: float) -> float:
        """Metres from (x, y) to the ring, as PostGIS's `ST_Distance(geography, geography)`
        measures it (lwgeodetic.c): the ring's point nearest on the sphere, then the geodesic
        on the WGS84 ellipsoid to it (GeographicLib's inverse, which PostGIS and pyproj share).
        The foot of the perpendicular from the point to an edge's great circle is on the edge
        when it is within the cone of the edge's ends (PostGIS's `edge_point_in_cone`)."""
        lon, lat = math.radians(x), math.radians(y)
        p = np.array((math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat)))
        with np.errstate(invalid="ignore"):
            off = self.n @ p  # sine of the angle from the edge's great circle
            rest = np.sqrt(1.0 - off * off)
            on_arc = (self.mid @ p) / rest >= self.s_mid - 2e-16
            foot = np.where(on_arc, np.arcsin(np.minimum(np.abs(off), 1.0)), np.inf)
        ends = 2.0 * np.arcsin(np.minimum(np.linalg.norm(self.v - p, axis=-1) / 2.0, 1.0))
        i, j = int(np.argmin(foot)), int(np.argmin(ends))
        q = (p - self.n[i] * off[i]) / rest[i] if foot[i] < ends[j] else self.v[j]
        qlon = math.degrees(math.atan2(q[1], q[0]))
        qlat = math.degrees(math.asin(max(-1.0, min(1.0, q[2]))))
        if qlon == x and qlat == y:
            return 0.0
        return float(_GEOD.inv(x, y, qlon, qlat)[2])


def rings_of(geom: Any) -> list[Ring]:
    """Every ring (exteriors and holes) of a polygon or multipolygon."""
    return [Ring(shapely.get_coordinates(r)) for r in shapely.get_rings(shapely.get_parts(geom))]


def distance_m(x: float, y: float, geom: Any) -> float:
    """Metres from (x, y) outside `geom` (a polygon or multipolygon, lon/lat) to it, as PostGIS
    measures it: the least over its rings (exteriors and holes) of `Ring.distance_m`."""
    return min(r.distance_m(x, y) for r in rings_of(geom))
