"""The catalogue's request and response bodies: categories with their limits, routing rules."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import Field, StringConstraints

from app.schemas import Id, RequestModel, ResponseModel


class LimitIn(RequestModel):
    sign_in_hours: float = Field(gt=0, le=240, description="Working hours to sign in")
    handle: int | float = Field(gt=0, le=365)
    handle_unit: Literal["hours", "days"]


class LimitsIn(RequestModel):
    normal: LimitIn
    urgent: LimitIn
    critical: LimitIn


CODE_PATTERN = r"^[A-Z]{2}-[0-9]{2,3}$"
"""A category's code, e.g. `SR-01` (事项编码)."""
CategoryCodesQuery = Annotated[
    list[Annotated[str, StringConstraints(pattern=CODE_PATTERN)]] | None,
    Query(description="Category codes (repeat), e.g. SR-01"),
]
"""A filter by category codes: an unknown shape is a 422, never an empty answer."""


class CategoryIn(RequestModel):
    code: str = Field(pattern=CODE_PATTERN)
    class_code: str = Field(min_length=1, max_length=8)
    name: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=500)
    lead_department: str | None = Field(None, description="Department code")
    co_departments: list[str] = Field(default_factory=list, max_length=10)
    limits: LimitsIn
    duplicate_radius_m: int = Field(100, ge=10, le=1000)
    keywords: list[str] = Field(default_factory=list, max_length=30)


class CategoryPatch(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    name_en: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=500)
    lead_department: str | None = None
    co_departments: list[str] | None = Field(None, max_length=10)
    limits: LimitsIn | None = None
    duplicate_radius_m: int | None = Field(None, ge=10, le=1000)
    keywords: list[str] | None = Field(None, max_length=30)
    active: bool | None = None


class CategoryOut(ResponseModel):
    code: str
    name: str
    class_code: str
    class_name: str
    kind: str
    lead_department: str | None
    co_departments: list[str]
    limits: dict[str, Any]
    duplicate_radius_m: int
    keywords: list[str]
    description: str
    active: bool


class RuleIn(RequestModel):
    category_code: str
    street_id: Id | None = Field(None, description="Only in this street (a local agency)")
    department_id: Id


class RuleOut(RuleIn, ResponseModel):  # type: ignore[misc]
    id: int
