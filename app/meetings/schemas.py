from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.community.schemas import StepOut, TaskIn, TaskOut, TimeIn
from app.schemas import Id, LocalTime, RequestModel, ResponseModel

Rating = Literal["excellent", "qualified", "unqualified"]
RaterLevel = Literal["street", "community", "grid", "resident"]


class TopicIn(RequestModel):
    kind: Literal["need", "case", "matter", "other"]
    ref_id: Id | None = Field(None, description="The need, case or matter (not for other)")
    title: str = Field(min_length=1, max_length=200)


class MeetingIn(RequestModel):
    title: str = Field(min_length=1, max_length=200)
    held_at: TimeIn = Field(description="When it is (planned) or was (held)")
    place: str = Field("", max_length=200)
    status: Literal["planned", "held"] = "planned"
    attendee_unit_ids: list[Id] = Field(default_factory=list, max_length=100)
    topics: list[TopicIn] = Field(default_factory=list, max_length=50)
    minutes: str = Field("", max_length=20000)


class HoldIn(RequestModel):
    minutes: str = Field(min_length=1, max_length=20000)
    attendee_unit_ids: list[Id] | None = Field(None, max_length=100)


class Attendee(ResponseModel):
    unit_id: int
    name: str
    representative: str | None = None


class Topic(ResponseModel):
    kind: str
    ref_id: int | None = None
    title: str


class MeetingOut(ResponseModel):
    id: int
    community_id: int
    title: str
    held_at: LocalTime
    period: str
    place: str
    status: Literal["planned", "held"]
    attendees: list[Attendee]
    topics: list[Topic]
    created_at: LocalTime


class MeetingDetail(MeetingOut):
    minutes: str
    resolutions: list[TaskOut]
    timeline: list[StepOut]


class ResolutionsIn(RequestModel):
    resolutions: list[TaskIn] = Field(min_length=1, max_length=50)


class ReportTask(ResponseModel):
    id: int
    title: str
    source: str
    meeting_id: int | None
    due_at: LocalTime
    state: str
    progress: int
    progress_note: str
    done_at: LocalTime | None
    overdue: bool = Field(description="Past its deadline unfinished, or finished late")
    escalation_level: int


class UnitReport(ResponseModel):
    unit_id: int
    name: str
    representative: str | None
    duties: str | None
    tasks: list[ReportTask]
    assigned: int
    done: int
    done_on_time: int
    open_overdue: int
    projects: list[dict[str, object]]
    service_members: int = Field(description="Its party members who served in the window")
    service_hours: float = Field(description="Confirmed hours of its registered party members")
    last_rating: str | None


class MeetingReport(ResponseModel):
    meeting_id: int
    since: LocalTime | None = Field(description="The previous meeting (window start)")
    until: LocalTime
    units: list[UnitReport]


class RatingIn(RequestModel):
    unit_id: Id
    period: str = Field(
        pattern=r"^20[0-9]{2}(Q[1-4]|H[12]|Y)$", description="2026Q4, 2026H2, 2026Y"
    )
    rating: Rating
    rater_level: RaterLevel | None = Field(
        None, description="Default from the caller's post: street or community"
    )
    rater_name: str | None = Field(
        None, max_length=100, description="Who rates (required for grid and resident raters)"
    )
    note: str = Field("", max_length=2000)


class RatingOut(ResponseModel):
    id: int
    unit_id: int
    period: str
    rater_level: RaterLevel
    rater_name: str
    rating: Rating
    note: str
    created_at: LocalTime


class UnitSummary(ResponseModel):
    unit_id: int
    name: str
    community_id: int
    ratings: int
    excellent: int
    qualified: int
    unqualified: int
    by_level: dict[str, dict[str, int]]
    score: float | None = Field(description="0-100: excellent 100, qualified 60, unqualified 0")
    result: Rating | None = Field(
        description="unqualified if over a third say so; else excellent if at least half do; "
        "else qualified"
    )


class EvaluationSummary(ResponseModel):
    period: str
    units: list[UnitSummary]
    totals: dict[str, int]


class CommunityCoverage(ResponseModel):
    community_id: int
    name: str
    member_units: int
    meetings: dict[str, int] = Field(description="Held or planned meetings per quarter (Q1-Q4)")
    missing: list[str] = Field(
        description="Past or current quarters with no meeting (for a community with a committee)"
    )


class MeetingCoverage(ResponseModel):
    year: int
    communities: list[CommunityCoverage]
