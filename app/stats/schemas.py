"""Evaluation responses (documentation of the JSON the consoles read) and the thresholds body."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from app.schemas import RequestModel, ResponseModel

RateName = Literal[
    "sign_in_on_time_rate",
    "handled_on_time_rate",
    "rework_rate",
    "closure_rate",
    "return_rate",
    "response_rate",
    "resolution_rate",
    "satisfaction_rate",
]


class PeriodOut(ResponseModel):
    kind: str
    label: str
    since: str
    until: str


class UnitOut(ResponseModel):
    kind: str
    kind_label: str
    id: int
    code: str | None
    name: str | None


class Figure(ResponseModel):
    """A count (value), a rate (value = numerator / denominator, null when the denominator is
    0), a duration in working hours (mean, p90 over n cases) or cases per 1,000 households. Every
    figure links to the cases behind it (`cases_url`: GET /api/v1/cases with the same filters)."""

    label: str
    value: float | int | None = None
    numerator: int | None = None
    denominator: int | None = None
    mean: float | None = None
    p90: float | None = None
    n: int | None = None
    households: int | None = None
    cases_url: str
    denominator_url: str | None = None


class IndicatorRow(ResponseModel):
    unit: UnitOut
    period: PeriodOut
    figures: dict[str, Figure]
    score: float | None
    rating: Literal["excellent", "qualified", "unqualified", "not_rated"]
    rating_label: str


class IndicatorTable(ResponseModel):
    unit: str
    period: PeriodOut
    items: list[IndicatorRow]


class PreviousOut(ResponseModel):
    rank: int
    score: float | None
    rating: str
    received: int


class RankingRow(ResponseModel):
    rank: int
    unit: UnitOut
    score: float | None
    rating: str
    rating_label: str
    received: int
    rates: dict[str, float | None]
    previous: PreviousOut | None
    score_change: float | None
    rank_change: int | None = Field(description="previous rank - rank: positive = moved up")
    cases_url: str


class RankingTable(ResponseModel):
    unit: str
    period: PeriodOut
    previous_period: PeriodOut
    items: list[RankingRow]


class HotspotCategory(ResponseModel):
    code: str
    name: str
    count: int
    cases_url: str


class HotspotGrid(ResponseModel):
    grid: dict[str, Any]
    community_id: int
    total: int
    households: int
    per_1000_households: float | None
    counts: dict[str, int] = Field(
        description="Received cases by category code; the cases of one cell are the grid's "
        "cases_url with &category=<code>"
    )
    cases_url: str


class Hotspots(ResponseModel):
    period: PeriodOut
    total: int
    max_total: int
    categories: list[HotspotCategory] = Field(description="The legend: totals by category")
    items: list[HotspotGrid]


class ChannelRow(ResponseModel):
    channel: str
    label: str
    count: int
    cases_url: str


class Channels(ResponseModel):
    period: PeriodOut
    total: int
    items: list[ChannelRow]


class ThresholdsOut(ResponseModel):
    excellent: float
    qualified: float
    min_cases: int
    weights: dict[str, float]


class ThresholdsIn(RequestModel):
    """Rating thresholds (score 0–100): excellent (优秀) at or above `excellent`, qualified (合格)
    at or above `qualified`, else unqualified (不合格); units with fewer than `min_cases` received
    cases are not rated. `weights` weigh the rates in the score (rework and returns as 1 - rate).
    Omitted fields keep their value."""

    excellent: float | None = Field(None, ge=0, le=100)
    qualified: float | None = Field(None, ge=0, le=100)
    min_cases: int | None = Field(None, ge=0, le=100000)
    weights: dict[RateName, float] | None = None

    @model_validator(mode="after")
    def _weights(self) -> ThresholdsIn:
        if self.weights is not None:
            if any(w < 0 or w > 1000 for w in self.weights.values()):
                raise ValueError("weights must be between 0 and 1000")
            if not any(w > 0 for w in self.weights.values()):
                raise ValueError("at least one weight must be positive")
        return self


class FieldworkWorker(ResponseModel):
    worker_id: int
    worker: str
    patrols: int
    patrol_hours: float = Field(description="The work log's total for the period's days")
    distance_km: float
    standard_basis: Literal["duty_roster", "working_days"] = Field(
        description="The days the patrol standard applies to: duty days (on a roster) or the "
        "official calendar's working days"
    )
    standard_days: int
    standard_hours: float
    met: bool
    checkins: int
    checkins_accepted: int
    checkin_rate: float | None = Field(description="accepted / check-ins (None: none)")
    visits: int
    cases: int
    tasks_received: int
    tasks_done: int
    tasks_on_time: int
    on_time_rate: float | None = Field(description="done by the deadline / done (None: none)")
    tasks_overdue: int = Field(description="Open or accepted now and past their deadline")


class FieldworkGrid(ResponseModel):
    grid_id: int
    code: str
    name: str
    cells: int
    visited: int
    coverage: float = Field(description="visited / cells, as `/grids/{id}/coverage`'s share")
    stale: int
    patrols: int
    patrol_hours: float
    distance_km: float
    checkins_expected: int
    checkins_done: int
    checkin_rate: float | None = Field(description="As `/areas/{id}/missed-checkins`'s rate")
    tasks_received: int
    tasks_done: int
    tasks_on_time: int
    on_time_rate: float | None
    tasks_overdue: int


class FieldworkOut(ResponseModel):
    period: PeriodOut
    area_id: int | None
    hours_per_day: float = Field(description="The patrol standard per duty or working day")
    workers: list[FieldworkWorker]
    grids: list[FieldworkGrid]
