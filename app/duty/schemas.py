from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from app.schemas import MAX_ID, LocalInstant, RequestModel, ResponseModel

Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class DutySlotIn(RequestModel):
    grid_id: Id | None = Field(None, description="None: on duty for the whole community")
    user_id: Id | None = Field(None, description="A worker's account (专职/兼职网格员)")
    party_member_id: Id | None = Field(
        None, description="An in-service party member registered with the community (双报到)"
    )
    starts_at: LocalInstant
    ends_at: LocalInstant = Field(description="At most 24 hours after starts_at")
    note: str = Field("", max_length=500)


class DutyRosterIn(RequestModel):
    slots: list[DutySlotIn] = Field(min_length=1, max_length=500)


class DutySlotOut(ResponseModel):
    id: int
    district_id: int
    community_id: int
    grid_id: int | None
    user_id: int | None
    party_member_id: int | None
    name: str
    worker_type: str
    starts_at: datetime
    ends_at: datetime
    note: str
