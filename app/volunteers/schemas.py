from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field, field_serializer

from app.community.schemas import PastDay, Phone, TimeIn
from app.pii import mask_phone
from app.schemas import Id, LocalTime, RequestModel, ResponseModel

Skill = Annotated[str, Field(min_length=1, max_length=40)]
ServiceStatus = Literal["claimed", "recorded", "confirmed", "rejected", "withdrawn"]
ServiceAction = Literal["record", "confirm", "reject", "withdraw"]


class MemberIn(RequestModel):
    name: str = Field(min_length=1, max_length=50)
    work_unit: str = Field(min_length=1, max_length=200)
    unit_id: Id | None = Field(None, description="The work unit, when it reported here too")
    grid_id: Id | None = Field(None, description="The grid where they live")
    skills: list[Skill] = Field(default_factory=list, max_length=20)
    availability: str = Field("", max_length=200)
    phone: Phone | None = None
    registered_on: PastDay | None = None


class MemberOut(ResponseModel):
    id: int
    community_id: int
    grid_id: int | None
    name: str
    unit_id: int | None
    work_unit: str
    skills: list[str]
    availability: str
    phone: str | None
    registered_on: date
    active: bool
    created_at: LocalTime

    @field_serializer("phone")
    def _mask(self, v: str | None) -> str | None:
        return mask_phone(v)


class VolunteerTaskIn(RequestModel):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    place: str = Field("", max_length=200)
    skills: list[Skill] = Field(default_factory=list, max_length=20)
    starts_at: TimeIn
    hours: Decimal = Field(gt=0, le=24)
    slots: int = Field(ge=1, le=1000)
    grid_id: Id | None = None


class VolunteerTaskOut(ResponseModel):
    id: int
    community_id: int
    grid_id: int | None
    title: str
    description: str
    place: str
    skills: list[str]
    starts_at: LocalTime
    hours: Decimal
    slots: int
    claimed: int = 0
    status: Literal["open", "closed"]
    created_at: LocalTime


class ClaimIn(RequestModel):
    member_id: Id


class ServiceIn(RequestModel):
    member_id: Id
    what: str = Field(min_length=1, max_length=300)
    place: str = Field("", max_length=200)
    served_on: PastDay
    hours: Decimal = Field(gt=0, le=24)


class ServiceActionIn(RequestModel):
    hours: Decimal | None = Field(None, gt=0, le=24, description="record: hours served")
    served_on: PastDay | None = Field(None, description="record: the day served")
    note: str = Field("", max_length=2000)


class ServiceOut(ResponseModel):
    id: int
    community_id: int
    member_id: int
    task_id: int | None
    what: str
    place: str
    served_on: date | None
    hours: Decimal | None
    status: ServiceStatus
    confirmed_by: int | None
    confirmed_at: LocalTime | None
    note: str
    created_at: LocalTime


class MemberService(ResponseModel):
    member_id: int
    name: str
    services: int
    hours: float


class UnitServiceReport(ResponseModel):
    unit_id: int | None
    unit: str
    members: int
    members_served: int
    services: int
    hours: float
    by_member: list[MemberService]


class ServiceReport(ResponseModel):
    since: date
    until: date
    units: list[UnitServiceReport]
    totals: dict[str, float]


class MeasureIn(RequestModel):
    title: str = Field(min_length=1, max_length=200)
    content: str = Field(min_length=1, max_length=4000)
    category_codes: list[str] = Field(default_factory=list, max_length=50)
    contact: str | None = Field(None, max_length=100)
    phone: Phone | None = None
    department_id: Id | None = Field(None, description="Administrators name the department")


class MeasureUpdate(RequestModel):
    title: str | None = Field(None, min_length=1, max_length=200)
    content: str | None = Field(None, min_length=1, max_length=4000)
    category_codes: list[str] | None = Field(None, max_length=50)
    contact: str | None = Field(None, max_length=100)
    phone: Phone | None = None
    active: bool | None = None


class MeasureOut(ResponseModel):
    id: int
    district_id: int
    department_id: int
    department: str | None = None
    code: str
    title: str
    content: str
    category_codes: list[str]
    contact: str | None
    phone: str | None
    active: bool
    updated_at: LocalTime
