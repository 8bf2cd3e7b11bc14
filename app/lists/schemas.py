from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from app.community import labels
from app.community.schemas import Phone, PointIn, StepOut, TaskIn, TaskOut
from app.schemas import Id, LabelledModel, Labels, LocalTime, RequestModel, ResponseModel

NeedCategory = Literal[
    "elderly",
    "children",
    "disability",
    "environment",
    "facilities",
    "safety",
    "parking",
    "culture",
    "health",
    "employment",
    "legal",
    "other",
]
Urgency = Literal["low", "normal", "high"]
NeedSource = Literal["grid_visit", "case", "meeting", "proposal", "hotline", "other"]
NeedStatus = Literal["open", "matched", "done", "closed"]
ResourceKind = Literal["money", "venue", "volunteers", "skills", "equipment"]
ProjectStatus = Literal["planned", "in_progress", "done", "cancelled"]
Rating = Literal["excellent", "qualified", "unqualified"]


class NeedIn(RequestModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    category: NeedCategory
    households: int = Field(ge=0, le=100_000, description="Households affected")
    urgency: Urgency = "normal"
    source: NeedSource = "grid_visit"
    grid_id: Id | None = Field(None, description="The grid it was collected in")
    location: PointIn | None = Field(None, description="Where (default: the grid or community)")


class NeedFromCases(RequestModel):
    case_category: str = Field(min_length=1, max_length=32, description="A catalogue code")
    days: int = Field(90, ge=7, le=730, description="Cases reported in the last N days")
    category: NeedCategory
    title: str | None = Field(None, max_length=200)
    households: int | None = Field(None, ge=0, le=100_000)
    urgency: Urgency = "normal"


class NeedOut(LabelledModel):
    id: int
    community_id: int
    grid_id: int | None
    title: str
    description: str
    category: Annotated[NeedCategory, Labels(labels.NEED_CATEGORY)]
    category_label: str = ""
    households: int
    urgency: Urgency
    source: NeedSource
    case_category: str | None
    case_count: int | None
    status: Annotated[NeedStatus, Labels(labels.NEED_STATUS)]
    status_label: str = ""
    lon: float | None = None
    lat: float | None = None
    created_at: LocalTime


class NeedDetail(NeedOut):
    timeline: list[StepOut]


class CloseIn(RequestModel):
    reason: str = Field(min_length=1, max_length=2000)


class CaseCandidate(ResponseModel):
    case_category: str
    name: str
    cases: int
    open_cases: int
    already_a_need: bool


class ResourceIn(RequestModel):
    unit_id: Id
    kind: ResourceKind
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    amount: Decimal | None = Field(None, ge=0, le=10**11, description="Money in yuan")
    capacity: int | None = Field(None, ge=0, le=10**7)
    measure: str | None = Field(None, max_length=20, description="人, 平方米, 小时, 台…")
    categories: list[NeedCategory] = Field(default_factory=list, max_length=12)
    contact: str | None = Field(None, max_length=100)
    phone: Phone | None = None
    valid_from: date
    valid_until: date | None = None
    location: PointIn | None = None

    @model_validator(mode="after")
    def _validity(self) -> ResourceIn:
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until must not be before valid_from")
        if self.kind == "money" and self.amount is None:
            raise ValueError("a money resource needs an amount")
        return self


class ResourceOut(LabelledModel):
    id: int
    community_id: int
    unit_id: int
    unit_name: str | None = None
    kind: Annotated[ResourceKind, Labels(labels.RESOURCE_KIND)]
    kind_label: str = ""
    title: str
    description: str
    amount: Decimal | None
    capacity: int | None
    measure: str | None
    categories: list[str]
    contact: str | None
    phone: str | None
    valid_from: date
    valid_until: date | None
    valid_now: bool = True
    created_at: LocalTime


class MatchOut(ResponseModel):
    resource: ResourceOut
    score: float = Field(description="0-100: category 50, kind 20, distance 30")
    category_match: bool
    kind_fit: bool
    distance_m: float | None
    in_projects: int = Field(description="Open projects already using the resource")


class ProjectIn(RequestModel):
    need_id: Id
    title: str = Field(min_length=1, max_length=200)
    lead_unit_id: Id
    unit_ids: list[Id] = Field(default_factory=list, max_length=50, description="Taking part")
    resource_ids: list[Id] = Field(min_length=1, max_length=50)
    due_on: date | None = None
    tasks: list[TaskIn] = Field(default_factory=list, max_length=50)


class ProjectAction(RequestModel):
    progress: int | None = Field(None, ge=0, le=100)
    evaluation: Rating | None = Field(None, description="Completion evaluation (complete only)")
    note: str = Field("", max_length=2000)


class ProjectOut(LabelledModel):
    id: int
    community_id: int
    need_id: int
    title: str
    lead_unit_id: int
    status: Annotated[ProjectStatus, Labels(labels.PROJECT_STATUS)]
    status_label: str = ""
    progress: int
    due_on: date | None
    evaluation: Rating | None
    evaluation_note: str | None
    completed_at: LocalTime | None
    created_at: LocalTime


class ProjectDetail(ProjectOut):
    need: NeedOut
    unit_ids: list[int]
    resources: list[ResourceOut]
    tasks: list[TaskOut]
    timeline: list[StepOut]


class ReviewIn(RequestModel):
    period: str | None = Field(
        None, pattern=r"^20[0-9]{2}Q[1-4]$", description="Default: the current quarter"
    )
    note: str = Field("", max_length=4000)


class ReviewOut(ResponseModel):
    id: int
    community_id: int
    period: str
    note: str
    counts: dict[str, Any]
    reviewed_by: int | None
    reviewed_at: LocalTime


class ReviewDetail(ReviewOut):
    snapshot: dict[str, Any]
