from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.geometry import CRS, GeometryOut, PolygonalIn
from app.schemas import LocalInstant, LocalTime, Ref, RequestModel, ResponseModel

GridKind = Literal["city", "rural", "special"]
GRID_CODE = r"^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$"


class GridCreate(RequestModel):
    code: str = Field(
        pattern=GRID_CODE, description="Unique grid code, e.g. community code + 3 digits"
    )
    name: str = Field(min_length=1, max_length=100)
    community_id: int
    kind: GridKind
    households: int | None = Field(None, ge=0, le=1_000_000)
    population: int | None = Field(None, ge=0, le=10_000_000)
    notes: str | None = Field(
        None, max_length=2000, description="e.g. the institution of a special grid"
    )
    boundary: PolygonalIn
    crs: CRS = Field(CRS.WGS84, description="CRS of `boundary`")


class GridUpdate(RequestModel):
    """Changing `boundary` closes the current version and starts a new one (history is kept)."""

    code: str | None = Field(None, pattern=GRID_CODE)
    name: str | None = Field(None, min_length=1, max_length=100)
    community_id: int | None = None
    kind: GridKind | None = None
    households: int | None = Field(None, ge=0, le=1_000_000)
    population: int | None = Field(None, ge=0, le=10_000_000)
    notes: str | None = Field(None, max_length=2000)
    boundary: PolygonalIn | None = None
    crs: CRS = CRS.WGS84


SizeSource = Literal["base_data", "typed"]


class GridOut(ResponseModel):
    id: int
    code: str
    name: str
    kind: GridKind
    kind_label: str
    households: int | None = Field(
        description="From the base data when the grid has any, else the typed number"
    )
    population: int | None = Field(
        description="From the base data (residents living here, 实有) when it has any, else typed"
    )
    households_source: SizeSource | None = None
    population_source: SizeSource | None = None
    households_typed: int | None = None
    population_typed: int | None = None
    notes: str | None
    community: Ref
    street: Ref | None
    district: Ref | None
    boundary: GeometryOut | None = None
    boundary_valid_from: LocalTime | None = None
    boundary_valid_to: LocalTime | None = None
    created_at: LocalTime
    updated_at: LocalTime


class GridPage(ResponseModel):
    items: list[GridOut]
    total: int
    limit: int
    offset: int


class Author(ResponseModel):
    id: int
    name: str


class BoundaryVersion(ResponseModel):
    id: int
    valid_from: LocalTime
    valid_to: LocalTime | None
    area_m2: float
    author: Author | None = Field(
        description="Who drew this version (null: drawn before authors were recorded)"
    )
    boundary: GeometryOut


class GridBrief(ResponseModel):
    id: int
    code: str
    name: str
    kind: GridKind
    kind_label: str
    households: int | None = Field(
        description="From the base data when the grid has any, else the typed number"
    )
    population: int | None = Field(
        description="From the base data (residents living here, 实有) when it has any, else typed"
    )
    households_source: SizeSource | None = None
    population_source: SizeSource | None = None


class CommunityCard(Ref):
    phone: str | None
    address: str | None
    service_hours: str | None


class CardStaff(ResponseModel):
    name: str
    role: str
    role_label: str
    worker_type: str | None
    title: str | None
    work_phone: str | None


class ServiceCard(ResponseModel):
    """网格连心服务卡: who serves the grid and how to reach them (public)."""

    grid: GridBrief
    community: CommunityCard
    staff: list[CardStaff] = Field(
        default_factory=list, description="Grid leader and workers with work phones (public)"
    )
    report_url: str = Field(
        description="The residents' report page (Open311 QR form): the card's QR code links here"
    )


AT_DESCRIPTION = "Point in time (ISO 8601; no offset means Asia/Shanghai). Default: now"
"""The grid routes' `at` parameter (declared, or in `LookupQuery`)."""


class LookupQuery(BaseModel):
    """The lookup's query string, read in one call (`app.http.read_query`: the hot path)."""

    model_config = ConfigDict(extra="ignore")

    lon: float
    lat: float
    crs: CRS = Field(CRS.WGS84, description="CRS of lon/lat")
    at: LocalInstant | None = Field(None, description=AT_DESCRIPTION)


class LookupOut(ResponseModel):
    lon: float
    lat: float
    crs: CRS
    at: LocalTime | None
    grid: GridBrief
    community: Ref
    street: Ref | None
    district: Ref | None
    boundary_valid_from: LocalTime
    boundary_valid_to: LocalTime | None
    card: ServiceCard


class ImportFinding(ResponseModel):
    index: int
    code: str | None
    changes: list[str]
    area_before_m2: float | None
    area_after_m2: float


class ImportResult(ResponseModel):
    created: int
    updated: int
    unchanged: int
    repaired: list[ImportFinding]
