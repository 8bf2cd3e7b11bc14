from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field

from app.cases.schemas import MOBILE
from app.community import labels
from app.schemas import (
    SHANGHAI,
    Id,
    LabelledModel,
    Labels,
    LocalInstant,
    LocalTime,
    RequestModel,
    ResponseModel,
)

PERIOD_PATTERN = r"^20[0-9]{2}Q[1-4]$"
"""A quarter: 2026Q4."""
TimeIn = LocalInstant
"""A time in a body; without an offset it is read as Asia/Shanghai."""
Phone = Annotated[
    str,
    Field(
        max_length=40,
        pattern=MOBILE,
        description="A mobile (13812345678) or landline (0701-62000001) number",
    ),
]
"""A phone number in a body: a mainland mobile or a landline with its area code."""


def _not_future(v: date) -> date:
    if v > datetime.now(SHANGHAI).date():
        raise ValueError("must not be in the future (Asia/Shanghai)")
    return v


PastDay = Annotated[date, AfterValidator(_not_future)]
"""A day in a body that has already come (today or before, Asia/Shanghai)."""

UnitKind = Literal[
    "party_org",
    "government",
    "public_institution",
    "enterprise",
    "property",
    "owners_committee",
    "social_org",
    "other",
]


class PointIn(RequestModel):
    lon: float = Field(ge=-180, le=180)
    lat: float = Field(ge=-90, le=90)


class UnitCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    kind: UnitKind
    department_id: Id | None = Field(None, description="When the unit is a district department")
    is_member: bool = Field(False, description="A member unit of the big party committee")
    representative: str | None = Field(None, max_length=100)
    duties: str | None = Field(None, max_length=2000)
    contact: str | None = Field(None, max_length=100)
    phone: Phone | None = None
    location: PointIn | None = None
    dual_registered_on: PastDay | None = Field(
        None, description="The day its party organisation reported to the community (双报到)"
    )


class UnitUpdate(RequestModel):
    is_member: bool | None = None
    representative: str | None = Field(None, max_length=100)
    duties: str | None = Field(None, max_length=2000)
    contact: str | None = Field(None, max_length=100)
    phone: Phone | None = None
    dual_registered_on: PastDay | None = None
    active: bool | None = None


class UnitOut(ResponseModel):
    id: int
    community_id: int
    name: str
    kind: str
    department_id: int | None
    is_member: bool
    representative: str | None
    duties: str | None
    contact: str | None
    phone: str | None
    dual_registered_on: date | None
    active: bool
    created_at: LocalTime


class StepOut(ResponseModel):
    """One step of an object's timeline."""

    id: int
    action: str
    actor_id: int | None
    actor: str | None
    note: str
    detail: dict[str, Any]
    at: LocalTime


class UnitDetail(UnitOut):
    timeline: list[StepOut]


class TaskOut(LabelledModel):
    id: int
    community_id: int
    source: Literal["meeting", "project", "matter"]
    meeting_id: int | None
    project_id: int | None
    matter_id: int | None
    title: str
    unit_id: int
    unit_name: str | None = None
    due_days: int
    starts_at: LocalTime
    due_at: LocalTime
    provisional: bool
    state: Annotated[Literal["open", "done", "cancelled"], Labels(labels.TASK_STATE)]
    state_label: str = ""
    progress: int
    progress_note: str
    escalation_level: int
    overdue: bool = False
    done_at: LocalTime | None
    created_at: LocalTime


class TaskDetail(TaskOut):
    timeline: list[StepOut]


class TaskAction(RequestModel):
    progress: int | None = Field(None, ge=0, le=100, description="Per cent done (progress only)")
    note: str = Field("", max_length=2000)


class TaskIn(RequestModel):
    title: str = Field(min_length=1, max_length=300)
    unit_id: Id = Field(description="The responsible unit")
    due_days: int = Field(ge=0, le=365, description="Deadline in working days from now")


class CommunityFigures(ResponseModel):
    """The community mechanisms in numbers, for consoles and the evaluation figures."""

    period: str
    since: str
    until: str
    communities: int
    needs: dict[str, int]
    needs_unmatched: int
    resources_valid: int
    projects: dict[str, int]
    meetings: int
    communities_with_committee: int
    communities_met: int
    tasks: dict[str, int | float | None]
    matters: dict[str, int]
    matter_satisfaction: float | None
    party_members: int
    services: int
    service_hours: float
    unit_ratings: dict[str, int]
