from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import Field, StringConstraints

from app.cases.models import STATUSES
from app.geometry import CRS
from app.schemas import LocalInstant, LocalTime, Ref, RequestModel, ResponseModel

Urgency = Literal["normal", "urgent", "critical"]
MOBILE = r"^1[3-9][0-9]{9}$|^0[0-9]{2,3}-?[0-9]{7,8}$"


class LocationIn(RequestModel):
    lon: float
    lat: float
    crs: CRS = Field(
        CRS.WGS84, description="wgs84 (GPS), gcj02 (Amap/Tencent), bd09 (Baidu), cgcs2000"
    )
    accuracy_m: float | None = Field(None, ge=0, le=100_000, description="GPS accuracy (m)")


class ResidentIn(RequestModel):
    name: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, pattern=MOBILE, description="Stored once, masked on read")


class CaseCreate(RequestModel):
    category: str = Field(
        min_length=1, max_length=16, description="Category code (GET /categories)"
    )
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    location: LocationIn
    address: str | None = Field(None, max_length=300)
    building_id: int | None = None
    occurred_at: LocalInstant | None = Field(
        None, description="When it happened (default: now; no offset means Asia/Shanghai)"
    )
    urgency: Urgency = "normal"
    resident: ResidentIn | None = None


class CategoryRef(ResponseModel):
    code: str
    name: str
    class_code: str
    class_name: str


class PersonRef(ResponseModel):
    id: int
    name: str


class NearestGrid(ResponseModel):
    grid: Ref
    distance_m: float


class LocationOut(ResponseModel):
    lon: float
    lat: float
    crs: CRS
    accuracy_m: float | None


class ResidentOut(ResponseModel):
    name: str | None
    phone: str | None = Field(description="Masked (138****1234) unless your role needs it")


class CaseOut(ResponseModel):
    id: int
    number: str
    category: CategoryRef
    title: str
    description: str
    status: str
    status_label: str
    urgency: Urgency
    urgency_label: str
    channel: str
    location: LocationOut
    address: str | None
    building_id: int | None
    occurred_at: LocalTime | None
    reported_at: LocalTime
    reporter: PersonRef | None
    grid: Ref | None
    community: Ref | None
    street: Ref | None
    district: Ref | None
    unlocated: bool = Field(description="In no grid: the centre places it")
    nearest: NearestGrid | None
    off_patch_m: float | None = Field(description="Reported this far outside the reporter's grids")
    evidence_flags: list[str]
    duplicate_of: int | None
    lead_department: Ref | None
    first_unit: str | None = Field(description="首接负责: the unit that first took the case")
    on_spot: bool = Field(description="Handled on the spot by the grid worker")
    rework_count: int
    reopen_count: int
    satisfaction: str | None
    resident: ResidentOut | None
    version: int
    updated_at: LocalTime
    closed_at: LocalTime | None


class DuplicateSuggestion(ResponseModel):
    id: int
    number: str
    title: str
    status: str
    distance_m: float
    reported_at: LocalTime


class CaseCreated(CaseOut):
    duplicates: list[DuplicateSuggestion] = Field(
        description="Open cases of the same category nearby in the last days, nearest first"
    )


class AttachmentOut(ResponseModel):
    id: int
    event_id: int
    media_type: str
    bytes: int
    width: int
    height: int
    taken_at: LocalTime | None
    taken_lon: float | None
    taken_lat: float | None
    flags: list[str]
    url: str
    thumbnail_url: str
    created_at: LocalTime


class PostRef(ResponseModel):
    id: int
    role: str
    role_label: str
    title: str | None


class TimelineEntry(ResponseModel):
    id: int
    at: LocalTime
    action: str
    action_label: str
    actor: PersonRef | None
    post: PostRef | None = Field(description="The post the actor acted in")
    from_status: str | None
    to_status: str | None
    note: str
    detail: dict
    attachments: list[int]


class AssignmentOut(ResponseModel):
    id: int
    department: Ref
    role: Literal["lead", "co"]
    state: str
    dispatched_at: LocalTime
    sign_in_due: LocalTime
    signed_in_at: LocalTime | None
    handle_due: LocalTime | None
    feedback_at: LocalTime | None
    provisional: bool = Field(description="A deadline crosses a year whose holidays are not loaded")
    hours_left: float | None = Field(description="Working hours to the running deadline (<0: late)")
    overdue: bool
    rework_count: int
    extension: dict | None


class CaseDetail(CaseOut):
    timeline: list[TimelineEntry]
    attachments: list[AttachmentOut]
    assignments: list[AssignmentOut]
    allowed_actions: list[str] = Field(description="What you may do to the case now")


class CasePage(ResponseModel):
    items: list[CaseOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end"
    )
    limit: int


class DuplicateIn(RequestModel):
    of: int = Field(description="The case this one duplicates")
    note: str = Field("", max_length=1000)


class PlaceIn(RequestModel):
    grid_id: int
    note: str = Field("", max_length=1000)


class TimelineChain(ResponseModel):
    ok: bool
    checked: int = Field(description="Steps whose hash and link were recomputed")
    broken: list[dict[str, Any]] = Field(description="Steps whose hash or link does not match")


StatusesQuery = Annotated[
    list[Annotated[str, StringConstraints(pattern="^(" + "|".join(STATUSES) + ")$")]] | None,
    Query(alias="status", description="Statuses (repeat): " + ", ".join(STATUSES)),
]
"""A filter by case statuses: an unknown status is a 422, never an empty answer."""
