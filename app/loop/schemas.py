"""Bodies of the loop's actions."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from app.schemas import RequestModel


class NoteIn(RequestModel):
    note: str = Field("", max_length=2000)


class ReasonIn(RequestModel):
    reason: str = Field(min_length=1, max_length=2000, description="Required: why")
    note: str = Field("", max_length=2000)


class WhistleIn(ReasonIn):
    department_ids: list[int] = Field(
        default_factory=list, max_length=10, description="Departments the community asks to report"
    )


class DispatchIn(RequestModel):
    lead_department_id: int | None = Field(
        None, description="Default: the routing rules, then the catalogue, then the catch-all owner"
    )
    co_department_ids: list[int] | None = Field(
        None, max_length=10, description="Joint handling; default: the catalogue's co-departments"
    )
    note: str = Field("", max_length=2000)


class ExtensionIn(RequestModel):
    amount: float = Field(gt=0, le=60, description="Working hours, or whole working days")
    unit: Literal["hours", "days"]
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _whole_days(self) -> Self:
        if self.unit == "days" and not float(self.amount).is_integer():
            raise ValueError("an extension in working days must be a whole number of days")
        return self


class DecisionIn(RequestModel):
    approve: bool
    note: str = Field("", max_length=2000)


class VerifyIn(RequestModel):
    passed: bool = Field(description="false sends the case back to the department (rework)")
    note: str = Field("", max_length=2000)


class EvaluateIn(RequestModel):
    satisfaction: Literal["satisfied", "basically_satisfied", "dissatisfied", "unreachable"]
    note: str = Field("", max_length=2000)
