from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from app.schemas import MAX_ID, RequestModel, ResponseModel

Id = Annotated[int, Field(ge=1, le=MAX_ID)]
Kind = Literal["verification", "callback", "inspection", "meeting_resolution"]
State = Literal["pending_approval", "refused", "open", "accepted", "done", "declined", "cancelled"]


class WorkerTaskIn(RequestModel):
    kind: Kind = Field(
        description="verification 现场核查, callback 回访, inspection 检查, meeting_resolution 会议决议"
    )
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    worker_id: Id | None = Field(None, description="None: the grid's worker on duty now")
    grid_id: Id | None = Field(None, description="Default: the case's grid, else the worker's")
    case_id: Id | None = Field(None, description="Required for a verification")
    meeting_id: Id | None = None
    due_value: Decimal = Field(gt=0, le=999, max_digits=4, decimal_places=1)
    due_unit: Literal["hours", "days"] = Field(description="Working hours or working days")
    matter_code: str | None = Field(
        None,
        max_length=32,
        description="The admission list's item (事项编码) a department's task belongs to",
    )


class TaskNoteIn(RequestModel):
    note: str = Field("", max_length=2000)


class TaskReasonIn(RequestModel):
    reason: str = Field(min_length=2, max_length=2000)


class WorkerTaskOut(ResponseModel):
    id: int
    district_id: int
    community_id: int
    grid_id: int | None
    worker_id: int
    worker_name: str
    kind: str
    title: str
    description: str
    case_id: int | None
    meeting_id: int | None
    issuer_role: str
    department_id: int | None
    matter_code: str | None
    admission_item_id: int | None
    outside_list: bool
    state: str
    due_value: Decimal
    due_unit: str
    starts_at: datetime | None
    due_at: datetime | None
    provisional: bool
    overdue: bool
    accepted_at: datetime | None
    finished_at: datetime | None
    result: str
    reason: str
    decided_by: int | None
    decided_at: datetime | None
    decision_reason: str
    escalation_level: int
    created_by: int | None
    created_at: datetime


class TaskCounts(ResponseModel):
    open: int = Field(description="Open or accepted")
    due_today: int = Field(description="Open or accepted, due today (Asia/Shanghai)")
    overdue: int = Field(description="Open or accepted, past the deadline")


class MyTasksOut(ResponseModel):
    counts: TaskCounts
    items: list[WorkerTaskOut]
