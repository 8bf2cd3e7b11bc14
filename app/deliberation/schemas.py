from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import Field

from app.community import labels
from app.community.schemas import StepOut, TaskIn, TaskOut
from app.schemas import Id, LabelledModel, Labels, LocalTime, RequestModel, ResponseModel

MatterStatus = Literal[
    "proposed",
    "accepted",
    "consulting",
    "resolved",
    "done",
    "evaluated",
    "rejected",
    "merged",
    "failed",
]
MatterAction = Literal["accept", "merge", "reject", "consult", "resolve", "complete", "close"]
Vote = Literal["yes", "no", "abstain"]
Satisfaction = Literal["satisfied", "basic", "unsatisfied"]


class ProposalIn(RequestModel):
    title: str = Field(min_length=2, max_length=100)
    description: str = Field("", max_length=2000)
    proposer: str | None = Field(None, max_length=50, description="Never shown on the board")
    grid_id: Id | None = None


class ActionIn(RequestModel):
    reason: str | None = Field(None, max_length=2000, description="reject (required)")
    merge_into_id: Id | None = Field(None, description="merge: the matter it joins")
    mode: Literal["meeting", "online"] | None = Field(None, description="consult")
    quorum: int | None = Field(None, ge=1, le=100_000, description="consult: participants needed")
    consult_days: int | None = Field(
        None, ge=0, le=60, description="consult: opinions close after this many working days"
    )
    decision: str | None = Field(None, max_length=4000, description="resolve")
    executors: list[TaskIn] = Field(
        default_factory=list, max_length=20, description="resolve: who does what, by when"
    )
    money: Decimal | None = Field(None, ge=0, le=10**10, description="resolve: yuan")
    funding: str | None = Field(None, max_length=200, description="resolve: where money comes from")
    note: str = Field("", max_length=2000)


class OpinionIn(RequestModel):
    participant: str = Field(min_length=1, max_length=100, description="Resident or household")
    vote: Vote
    opinion: str = Field("", max_length=2000)
    channel: Literal["meeting", "online"] = "meeting"


class RatingIn(RequestModel):
    participant: str = Field(min_length=1, max_length=100)
    rating: Satisfaction
    comment: str = Field("", max_length=2000)


class Tally(ResponseModel):
    participants: int
    yes: int
    no: int
    abstain: int
    quorum: int | None
    quorum_met: bool
    passed: bool = Field(description="More yes than no among those voting yes or no")


class SatisfactionOut(ResponseModel):
    ratings: int
    satisfied: int
    basic: int
    unsatisfied: int
    rate: float | None = Field(description="Share satisfied or basically satisfied (0-1)")


class MatterOut(LabelledModel):
    id: int
    community_id: int
    grid_id: int | None
    title: str
    description: str
    channel: str
    status: Annotated[MatterStatus, Labels(labels.MATTER_STATUS)]
    status_label: str = ""
    step: Annotated[int, Labels(labels.STEP)] = Field(
        description="1 提议, 2 审议, 3 商议, 4 决议, 5 评议"
    )
    step_label: str = ""
    merged_into_id: int | None
    reason: str | None
    mode: str | None
    quorum: int | None
    consult_until: LocalTime | None
    decision: str | None
    money: Decimal | None
    funding: str | None
    created_at: LocalTime
    updated_at: LocalTime


class OpinionOut(ResponseModel):
    id: int
    participant: str
    vote: Vote
    opinion: str
    channel: str
    at: LocalTime


class MatterDetail(MatterOut):
    proposer: str | None
    tally: Tally
    satisfaction: SatisfactionOut
    opinions: list[OpinionOut]
    tasks: list[TaskOut]
    timeline: list[StepOut]
    allowed_actions: list[str]


class BoardItem(LabelledModel):
    id: int
    title: str
    status: Annotated[MatterStatus, Labels(labels.MATTER_STATUS)]
    status_label: str = ""
    step: Annotated[int, Labels(labels.STEP)]
    step_label: str = ""
    proposed_at: LocalTime
    updated_at: LocalTime
    tally: Tally | None
    consult_until: LocalTime | None
    decision: str | None
    money: Decimal | None
    due_at: LocalTime | None
    tasks_done: int
    tasks: int
    satisfaction: SatisfactionOut | None


class Board(ResponseModel):
    community_id: int
    community: str
    matters: list[BoardItem]
    counts: dict[str, int] = Field(description="Matters by status (all of them)")
    total: int = Field(description="Matters matching the step filter")
    limit: int
    offset: int


class ProposalReceipt(ResponseModel):
    id: int
    status: Literal["proposed"]
    board: str = Field(description="Where the proposal can be followed")
