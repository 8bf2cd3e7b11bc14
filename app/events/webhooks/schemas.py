"""Bodies and answers of /api/v1/webhooks."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field, field_validator
from pydantic_core import PydanticCustomError

from app.events.webhooks.catalogue import event_types
from app.schemas import Id, LocalTime, RequestModel, ResponseModel


class SubscriptionIn(RequestModel):
    department_id: Id | None = Field(None, description="Default: your department")
    url: AnyHttpUrl
    event_types: list[str] = Field(
        default_factory=list,
        max_length=30,
        description="From the catalogue of event types, e.g. case.dispatch, case.overdue; "
        "empty: all",
    )

    @field_validator("event_types")
    @classmethod
    def _known_types(cls, value: list[str]) -> list[str]:
        known = event_types()
        unknown = [t for t in value if t not in known]
        if unknown:
            raise PydanticCustomError(
                "unknown_event_type",
                "not in the catalogue of event types: {types}",
                {"types": ", ".join(unknown)},
            )
        return list(dict.fromkeys(value))


class SubscriptionOut(ResponseModel):
    id: int
    department_id: int
    url: str
    event_types: list[str]
    active: bool
    created_at: LocalTime
    delivered: int
    pending: int
    failing: int = Field(description="Undelivered after at least one failed attempt")
    gave_up: int
    last_error: str | None


class SubscriptionCreated(SubscriptionOut):
    secret: str = Field(description="Shown once: verify Wangge-Signature with it")


class FailingDelivery(ResponseModel):
    id: int
    subscription_id: int
    department_id: int
    url: str
    event_id: int
    attempts: int
    gave_up: bool
    last_status: int | None
    last_error: str | None
    next_attempt_at: LocalTime
