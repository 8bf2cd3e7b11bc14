"""Field work: patrols (巡查) from the phone, coverage of grids, check-ins (打卡), visits (走访)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from app.areas.service import get_area
from app.auth.policy import (
    RULES,
    CheckpointManager,
    CommunityReader,
    CoverageReader,
    FieldReader,
    FieldRecorder,
    LivePositionReader,
    PatrolReader,
    PatrolWorker,
    SignedIn,
    WorklogReader,
)
from app.auth.scope import worker_covered
from app.db import DbSession
from app.errors import ApiError
from app.geometry import CRS, CrsQuery
from app.http import ApiRoute
from app.i18n import RequestLang
from app.patrols import board, checkins, coverage, live, service, timeline, visits, worklog
from app.patrols.schemas import (
    BatchResult,
    CheckinIn,
    CheckinOut,
    CheckpointIn,
    CheckpointOut,
    CheckpointUpdate,
    CoverageOut,
    LivePosition,
    MissedOut,
    PatrolOut,
    PatrolStart,
    PatrolStep,
    PurposeOut,
    TimelineItem,
    TrackBatch,
    VisitIn,
    VisitOut,
    WeeklyBoardOut,
    WorklogOut,
)
from app.responses import FastJSON
from app.schemas import SHANGHAI, IdPath, IdQuery, LocalDate, Page, TimeQuery

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

router = APIRouter(prefix="/api/v1", tags=["field work"], route_class=ApiRoute)

_CREATED: dict[int | str, dict[str, Any]] = {
    200: {"description": "Already stored (the same `client_id`): nothing added"}
}


@router.post(
    "/patrols",
    response_model=PatrolOut,
    status_code=status.HTTP_201_CREATED,
    responses=_CREATED,
    summary="Start a patrol (巡查) in one of your grids",
)
async def start_patrol(
    body: PatrolStart, response: Response, session: DbSession, who: PatrolWorker
) -> Any:
    p, created = await service.start(session, who, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return service.out(p)


@router.get(
    "/patrols",
    response_model=Page[PatrolOut],
    summary="Patrols you may see (a worker: their own; leaders and area staff: their grids')",
)
async def list_patrols(
    session: DbSession,
    who: PatrolReader,
    worker_id: IdQuery = None,
    grid_id: IdQuery = None,
    since: TimeQuery = None,
    until: TimeQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=100_000)] = 0,
) -> Any:
    items, total = await service.list_patrols(
        session,
        who,
        worker_id=worker_id,
        grid_id=grid_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/patrols/{patrol_id}", response_model=PatrolOut, summary="A patrol and its line")
async def get_patrol(
    patrol_id: IdPath, session: DbSession, who: PatrolReader, crs: CrsQuery = CRS.GCJ02
) -> Any:
    return await service.detail(session, patrol_id, crs)


@router.post(
    "/patrols/{patrol_id}/points",
    response_model=BatchResult,
    summary="A batch of track points (GCJ-02 by default; idempotent; late and out of order "
    "are fine)",
)
async def add_points(
    patrol_id: IdPath, body: TrackBatch, session: DbSession, who: PatrolWorker
) -> Any:
    return await service.add_points(session, patrol_id, body)


@router.post("/patrols/{patrol_id}/pause", response_model=PatrolOut, summary="Pause a patrol")
async def pause_patrol(
    patrol_id: IdPath, session: DbSession, who: PatrolWorker, body: PatrolStep | None = None
) -> Any:
    return service.out(await service.pause(session, patrol_id, body.at if body else None))


@router.post("/patrols/{patrol_id}/resume", response_model=PatrolOut, summary="Resume a patrol")
async def resume_patrol(
    patrol_id: IdPath, session: DbSession, who: PatrolWorker, body: PatrolStep | None = None
) -> Any:
    return service.out(await service.resume(session, patrol_id, body.at if body else None))


@router.post("/patrols/{patrol_id}/end", response_model=PatrolOut, summary="End a patrol")
async def end_patrol(
    patrol_id: IdPath, session: DbSession, who: PatrolWorker, body: PatrolStep | None = None
) -> Any:
    await service.end(session, patrol_id, body.at if body else None)
    return await service.detail(session, patrol_id, CRS.GCJ02)


@router.get(
    "/patrols/{patrol_id}/timeline",
    response_model=list[TimelineItem],
    summary="A patrol's timeline: its steps, and the cases, check-ins and visits made during it",
)
async def patrol_timeline(patrol_id: IdPath, session: DbSession, who: PatrolReader) -> Any:
    return await timeline.timeline(session, patrol_id)


def _out_of_range(field: str) -> ApiError:
    return ApiError(
        "validation_error",
        detail="日期超出可处理的范围",
        detail_en="The date is out of range",
        field=field,
    )


def _period(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    today = datetime.now(SHANGHAI).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        hi = until or today + timedelta(days=1)
        lo = since or hi - timedelta(days=30)
    except OverflowError:
        raise _out_of_range("until") from None
    if lo.year < 1900 or hi.year > 2200:
        raise _out_of_range("since" if lo.year < 1900 else "until")
    if lo >= hi:
        raise ApiError(
            "validation_error",
            detail="开始时间应早于结束时间",
            detail_en="since must be before until",
            field="since",
        )
    if hi - lo > timedelta(days=366):
        raise ApiError(
            "validation_error",
            detail="时间范围不能超过一年",
            detail_en="The period is at most a year",
            field="since",
        )
    return lo, hi


@router.get(
    "/grids/{grid_id}/coverage",
    response_model=CoverageOut,
    summary="Coverage of a grid by patrols over a period (default: the last 30 days)",
)
async def grid_coverage(
    grid_id: IdPath,
    session: DbSession,
    who: CoverageReader,
    since: TimeQuery = None,
    until: TimeQuery = None,
    stale_days: Annotated[int | None, Query(ge=1, le=365)] = None,
) -> Any:
    from app.config import get_settings

    lo, hi = _period(since, until)
    grid = await service.place_of_grid(session, grid_id)
    return await coverage.coverage(
        session, grid, lo, hi, stale_days or get_settings().coverage_stale_days
    )


@router.get(
    "/grids/{grid_id}/checkpoints",
    response_model=list[CheckpointOut],
    summary="The grid's check-in points (打卡点)",
)
async def list_checkpoints(
    grid_id: IdPath, session: DbSession, who: FieldReader, crs: CrsQuery = CRS.GCJ02
) -> Any:
    return [
        checkins.checkpoint_out(r, crs) for r in await checkins.list_checkpoints(session, grid_id)
    ]


@router.post(
    "/grids/{grid_id}/checkpoints",
    response_model=CheckpointOut,
    status_code=status.HTTP_201_CREATED,
    summary="Set up a check-in point inside the grid",
)
async def create_checkpoint(
    grid_id: IdPath, body: CheckpointIn, session: DbSession, who: CheckpointManager
) -> Any:
    return checkins.checkpoint_out(
        await checkins.create_checkpoint(session, grid_id, body, who), body.crs
    )


@router.patch(
    "/checkpoints/{checkpoint_id}",
    response_model=CheckpointOut,
    summary="Rename, resize or retire a check-in point",
)
async def update_checkpoint(
    checkpoint_id: IdPath, body: CheckpointUpdate, session: DbSession, who: CheckpointManager
) -> Any:
    return checkins.checkpoint_out(await checkins.update_checkpoint(session, checkpoint_id, body))


@router.post(
    "/checkpoints/{checkpoint_id}/checkins",
    response_model=CheckinOut,
    status_code=status.HTTP_201_CREATED,
    responses=_CREATED,
    summary="Check in (打卡): accepted inside the radius (accuracy counted), flagged otherwise",
)
async def check_in(
    checkpoint_id: IdPath,
    body: CheckinIn,
    response: Response,
    session: DbSession,
    who: FieldRecorder,
) -> Any:
    row, created = await checkins.check_in(session, checkpoint_id, body, who)
    if not created:
        response.status_code = status.HTTP_200_OK
    return dict(row._mapping)


@router.get(
    "/areas/{area_id}/missed-checkins",
    response_model=MissedOut,
    summary="Missed check-ins of a community's points over a period (default: the last 7 days)",
)
async def missed_checkins(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    since: LocalDate | None = None,
    until: LocalDate | None = None,
) -> Any:
    today = datetime.now(SHANGHAI).date()
    hi = until or today
    try:
        lo = since or hi - timedelta(days=6)
    except OverflowError:
        raise _out_of_range("until") from None
    if lo.year < 1900 or hi.year > 2200:
        raise _out_of_range("since" if lo.year < 1900 else "until")
    if lo > hi or (hi - lo).days > 366:
        raise ApiError(
            "validation_error",
            detail="时间范围无效（不超过一年）",
            detail_en="Invalid period (at most a year)",
            field="since",
        )
    out = await checkins.missed(session, area_id, lo, hi)
    return {"area_id": area_id, **out}


@router.get(
    "/areas/{area_id}/weekly-board",
    summary="The community's weekly board (周工作看板): patrol hours per worker against the "
    "standard, coverage per grid, missed check-ins, open tasks (default: this week); as JSON, "
    "printable HTML or XLSX",
    response_class=Response,
    responses={
        200: {
            "model": WeeklyBoardOut,
            "content": {"application/json": {}, "text/html": {}, XLSX: {}},
            "description": "The same figures as JSON, printable HTML or XLSX (a sheet each for "
            "the workers, the grids' coverage and the missed check-ins)",
        }
    },
)
async def weekly_board(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    week: Annotated[
        str | None, Query(pattern=r"^\d{4}-W\d{2}$", description="ISO week, e.g. 2026-W49")
    ] = None,
    format: Literal["json", "html", "xlsx"] = "json",
) -> Response:
    bad = ApiError(
        "validation_error",
        detail="周次无效（如 2026-W49，2000 至 2100 年）",
        detail_en="Invalid ISO week (e.g. 2026-W49, years 2000 to 2100)",
        field="week",
    )
    if week is None:
        monday = board.week_of(datetime.now(SHANGHAI).date())[0]
    else:
        try:
            monday = date.fromisocalendar(int(week[:4]), int(week[6:]), 1)
        except ValueError:
            raise bad from None
        if not 2000 <= monday.year <= 2100:
            raise bad
    b = await board.weekly(session, area_id, monday)
    if format == "json":
        return FastJSON(WeeklyBoardOut.model_validate(b).model_dump(mode="json"))
    area = (await get_area(session, area_id)).name
    if format == "html":
        return Response(board.to_html(b, area), media_type="text/html; charset=utf-8")
    name = f"weekly-board-{area_id}-{b['week']}.xlsx"
    return Response(
        board.to_xlsx(b, area),
        media_type=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/visit-purposes", response_model=list[PurposeOut], summary="Visit purposes (走访目的)")
async def visit_purposes(session: DbSession, who: SignedIn, lang: RequestLang) -> Any:
    return await visits.purposes(session, lang)


@router.post(
    "/buildings/{building_id}/visits",
    response_model=VisitOut,
    status_code=status.HTTP_201_CREATED,
    responses=_CREATED,
    summary="Record a visit (走访) to a building; it may raise a case",
)
async def record_visit(
    building_id: IdPath,
    body: VisitIn,
    response: Response,
    session: DbSession,
    who: FieldRecorder,
    lang: RequestLang,
) -> Any:
    row, created = await visits.record(session, building_id, body, who, lang)
    if not created:
        response.status_code = status.HTTP_200_OK
    return dict(row._mapping)


@router.get(
    "/buildings/{building_id}/visits",
    response_model=list[VisitOut],
    summary="Visits to a building (latest first, at most 200)",
)
async def building_visits(
    building_id: IdPath, session: DbSession, who: FieldReader, lang: RequestLang
) -> Any:
    return [dict(r._mapping) for r in await visits.of_building(session, building_id, lang)]


_WORKLOG_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": WorklogOut,
        "content": {"application/json": {}, "text/html": {}, XLSX: {}},
        "description": "The same figures as JSON, printable HTML or XLSX",
    }
}
DateQ = Annotated[LocalDate | None, Query(alias="date", description="Default: today")]


async def _worklog(
    session: DbSession, worker_id: int, name: str, day: date | None, span: str, format: str
) -> Response:
    when = day or datetime.now(SHANGHAI).date()
    if not date(1900, 1, 1) <= when <= date(2200, 12, 1):
        raise _out_of_range("date")
    log = await worklog.worklog(session, worker_id, name, when, span)
    if format == "html":
        return Response(worklog.to_html(log), media_type="text/html; charset=utf-8")
    if format == "xlsx":
        name = f"worklog-{worker_id}-{log['first'][: 10 if span == 'day' else 7]}.xlsx"
        return Response(
            worklog.to_xlsx(log),
            media_type=XLSX,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return FastJSON(log)


@router.get(
    "/me/worklog",
    summary="Your work log (工作日志) for a day or a month: patrols, check-ins, visits, cases, "
    "tasks",
    response_class=Response,
    responses=_WORKLOG_RESPONSES,
)
async def my_worklog(
    session: DbSession,
    who: PatrolWorker,
    day: DateQ = None,
    span: Literal["day", "month"] = "day",
    format: Literal["json", "html", "xlsx"] = "json",
) -> Response:
    return await _worklog(session, who.user_id, who.display_name, day, span, format)


@router.get(
    "/workers/{worker_id}/worklog",
    summary="A grid worker's work log (工作日志), for the community and street staff of their "
    "areas: the same figures as the worker's own",
    response_class=Response,
    responses=_WORKLOG_RESPONSES,
)
async def worker_worklog(
    worker_id: IdPath,
    session: DbSession,
    who: WorklogReader,
    day: DateQ = None,
    span: Literal["day", "month"] = "day",
    format: Literal["json", "html", "xlsx"] = "json",
) -> Response:
    name = await worklog.name_of(session, worker_id)
    if name is None or not await worker_covered(session, who, RULES["worklog:read"], worker_id):
        raise ApiError(
            "not_found",
            detail="网格员不存在或不在您的辖区",
            detail_en="No such grid worker in your areas",
            field="worker_id",
        )
    return await _worklog(session, worker_id, str(name), day, span, format)


@router.get(
    "/areas/{area_id}/live-positions",
    response_model=list[LivePosition],
    summary="Live positions of the area's workers on patrol, for the centre, during their duty "
    "time only (nothing outside it)",
)
async def live_positions(
    area_id: IdPath, session: DbSession, who: LivePositionReader, crs: CrsQuery = CRS.GCJ02
) -> Any:
    return await live.live_positions(session, who, area_id, crs)
