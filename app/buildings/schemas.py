from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, WithJsonSchema

from app.geometry import CRS, GeometryOut
from app.schemas import Id, LocalTime, RequestModel, ResponseModel

BuildingGeometryIn = Annotated[
    dict[str, Any],
    WithJsonSchema(
        {
            "title": "GeoJSON Point, Polygon or MultiPolygon",
            "type": "object",
            "required": ["type", "coordinates"],
            "properties": {
                "type": {"type": "string", "enum": ["Point", "Polygon", "MultiPolygon"]},
                "coordinates": {"type": "array"},
            },
        }
    ),
]


class BuildingCreate(RequestModel):
    grid_id: Id | None = Field(None, description="Omit to place the building by its location")
    name: str = Field(min_length=1, max_length=100)
    address: str | None = Field(None, max_length=200)
    households: int = Field(0, ge=0, le=100_000)
    units: int = Field(0, ge=0, le=1_000)
    geometry: BuildingGeometryIn
    crs: CRS = CRS.WGS84


class BuildingUpdate(RequestModel):
    grid_id: Id | None = None
    name: str | None = Field(None, min_length=1, max_length=100)
    address: str | None = Field(None, max_length=200)
    households: int | None = Field(None, ge=0, le=100_000)
    units: int | None = Field(None, ge=0, le=1_000)
    geometry: BuildingGeometryIn | None = None
    crs: CRS = CRS.WGS84


class BuildingOut(ResponseModel):
    id: int
    grid_id: int
    grid_code: str
    grid_name: str
    name: str
    address: str | None
    households: int = Field(
        description="From the base data when the building has houses, else typed"
    )
    households_source: Literal["base_data", "typed"] = "typed"
    households_typed: int = 0
    units: int
    geometry: GeometryOut
    created_at: LocalTime
    updated_at: LocalTime


class BuildingPage(ResponseModel):
    items: list[BuildingOut]
    total: int
    limit: int
    offset: int
