from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from app.geometry import CRS, GeometryOut, PolygonalIn
from app.schemas import LocalTime, RequestModel, ResponseModel

AreaLevel = Literal["city", "district", "street", "community"]
CODE12 = r"^[0-9]{12}$"


class AreaCreate(RequestModel):
    level: AreaLevel
    code: str = Field(pattern=CODE12, description="12-digit administrative division code")
    name: str = Field(min_length=1, max_length=100)
    parent_id: int | None = Field(
        None, description="Required except for a city (or a top district)"
    )
    boundary: PolygonalIn | None = None
    crs: CRS = Field(CRS.WGS84, description="CRS of `boundary`")
    address: str | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=40)
    service_hours: str | None = Field(
        None, max_length=500, description="e.g. 周一至周五 8:30-17:30"
    )


class AreaUpdate(RequestModel):
    code: str | None = Field(None, pattern=CODE12)
    name: str | None = Field(None, min_length=1, max_length=100)
    parent_id: int | None = None
    boundary: PolygonalIn | None = None
    crs: CRS = CRS.WGS84
    address: str | None = Field(None, max_length=500)
    phone: str | None = Field(None, max_length=40)
    service_hours: str | None = Field(None, max_length=500)


class AreaOut(ResponseModel):
    id: int
    level: AreaLevel
    level_label: str
    code: str
    name: str
    parent_id: int | None
    address: str | None
    phone: str | None
    service_hours: str | None
    children: int = Field(description="Number of direct children (areas, or grids of a community)")
    boundary: GeometryOut | None = None
    created_at: LocalTime
    updated_at: LocalTime


class AreaPage(ResponseModel):
    items: list[AreaOut]
    total: int
    limit: int
    offset: int


class CoverageSummary(ResponseModel):
    ok: bool
    overlaps: int
    gaps: int
    outside: int


class SizingFinding(ResponseModel):
    grid_id: int
    code: str
    name: str
    kind: str
    reason: str
    message: str
    value: int | None
    expected_min: int | None
    expected_max: int | None


class SizingReport(ResponseModel):
    area_id: int
    checked: int
    findings: list[SizingFinding]
    band: dict[str, Any]
