from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import Field

from app.schemas import RequestModel, ResponseModel

TaskKind = Literal["verification", "callback", "inspection", "meeting_resolution"]


class AdmissionItemIn(RequestModel):
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_.-]+$")
    name: str = Field(min_length=1, max_length=200)
    legal_basis: str = Field(min_length=1, max_length=2000, description="法律法规或文件依据")
    department_codes: list[str] = Field(
        default_factory=list, max_length=100, description="Departments that may push it; none: any"
    )
    task_kinds: list[TaskKind] = Field(
        default_factory=list, description="Kinds of worker task it covers; none: any"
    )


class AdmissionListIn(RequestModel):
    title: str = Field(min_length=1, max_length=200)
    effective_from: date
    note: str = Field("", max_length=2000)
    items: list[AdmissionItemIn] = Field(min_length=1, max_length=500)


class AdmissionItemOut(ResponseModel):
    id: int
    code: str
    name: str
    legal_basis: str
    department_ids: list[int]
    task_kinds: list[str]


class AdmissionListOut(ResponseModel):
    id: int
    district_id: int
    version: int
    title: str
    effective_from: date
    note: str
    created_at: datetime
    items: list[AdmissionItemOut]


class AdmissionVersionOut(ResponseModel):
    id: int
    version: int
    title: str
    effective_from: date
    items: int
    created_at: datetime


class AdmissionDepartmentFigures(ResponseModel):
    department_id: int
    department: str
    pushed: int = Field(description="Tasks the department gave workers")
    inside_list: int
    outside_list: int = Field(description="Of kinds outside the admission list (清单外)")
    approved: int = Field(description="Outside the list, approved by the street")
    refused: int = Field(description="Outside the list, refused by the street")
    pending: int = Field(description="Outside the list, waiting for the street")
    outside_share: float | None = Field(description="outside_list / pushed")


class AdmissionFiguresOut(ResponseModel):
    district_id: int
    since: datetime
    until: datetime
    departments: list[AdmissionDepartmentFigures]
