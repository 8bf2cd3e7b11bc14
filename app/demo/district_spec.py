"""The shape of the demo district (counts, where it lies, how big its zones are) and the types
``generate_district()`` returns. Pure data: no geometry is computed here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from shapely.geometry import MultiPolygon, Point, mapping
from shapely.geometry.base import BaseGeometry

AreaLevel = Literal["city", "district", "street", "community"]
GridKind = Literal["city", "rural", "special"]

DEFAULT_SEED = 360602
GRID_SIZE = 1e-7  # degrees, ~1 cm

# Yingtan city (鹰潭市) bounding box, lon/lat: 116°41'-117°30' E, 27°35'-28°41' N.
YINGTAN_BBOX: tuple[float, float, float, float] = (116.68, 27.58, 117.51, 28.69)

N_CITY_GRIDS = 213
N_RURAL_GRIDS = 57
N_SPECIAL_GRIDS = 3
N_TOWN_SEAT_GRIDS = 9  # city grids of the town seat community of 童家镇
N_CORE_CELLS = N_CITY_GRIDS + N_SPECIAL_GRIDS - N_TOWN_SEAT_GRIDS

# Local frame: origin at the urban core, x east, y north, kilometres.
ORIGIN_LON = 117.035
ORIGIN_LAT = 28.245
KM_PER_DEG_LON = 98.065355  # 111.320 * cos(28.245°)
KM_PER_DEG_LAT = 110.574

DISTRICT_CENTRE_KM = (-1.0, 1.4)
DISTRICT_RADIUS_KM = 7.0
CORE_RADIUS_KM = 2.3
TOWN_CENTRE_KM = (-4.6, 3.1)
TOWN_RADIUS_KM = 0.8
DONGHU_CENTRE_KM = (0.25, 0.1)
DONGHU_CELLS = 40

COMMUNITY_TARGET_CELLS = 8  # city grids per community
VILLAGE_TARGET_CELLS = 7  # rural grids per village

ZONE_CORE = "core"
ZONE_TOWN = "town"
ZONE_RURAL = "rural"

# Directions tried when bisecting a set of cells; integer vectors, no libm involved.
_DIRECTIONS: tuple[tuple[int, int], ...] = (
    (1, 0),
    (2, 1),
    (1, 1),
    (1, 2),
    (0, 1),
    (-1, 2),
    (-1, 1),
    (-2, 1),
)


@dataclass(frozen=True)
class DemoArea:
    code: str
    name: str
    level: AreaLevel
    parent_code: str | None
    geometry: MultiPolygon


@dataclass(frozen=True)
class DemoGrid:
    code: str
    name: str
    kind: GridKind
    community_code: str
    households: int
    population: int
    notes: str | None
    geometry: MultiPolygon


@dataclass(frozen=True)
class DemoBuilding:
    grid_code: str
    name: str
    households: int
    units: int
    geometry: Point


@dataclass(frozen=True)
class DemoDistrict:
    areas: list[DemoArea]
    grids: list[DemoGrid]
    buildings: list[DemoBuilding]

    def area(self, code: str) -> DemoArea:
        for a in self.areas:
            if a.code == code:
                return a
        raise KeyError(code)

    def grid(self, code: str) -> DemoGrid:
        for g in self.grids:
            if g.code == code:
                return g
        raise KeyError(code)

    def to_feature_collections(self) -> dict[str, dict[str, Any]]:
        """GeoJSON FeatureCollections ``{"areas", "grids", "buildings"}`` (EPSG:4326)."""

        def fc(features: list[dict[str, Any]]) -> dict[str, Any]:
            return {"type": "FeatureCollection", "features": features}

        def feature(geom: BaseGeometry, props: dict[str, Any]) -> dict[str, Any]:
            return {"type": "Feature", "geometry": mapping(geom), "properties": props}

        return {
            "areas": fc(
                [
                    feature(
                        a.geometry,
                        {
                            "code": a.code,
                            "name": a.name,
                            "level": a.level,
                            "parent_code": a.parent_code,
                        },
                    )
                    for a in self.areas
                ]
            ),
            "grids": fc(
                [
                    feature(
                        g.geometry,
                        {
                            "code": g.code,
                            "name": g.name,
                            "kind": g.kind,
                            "community_code": g.community_code,
                            "households": g.households,
                            "population": g.population,
                            "notes": g.notes,
                        },
                    )
                    for g in self.grids
                ]
            ),
            "buildings": fc(
                [
                    feature(
                        b.geometry,
                        {
                            "grid_code": b.grid_code,
                            "name": b.name,
                            "households": b.households,
                            "units": b.units,
                        },
                    )
                    for b in self.buildings
                ]
            ),
        }
