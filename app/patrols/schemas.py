"""Field work at the API: patrols and their points, coverage, check-ins, visits."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field

from app.geometry import CRS, GeometryOut
from app.schemas import ClientId, Id, LocalInstant, LocalTime, RequestModel, ResponseModel

Outcome = Literal["done", "not_home", "follow_up", "case_raised"]


class PatrolStart(RequestModel):
    grid_id: int | None = Field(None, description="Default: the caller's (first) grid")
    started_at: LocalInstant | None = Field(None, description="Default: now")
    client_id: str | None = ClientId
    note: str | None = Field(None, max_length=500)


class PatrolStep(RequestModel):
    at: LocalInstant | None = Field(None, description="Default: now")


class TrackPoint(RequestModel):
    at: LocalInstant = Field(description="When the fix was taken (no offset = Shanghai)")
    lon: float
    lat: float
    accuracy_m: float = Field(ge=0, le=100_000, description="Reported accuracy (m)")
    speed_mps: float | None = Field(None, ge=0, le=10_000, description="Reported speed (m/s)")
    id: str | None = Field(
        None, min_length=1, max_length=64, description="The phone's id of the point"
    )


class TrackBatch(RequestModel):
    crs: CRS = Field(
        CRS.GCJ02, description="gcj02 (default: Amap/Tencent SDKs), wgs84, bd09, cgcs2000"
    )
    points: list[TrackPoint] = Field(min_length=1, description="At most `patrol_batch_max` (500)")


class BatchResult(ResponseModel):
    received: int
    stored: int
    duplicates: int = Field(description="Already stored (a retried batch): nothing added")
    flagged: int = Field(description="Stored but left out of the line (accuracy, pause)")


class PatrolOut(ResponseModel):
    id: int
    worker_id: int
    worker: str
    grid_id: int
    community_id: int
    status: Literal["active", "paused", "ended"]
    started_at: LocalTime
    ended_at: LocalTime | None
    paused_at: LocalTime | None
    pauses: list[list[str]]
    duration_s: float = Field(description="Time on patrol, pauses excluded")
    distance_m: float = Field(description="Geodesic length of the kept line (m)")
    points: int
    kept: int
    flagged: dict[str, int] = Field(description="Points left out of the line, by reason")
    purged: bool = Field(description="Points removed by retention: only the line is left")
    note: str | None
    line: GeometryOut | None = Field(None, description="The line simplified for display")


class TimelineItem(ResponseModel):
    at: LocalTime
    kind: Literal["started", "paused", "resumed", "ended", "case", "checkin", "visit"]
    id: int | None = None
    label: str
    detail: dict[str, Any] = Field(default_factory=dict)


class WorkerHours(ResponseModel):
    worker_id: int
    worker: str
    hours: float
    standard_basis: Literal["duty_roster", "working_days"] = Field(
        description="The days the standard applies to: the worker's duty days when they are on "
        "a roster in the period, else the official calendar's working days"
    )
    working_days: int = Field(description="Days the standard applies to (up to today)")
    standard_hours: float
    days_met: int = Field(description="Of those days, the ones with at least the standard")
    met: bool


class CoverageOut(ResponseModel):
    grid_id: int
    since: LocalTime
    until: LocalTime
    cell_m: int
    radius_m: float
    cells: int
    visited: int
    share: float = Field(description="visited / cells")
    stale_days: int
    stale: int = Field(description="Cells not visited in the last `stale_days` days to `until`")
    patrols: int
    distance_m: float
    workers: list[WorkerHours]


class CheckpointIn(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    lon: float
    lat: float
    crs: CRS = CRS.GCJ02
    radius_m: float = Field(50, gt=0, le=1000)
    schedule: Literal["working_day", "weekly"] = "working_day"
    per_week: int | None = Field(None, ge=1, le=7, description="For `weekly`: check-ins a week")


class CheckpointUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    radius_m: float | None = Field(None, gt=0, le=1000)
    active: bool | None = None


class CheckpointOut(ResponseModel):
    id: int
    grid_id: int
    community_id: int
    name: str
    lon: float
    lat: float
    crs: CRS
    radius_m: float
    schedule: str
    per_week: int | None
    active: bool


class CheckinIn(RequestModel):
    lon: float
    lat: float
    crs: CRS = CRS.GCJ02
    accuracy_m: float = Field(ge=0, le=100_000)
    at: LocalInstant | None = Field(None, description="Default: now")
    patrol_id: int | None = None
    client_id: str | None = ClientId


class CheckinOut(ResponseModel):
    id: int
    checkpoint_id: int
    worker_id: int
    patrol_id: int | None
    at: LocalTime
    accuracy_m: float
    distance_m: float
    accepted: bool = Field(description="Inside the radius (with the accuracy); else flagged")


class MissedCheckin(ResponseModel):
    checkpoint_id: int
    checkpoint: str
    grid_id: int
    period: str = Field(description="A date (every working day) or an ISO week (2026-W48)")
    expected: int
    done: int


class MissedOut(ResponseModel):
    area_id: int
    since: date
    until: date
    expected: int
    done: int
    rate: float | None
    missed: list[MissedCheckin]


class PurposeOut(ResponseModel):
    code: str
    name: str


class CaseFromVisit(RequestModel):
    category: str = Field(min_length=1, max_length=16)
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=5000)
    urgency: Literal["normal", "urgent", "critical"] = "normal"


class VisitIn(RequestModel):
    purpose: str = Field(min_length=1, max_length=32, description="GET /api/v1/visit-purposes")
    outcome: Outcome = "done"
    note: str | None = Field(None, max_length=2000)
    at: LocalInstant | None = Field(None, description="Default: now")
    patrol_id: int | None = None
    client_id: str | None = ClientId
    case: CaseFromVisit | None = Field(None, description="Raise a case at the building")
    household_id: Id | None = Field(None, description="The household visited (in the building)")
    resident_id: Id | None = Field(None, description="The person visited (in the building)")


class VisitOut(ResponseModel):
    id: int
    building_id: int
    grid_id: int
    worker_id: int
    patrol_id: int | None
    purpose: str
    purpose_name: str
    outcome: str
    note: str | None
    at: LocalTime
    case_id: int | None
    household_id: int | None = None
    resident_id: int | None = None


class BoardGrid(CoverageOut):
    code: str
    name: str


class BoardWorker(ResponseModel):
    worker_id: int
    worker: str
    hours: float = Field(description="Hours on patrol in the week, over the area's grids")
    standard_basis: Literal["duty_roster", "working_days"]
    standard_hours: float = Field(
        description="The standard × the week's duty days (on a roster) or working days so far"
    )
    met: bool
    open_tasks: int = Field(description="Personal tasks open or accepted (now)")
    overdue_tasks: int = Field(description="Of those, past their deadline")
    done_tasks: int = Field(description="Done in the week")
    done_on_time: int = Field(description="Done in the week by their deadline")


class WeeklyBoardOut(ResponseModel):
    area_id: int
    week: str = Field(description="ISO week, e.g. 2026-W49 (Monday to Sunday, Asia/Shanghai)")
    since: date
    until: date
    grids: list[BoardGrid] = Field(description="Coverage by patrol of each grid in the week")
    workers: list[BoardWorker]
    checkins: MissedOut = Field(description="Missed check-ins of the area's points in the week")
    open_tasks: int
    overdue_tasks: int


class LivePosition(ResponseModel):
    patrol_id: int
    worker_id: int
    worker: str
    grid_id: int
    status: Literal["active", "paused"]
    at: LocalTime = Field(description="The time of the last kept fix")
    lon: float
    lat: float
    crs: CRS
    accuracy_m: float
    duty_until: LocalTime = Field(
        description="The end of the worker's duty: after it the position is not shown"
    )


class WorklogTotal(ResponseModel):
    patrols: int
    patrol_hours: float
    distance_km: float
    checkins: int
    checkins_accepted: int
    visits: int
    cases: int
    tasks_received: int
    tasks_done: int
    tasks_on_time: int


class WorklogDay(WorklogTotal):
    """One day of the log: the totals' figures for that day."""

    day: date


class WorklogOut(ResponseModel):
    worker_id: int
    worker: str
    span: Literal["day", "month"]
    first: date
    last: date
    days: list[WorklogDay]
    total: WorklogTotal
