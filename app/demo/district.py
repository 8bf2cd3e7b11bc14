"""Deterministic demo district: 月湖区 (Yuehu), 鹰潭市 (Yingtan), Jiangxi.

``generate_district()`` returns the administrative tree (city, district, 6 streets/towns,
~35 communities/villages), 273 grids (213 city + 57 rural + 3 special, as in the seed article
001_96c85f2d8958f11b.txt) and the buildings (楼栋) of the city and special grids. Pure Python +
shapely, no database; the loader inserts what it returns.

How the geometry is built (all lengths in a local km frame centred on the urban core, converted
to lon/lat at the end with an affine map):

1. an irregular district outline, a dense urban core and a small town seat (童家镇) inside it;
2. seed points: dense in the core and the town seat, sparse in the rural rest, spread out with a
   few Lloyd iterations; one Voronoi diagram per zone, clipped to the zone;
3. the pieces go to lon/lat and are noded together on a 1e-7 degree grid (snap-rounded union of
   all boundaries, then polygonize), so every shared edge has bit-identical vertices;
4. each face goes back to the cell it came from; cells are unions of their faces;
5. cells are grouped into streets (sectors around the core), then each street's urban and rural
   cells are cut into contiguous communities/villages by recursive bisection over the cell
   adjacency graph. Communities, streets and the district are coverage unions of cells.

Same seed, same output, byte for byte: only ``random.Random(seed)``, everything sorted, and
intermediate coordinates rounded so last-bit differences of libm cannot leak into the result.

The parts: ``district_spec`` (the numbers and the returned types), ``shapes`` (geometry helpers),
``buildings`` (楼栋 placement); this module partitions the cells and assembles the tree.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from app.demo import names
from app.demo.buildings import (
    _city_buildings,
    _special_buildings,
)
from app.demo.district_spec import (
    _DIRECTIONS,
    COMMUNITY_TARGET_CELLS,
    CORE_RADIUS_KM,
    DEFAULT_SEED,
    DISTRICT_CENTRE_KM,
    DISTRICT_RADIUS_KM,
    DONGHU_CELLS,
    DONGHU_CENTRE_KM,
    GRID_SIZE,
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON,
    N_CORE_CELLS,
    N_RURAL_GRIDS,
    N_TOWN_SEAT_GRIDS,
    TOWN_CENTRE_KM,
    TOWN_RADIUS_KM,
    VILLAGE_TARGET_CELLS,
    YINGTAN_BBOX,
    ZONE_CORE,
    ZONE_RURAL,
    ZONE_TOWN,
    DemoArea,
    DemoBuilding,
    DemoDistrict,
    DemoGrid,
)
from app.demo.shapes import (
    _adjacency,
    _as_multipolygon,
    _blob,
    _city_geometry,
    _components,
    _deg_to_km,
    _km_to_deg,
    _lloyd,
    _r6,
    _sample_points,
    _union,
    _voronoi_cells,
)

# --------------------------------------------------------------------------------------------
# the generator

__all__ = [
    "DEFAULT_SEED",
    "GRID_SIZE",
    "KM_PER_DEG_LAT",
    "KM_PER_DEG_LON",
    "YINGTAN_BBOX",
    "DemoArea",
    "DemoBuilding",
    "DemoDistrict",
    "DemoGrid",
    "generate_district",
]


@dataclass
class _Cell:
    zone: str
    geom: Polygon  # lon/lat, noded
    x: float  # centroid, km
    y: float
    area_km2: float


class _Builder:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.cells: list[_Cell] = []
        self.adj: list[dict[int, float]] = []

    # -- 1-4: outline and cells ------------------------------------------------------------

    def build_cells(self) -> None:
        rng = self.rng
        core = _blob(rng, (0.0, 0.0), CORE_RADIUS_KM, vertices=72, amplitude=0.12, jitter=0.01)
        town = _blob(rng, TOWN_CENTRE_KM, TOWN_RADIUS_KM, vertices=40, amplitude=0.1)
        for _ in range(100):  # redraw until the outline holds both zones with a margin
            outline = _blob(
                rng,
                DISTRICT_CENTRE_KM,
                DISTRICT_RADIUS_KM,
                vertices=140,
                amplitude=0.16,
                aspect=1.12,
                jitter=0.012,
            )
            if outline.contains(core.buffer(1.0)) and outline.contains(town.buffer(0.9)):
                break
        else:  # pragma: no cover
            raise RuntimeError("demo district outline does not hold its urban zones")
        core = shapely.set_precision(core, 1e-6)
        town = shapely.set_precision(town, 1e-6)
        rural = shapely.set_precision(outline.difference(core).difference(town), 1e-6)

        zones: list[tuple[str, BaseGeometry, int, float]] = [
            (ZONE_CORE, core, N_CORE_CELLS, 0.2),
            (ZONE_TOWN, town, N_TOWN_SEAT_GRIDS, 0.3),
            (ZONE_RURAL, rural, N_RURAL_GRIDS, 1.2),
        ]
        piece_geoms: list[BaseGeometry] = []
        piece_owner: list[int] = []
        owner_zone: list[str] = []
        for zone, region, n, min_dist in zones:
            pts = _sample_points(rng, region, n, min_dist)
            pts = _lloyd(pts, region, iterations=5)
            for cell in _voronoi_cells(pts, region):
                owner = len(owner_zone)
                owner_zone.append(zone)
                for part in shapely.get_parts(cell):
                    if isinstance(part, Polygon) and part.area > 0.0:
                        piece_geoms.append(part)
                        piece_owner.append(owner)

        # Node everything together on the 1e-7 degree grid.
        pieces = shapely.transform(np.array(piece_geoms, dtype=object), _km_to_deg)
        lines = shapely.union_all(shapely.boundary(pieces), grid_size=GRID_SIZE)
        faces = [
            f
            for f in shapely.get_parts(shapely.polygonize(shapely.get_parts(lines)))
            if isinstance(f, Polygon) and f.area > 0.0
        ]
        tree = STRtree(pieces)
        face_owner: list[int] = []
        for face in faces:
            cands = tree.query(face).tolist()
            overlaps = shapely.area(shapely.intersection(pieces[cands], face)).tolist()
            _, best = max((ov, -piece_owner[c]) for c, ov in zip(cands, overlaps, strict=True))
            face_owner.append(-best)

        # Fragments (a Voronoi cell cut in two by a concave zone, or a snapping crumb) go to the
        # neighbouring cell they share most boundary with, preferring the same zone.
        face_adj = _adjacency(faces)
        n_owners = len(owner_zone)
        for _ in range(20):
            changed = False
            by_owner: dict[int, list[int]] = defaultdict(list)
            for f, o in enumerate(face_owner):
                by_owner[o].append(f)
            for owner in range(n_owners):
                comps = _components(by_owner.get(owner, []), face_adj)
                if len(comps) <= 1:
                    continue
                comps.sort(key=lambda c: (-sum(faces[f].area for f in c), c[0]))
                for comp in comps[1:]:
                    shared: dict[int, float] = defaultdict(float)
                    for f in comp:
                        for g, length in face_adj[f].items():
                            if face_owner[g] != owner:
                                shared[face_owner[g]] += length
                    if not shared:
                        continue
                    target = max(
                        shared,
                        key=lambda o: (owner_zone[o] == owner_zone[owner], shared[o], -o),
                    )
                    for f in comp:
                        face_owner[f] = target
                    changed = True
            if not changed:
                break

        by_owner = defaultdict(list)
        for f, o in enumerate(face_owner):
            by_owner[o].append(f)
        for owner in range(n_owners):
            fs = by_owner.get(owner, [])
            if not fs:
                raise RuntimeError("a demo grid cell vanished while noding")
            geom = _union([faces[f] for f in fs])
            if not isinstance(geom, Polygon):
                raise RuntimeError("a demo grid cell is not one polygon")
            c = geom.centroid
            x, y = _deg_to_km(c.x, c.y)
            self.cells.append(
                _Cell(
                    zone=owner_zone[owner],
                    geom=geom,
                    x=_r6(x),
                    y=_r6(y),
                    area_km2=geom.area * KM_PER_DEG_LON * KM_PER_DEG_LAT,
                )
            )
        self.adj = _adjacency([c.geom for c in self.cells])

    # -- 5: streets --------------------------------------------------------------------------

    def assign_streets(self) -> list[str]:
        phase = self.rng.uniform(0.0, 2.0 * math.pi)

        def wedge_angle(cell: _Cell) -> float:
            r = math.hypot(cell.x, cell.y)
            theta = math.degrees(math.atan2(cell.y, cell.x)) % 360.0
            return round((theta + 12.0 * math.sin(1.7 * r + phase)) % 360.0, 6)

        street: list[str] = [""] * len(self.cells)
        core = [i for i, c in enumerate(self.cells) if c.zone == ZONE_CORE]
        dx, dy = DONGHU_CENTRE_KM
        by_dist = sorted(
            core,
            key=lambda i: (round((self.cells[i].x - dx) ** 2 + (self.cells[i].y - dy) ** 2, 6), i),
        )
        centre = set(by_dist[:DONGHU_CELLS])
        for i, cell in enumerate(self.cells):
            a = wedge_angle(cell)
            if cell.zone == ZONE_TOWN:
                street[i] = "tongjia"
            elif cell.zone == ZONE_RURAL:
                if 20.0 <= a < 100.0:
                    street[i] = "siqing"
                elif a >= 325.0 or a < 20.0:
                    street[i] = "jiaotong"
                else:
                    street[i] = "tongjia"
            elif i in centre:
                street[i] = "donghu"
            elif 20.0 <= a < 100.0:
                street[i] = "siqing"
            elif 100.0 <= a < 200.0:
                street[i] = "meiyuan"
            elif 200.0 <= a < 290.0:
                street[i] = "jiangbian"
            else:
                street[i] = "jiaotong"

        # Each street's cells of one zone must be contiguous, and so must the street itself.
        for _ in range(30):
            changed = False
            groups: dict[tuple[str, str], list[int]] = defaultdict(list)
            for i, cell in enumerate(self.cells):
                groups[(street[i], cell.zone)].append(i)
            for key in sorted(groups):
                comps = _components(groups[key], self.adj)
                if len(comps) <= 1:
                    continue
                comps.sort(key=lambda c: (-len(c), c[0]))
                for comp in comps[1:]:
                    if self._move_component(comp, street, key[0], same_zone=True):
                        changed = True
            if changed:
                continue
            keys = sorted(set(street))
            for key_s in keys:
                comps = _components([i for i, s in enumerate(street) if s == key_s], self.adj)
                if len(comps) > 1:
                    comps.sort(key=lambda c: (-len(c), c[0]))
                    for comp in comps[1:]:
                        if self._move_component(comp, street, key_s, same_zone=False):
                            changed = True
            if not changed:
                break
        return street

    def _move_component(
        self, comp: list[int], label: list[str], current: str, *, same_zone: bool
    ) -> bool:
        zone = self.cells[comp[0]].zone
        shared: dict[str, float] = defaultdict(float)
        for i in comp:
            for j, length in self.adj[i].items():
                if label[j] == current:
                    continue
                if same_zone and self.cells[j].zone != zone:
                    continue
                shared[label[j]] += length
        if not shared:
            return False
        target = max(sorted(shared), key=lambda s: shared[s])
        for i in comp:
            label[i] = target
        return True

    # -- 5: communities ------------------------------------------------------------------------

    def partition(self, members: list[int], target: int) -> list[list[int]]:
        """Cut members into contiguous groups of about target cells."""
        parts: list[list[int]] = []
        for comp in _components(members, self.adj):
            k = max(1, round(len(comp) / target))
            parts.extend(self._bisect(comp, k))
        return parts

    def _cut_length(self, a: list[int], b: set[int]) -> float:
        return sum(length for i in a for j, length in self.adj[i].items() if j in b)

    def _bisect(self, members: list[int], k: int) -> list[list[int]]:
        if k <= 1 or len(members) <= 1:
            return [sorted(members)]
        k1 = k // 2
        n = len(members)
        n1 = min(n - 1, max(1, round(n * k1 / k)))
        best: tuple[float, int, list[int], list[int]] | None = None
        for d, (ux, uy) in enumerate(_DIRECTIONS):

            def proj(i: int, ux: int = ux, uy: int = uy) -> tuple[float, int]:
                return (round(self.cells[i].x * ux + self.cells[i].y * uy, 6), i)

            order = sorted(members, key=proj)
            for a, b in ((order[:n1], order[n1:]), (order[n - n1 :], order[: n - n1])):
                if len(_components(a, self.adj)) != 1 or len(_components(b, self.adj)) != 1:
                    continue
                cut = round(self._cut_length(a, set(b)), 9)
                if best is None or (cut, d) < (best[0], best[1]):
                    best = (cut, d, a, b)
        if best is None:
            best = self._grow_split(members, n1)
        _, _, a, b = best
        return self._bisect(sorted(a), k1) + self._bisect(sorted(b), k - k1)

    def _grow_split(self, members: list[int], n1: int) -> tuple[float, int, list[int], list[int]]:
        """Fallback: grow a contiguous part from an extreme cell, keep the rest contiguous."""
        member_set = set(members)
        fallback: tuple[float, int, list[int], list[int]] | None = None
        for d, (ux, uy) in enumerate(_DIRECTIONS):

            def proj(i: int, ux: int = ux, uy: int = uy) -> tuple[float, int]:
                return (round(self.cells[i].x * ux + self.cells[i].y * uy, 6), i)

            grown = [min(members, key=proj)]
            grown_set = set(grown)
            while len(grown) < n1:
                frontier = sorted(
                    {j for i in grown for j in self.adj[i] if j in member_set} - grown_set,
                    key=proj,
                )
                if not frontier:
                    break
                grown.append(frontier[0])
                grown_set.add(frontier[0])
            rest = [i for i in members if i not in grown_set]
            cand = (round(self._cut_length(grown, set(rest)), 9), d, grown, rest)
            if len(_components(rest, self.adj)) == 1 and len(grown) == n1:
                return cand
            if fallback is None:
                fallback = cand
        assert fallback is not None
        return fallback


def generate_district(seed: int = DEFAULT_SEED) -> DemoDistrict:
    """Build the demo 月湖区: areas, 273 grids and their buildings. Deterministic in seed."""
    b = _Builder(seed)
    b.build_cells()
    cells = b.cells
    street_of = b.assign_streets()
    rng = b.rng

    street_info = {key: (code, name) for key, code, name in names.STREETS}

    def sort_key(group: list[int]) -> tuple[float, float, int]:
        g = _union([cells[i].geom for i in group]).centroid
        return (-round(g.y, 5), round(g.x, 5), group[0])

    # communities: (street key, is_village, cells) in code order
    communities: list[tuple[str, bool, list[int]]] = []
    for key, _, _ in names.STREETS:
        mine = [i for i, s in enumerate(street_of) if s == key]
        urban = [i for i in mine if cells[i].zone != ZONE_RURAL]
        rural = [i for i in mine if cells[i].zone == ZONE_RURAL]
        urban_parts = sorted(b.partition(urban, COMMUNITY_TARGET_CELLS), key=sort_key)
        rural_parts = sorted(b.partition(rural, VILLAGE_TARGET_CELLS), key=sort_key)
        communities.extend((key, False, p) for p in urban_parts)
        communities.extend((key, True, p) for p in rural_parts)

    # special grids: an interior core cell of the host street
    special_of: dict[int, tuple[str, str]] = {}
    for institution, host, kind in names.SPECIAL_INSTITUTIONS:
        options = [
            i
            for i, c in enumerate(cells)
            if street_of[i] == host
            and c.zone == ZONE_CORE
            and i not in special_of
            and all(cells[j].zone == ZONE_CORE and street_of[j] == host for j in b.adj[i])
        ]
        if not options:
            options = [
                i
                for i, c in enumerate(cells)
                if street_of[i] == host and c.zone == ZONE_CORE and i not in special_of
            ]
        special_of[rng.choice(options)] = (institution, kind)

    areas: list[DemoArea] = []
    grids: list[DemoGrid] = []
    buildings: list[DemoBuilding] = []
    used_estates: set[str] = set()
    estate_pool = [f + s for f in names.ESTATE_FIRST for s in names.ESTATE_SECOND]
    rng.shuffle(estate_pool)
    for override in names.ESTATE_OVERRIDES.values():
        used_estates.update(override)

    community_geoms: dict[str, list[BaseGeometry]] = defaultdict(list)
    counters: dict[tuple[str, bool], int] = defaultdict(int)
    for key, is_village, members in communities:
        street_code, _ = street_info[key]
        counters[(key, is_village)] += 1
        seq = counters[(key, is_village)]
        pool = names.VILLAGE_NAMES[key] if is_village else names.COMMUNITY_NAMES[key]
        if seq > len(pool):
            raise RuntimeError(f"out of names for {key}")
        cname = pool[seq - 1]
        ccode = street_code[:9] + f"{(200 if is_village else 0) + seq:03d}"
        geom = _union([cells[i].geom for i in members])
        community_geoms[key].append(geom)
        areas.append(DemoArea(ccode, cname, "community", street_code, _as_multipolygon(geom)))

        ordered = sorted(
            members,
            key=lambda i: (i in special_of, -round(cells[i].y, 4), round(cells[i].x, 4), i),
        )
        village_names = list(names.NATURAL_VILLAGES)
        rng.shuffle(village_names)
        overrides = list(names.ESTATE_OVERRIDES.get(cname, ()))
        city_no = 0
        for n, i in enumerate(ordered, start=1):
            gcode = f"{ccode}{n:03d}"
            ggeom = _as_multipolygon(cells[i].geom)
            if i in special_of:
                institution, kind = special_of[i]
                households = rng.randint(40, 120)
                population = round(households * rng.uniform(2.6, 3.0))
                grids.append(
                    DemoGrid(
                        gcode,
                        f"{institution}专属网格",
                        "special",
                        ccode,
                        households,
                        population,
                        institution,
                        ggeom,
                    )
                )
                buildings.extend(
                    _special_buildings(rng, gcode, ggeom, institution, kind, households)
                )
            elif is_village:
                households = rng.randint(80, 200)
                population = round(households * rng.uniform(2.9, 3.6))
                grids.append(
                    DemoGrid(
                        gcode,
                        f"{cname}{village_names[n - 1]}组网格",
                        "rural",
                        ccode,
                        households,
                        population,
                        None,
                        ggeom,
                    )
                )
            else:
                city_no += 1
                households = rng.randint(250, 350)
                population = round(households * rng.uniform(2.6, 3.3))
                grids.append(
                    DemoGrid(
                        gcode,
                        f"{cname}第{city_no}网格",
                        "city",
                        ccode,
                        households,
                        population,
                        None,
                        ggeom,
                    )
                )
                estates: list[str] = []
                n_estates = 2 if rng.random() < 0.3 else 1
                while len(estates) < n_estates:
                    if overrides:
                        estates.append(overrides.pop(0))
                        continue
                    cand = estate_pool.pop()
                    if cand not in used_estates:
                        used_estates.add(cand)
                        estates.append(cand)
                buildings.extend(_city_buildings(rng, gcode, ggeom, estates, households))

    street_geoms: list[BaseGeometry] = []
    for key, code, name in names.STREETS:
        geom = _union(community_geoms[key])
        street_geoms.append(geom)
        areas.append(DemoArea(code, name, "street", names.DISTRICT_CODE, _as_multipolygon(geom)))
    district = _union(street_geoms)
    areas.append(
        DemoArea(
            names.DISTRICT_CODE,
            names.DISTRICT_NAME,
            "district",
            names.CITY_CODE,
            _as_multipolygon(district),
        )
    )
    areas.append(
        DemoArea(names.CITY_CODE, names.CITY_NAME, "city", None, _city_geometry(rng, district))
    )

    areas.sort(key=lambda a: a.code)
    grids.sort(key=lambda g: g.code)
    return DemoDistrict(areas=areas, grids=grids, buildings=buildings)
