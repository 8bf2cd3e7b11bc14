from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas import ClientId, Id, LocalTime, RequestModel, ResponseModel

Kind = Literal["family", "neighbour", "property", "labour", "land", "contract", "other"]
Risk = Literal["low", "medium", "high"]


class PartyIn(RequestModel):
    resident_id: Id | None = Field(None, description="A person of the base data")
    organisation_id: Id | None = Field(None, description="An organisation of the base data")
    name: str | None = Field(None, min_length=1, max_length=100, description="A free party")


class DisputeCreate(RequestModel):
    title: str = Field(min_length=1, max_length=200)
    summary: str | None = Field(None, max_length=4000)
    kind: Kind
    risk: Risk = "low"
    source: Literal["patrol", "visit", "report", "hotline"] = "report"
    visit_id: Id | None = Field(None, description="The visit (in this grid) it was screened on")
    patrol_id: Id | None = Field(None, description="The patrol (in this grid) it was screened on")
    parties: list[PartyIn] = Field(min_length=1, max_length=20)
    client_id: str | None = ClientId


class ScreeningIn(RequestModel):
    """A screening report raised on a visit or a patrol (排查上报): the grid, the source and the
    link come from the visit or patrol; a visit's person is the first party when none is named."""

    title: str = Field(min_length=1, max_length=200)
    summary: str | None = Field(None, max_length=4000)
    kind: Kind
    risk: Risk = "low"
    parties: list[PartyIn] = Field(default_factory=list, max_length=20)
    client_id: str | None = ClientId


class SessionIn(RequestModel):
    outcome: Literal["agreed", "continued", "failed"]
    note: str | None = Field(None, max_length=4000)
    agreement: str | None = Field(None, max_length=8000, description="Required when agreed")
    signed_by: str | None = Field(None, max_length=200, description="Required when agreed")


class ReferIn(RequestModel):
    meeting_id: Id = Field(description="A joint review meeting (会商研判) of the community")


class FollowUpIn(RequestModel):
    n: int = Field(ge=1, le=10, description="Which follow-up visit (1, 2, 3…)")
    holds: bool = Field(description="Does the agreement hold?")
    note: str | None = Field(None, max_length=2000)


class PartyOut(ResponseModel):
    id: int
    resident_id: int | None
    organisation_id: int | None
    name: str


class SessionOut(ResponseModel):
    id: int
    mediator_id: int
    at: LocalTime
    outcome: str
    note: str | None
    agreement: str | None
    signed_by: str | None


class FollowUpOut(ResponseModel):
    n: int
    due_at: LocalTime
    done_at: LocalTime | None
    holds: bool | None
    note: str | None


class DisputeOut(ResponseModel):
    id: int
    grid_id: int
    community_id: int
    title: str
    summary: str | None
    kind: Kind
    risk: Risk
    status: str
    source: str
    visit_id: int | None
    patrol_id: int | None
    case_id: int | None = Field(
        description="The case that carries it on the engine (GET /cases/{id})"
    )
    case_number: str | None = None
    reported_by: int
    reported_at: LocalTime
    due_at: LocalTime
    escalated_to: str | None
    escalated_at: LocalTime | None
    meeting_id: int | None
    agreement: str | None
    closed_at: LocalTime | None
    parties: list[PartyOut]
    sessions: list[SessionOut]
    followups: list[FollowUpOut]


class FollowUpDue(ResponseModel):
    dispute_id: int
    case_id: int | None
    grid_id: int
    title: str
    risk: Risk
    n: int
    due_at: LocalTime
    overdue: bool = Field(description="Due before now")
    escalated_to: str | None = Field(description="'centre' once escalated")
    meeting_id: int | None = Field(description="The joint review meeting it was referred to")
    reason: Literal["mediation", "went_up"] = Field(
        description="Why the caller sees it: `mediation` (their grids or community), `went_up` "
        "(escalated or referred: the street and the centre)"
    )


class FollowUpQueue(ResponseModel):
    items: list[FollowUpDue]


class DisputePage(ResponseModel):
    items: list[DisputeOut]
    total: int


class DisputeFigures(ResponseModel):
    area_id: int
    screened: int
    high_risk: int
    escalated: int
    mediated: int = Field(description="With at least one mediation session")
    agreed: int
    closed: int = Field(description="Closed after the follow-ups held")
    success_rate: float | None = Field(description="closed / mediated")
    repeat_parties: int = Field(description="Persons party to more than one dispute")
    repeat_disputes: int = Field(description="Disputes with a party of another dispute")
