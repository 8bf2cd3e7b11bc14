from __future__ import annotations

from pydantic import Field

from app.schemas import LocalTime, RequestModel, ResponseModel


class DepartmentCreate(RequestModel):
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{1,32}$")
    name: str = Field(min_length=1, max_length=100)
    name_en: str | None = Field(None, max_length=200)
    district_id: int | None = Field(None, description="The district it serves")
    parent_org: str | None = Field(None, max_length=200)
    contact: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)


class DepartmentUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    name_en: str | None = Field(None, max_length=200)
    parent_org: str | None = Field(None, max_length=200)
    contact: str | None = Field(None, max_length=100)
    phone: str | None = Field(None, max_length=40)


class DepartmentOut(ResponseModel):
    id: int
    code: str
    name: str
    name_en: str | None
    district_id: int | None
    parent_org: str | None
    contact: str | None
    phone: str | None
    created_at: LocalTime
    updated_at: LocalTime
