"""/api/v1/stats — evaluation (考评) for the consoles: indicators per unit and period, rankings
with ratings, hot spots for the map, cases by channel, CSV/XLSX export of any table, the monthly
report of a department, and the rating thresholds."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse
from pydantic import BeforeValidator
from sqlalchemy import text
from starlette.responses import Response

from app.audit.service import record
from app.auth.policy import StatsConfigurer, StatsReader, area_or_404
from app.categories.schemas import CategoryCodesQuery
from app.db import DbReader, DbSession
from app.errors import ApiError
from app.http import ApiRoute
from app.i18n import RequestLang
from app.responses import FastJSON
from app.schemas import SHANGHAI, IdPath, IdQuery, LocalDate, LocalInstant, strict_integer
from app.stats import export, fieldwork, maps, periods, report, service
from app.stats.derive import FactsReader
from app.stats.schemas import (
    Channels,
    FieldworkOut,
    Hotspots,
    IndicatorTable,
    RankingTable,
    ThresholdsIn,
    ThresholdsOut,
)

router = APIRouter(prefix="/api/v1/stats", tags=["stats"], route_class=ApiRoute)

Unit = Literal["district", "street", "community", "grid", "worker", "department"]
RankUnit = Literal["department", "street", "community", "grid"]
PeriodKind = Literal["day", "week", "month", "quarter", "year", "custom"]
PeriodQ = Annotated[PeriodKind, Query(description="day, week (ISO), month, quarter, year, custom")]
AtQ = Annotated[LocalDate | None, Query(description="Any day in the period (default: today)")]
SinceQ = Annotated[
    LocalInstant | None, Query(description="custom: start (Asia/Shanghai if no offset)")
]
UntilQ = Annotated[LocalInstant | None, Query(description="custom: end, exclusive")]


def _today() -> date:
    return datetime.now(SHANGHAI).date()


def _period(kind: str, at: date | None, since: datetime | None, until: datetime | None) -> Any:
    return periods.resolve(kind, at, since, until, _today())


@router.get(
    "/indicators",
    response_model=IndicatorTable,
    summary="Indicators per unit (department, street, community, grid, grid worker) and period",
)
async def indicators(
    reader: FactsReader,
    who: StatsReader,
    lang: RequestLang,
    unit: Unit = "street",
    period: PeriodQ = "month",
    at: AtQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    unit_id: Annotated[
        int | None, Query(description="Only this unit"), BeforeValidator(strict_integer)
    ] = None,
) -> Response:
    p = _period(period, at, since, until)
    rows = await service.indicator_rows(reader, who, unit, p, lang, unit_id=unit_id)
    return FastJSON({"unit": unit, "period": p.out(), "items": rows})


@router.get(
    "/rankings",
    response_model=RankingTable,
    summary="Rankings by score with ratings (优秀/合格/不合格) and the change on the previous period",
)
async def rankings(
    reader: FactsReader,
    who: StatsReader,
    lang: RequestLang,
    unit: RankUnit = "department",
    period: PeriodQ = "month",
    at: AtQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
) -> Response:
    p = _period(period, at, since, until)
    prev = periods.previous(p)
    rows = await service.rankings(reader, who, unit, p, prev, lang)
    return FastJSON({"unit": unit, "period": p.out(), "previous_period": prev.out(), "items": rows})


@router.get(
    "/hotspots",
    response_model=Hotspots,
    summary="Received cases by grid and category over a period (the map's choropleth)",
)
async def hotspots(
    reader: FactsReader,
    who: StatsReader,
    lang: RequestLang,
    period: PeriodQ = "month",
    at: AtQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    category: CategoryCodesQuery = None,
    street_id: IdQuery = None,
    community_id: IdQuery = None,
) -> Response:
    p = _period(period, at, since, until)
    return FastJSON(await maps.hotspots(reader, who, p, lang, category, street_id, community_id))


@router.get("/channels", response_model=Channels, summary="Received cases by intake channel")
async def channels(
    reader: FactsReader,
    who: StatsReader,
    lang: RequestLang,
    period: PeriodQ = "month",
    at: AtQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    unit: Unit | None = None,
    unit_id: IdQuery = None,
) -> Response:
    p = _period(period, at, since, until)
    return FastJSON(await maps.channels(reader, who, p, lang, unit, unit_id))


async def _fieldwork(session: DbSession, who: Any, p: Any, area_id: int | None) -> dict[str, Any]:
    if area_id is not None:
        await area_or_404(session, who, "stats:read", area_id)
    return await fieldwork.fieldwork(session, who, p, area_id)


@router.get(
    "/fieldwork",
    response_model=FieldworkOut,
    summary="Field work per grid worker and per grid: patrol hours against the standard, "
    "coverage, check-in rate, task on-time rate (the work log's and the board's figures)",
)
async def fieldwork_figures(
    session: DbSession,
    who: StatsReader,
    period: PeriodQ = "month",
    at: AtQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    area_id: IdQuery = None,
) -> Response:
    """`area_id`: every grid below this area (default: the grids with field work in the
    period)."""
    p = _period(period, at, since, until)
    return FastJSON(await _fieldwork(session, who, p, area_id))


@router.get(
    "/export",
    summary="Any evaluation table as CSV or XLSX (Chinese headers; English with Accept-Language)",
    response_class=Response,
    responses={
        200: {
            "content": {
                "text/csv": {},
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {},
            }
        }
    },
)
async def export_table(
    reader: FactsReader,
    who: StatsReader,
    lang: RequestLang,
    session: DbSession,
    table: Literal["indicators", "rankings", "hotspots", "channels", "fieldwork"] = "indicators",
    format: Literal["csv", "xlsx"] = "csv",
    unit: Unit = "street",
    period: PeriodQ = "month",
    at: AtQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    unit_id: IdQuery = None,
    category: CategoryCodesQuery = None,
    area_id: IdQuery = None,
) -> Response:
    p = _period(period, at, since, until)
    if table == "fieldwork":
        if unit not in ("worker", "grid"):
            raise ApiError(
                "validation_error",
                field="unit",
                detail="巡查工作表只支持网格员（worker）或网格（grid）",
                detail_en="The field work table is per worker or per grid",
            )
        tab = fieldwork.table(await _fieldwork(session, who, p, area_id), unit, lang)
    elif table == "indicators":
        rows = await service.indicator_rows(reader, who, unit, p, lang, unit_id=unit_id)
        tab = export.indicator_table(rows, unit, lang)
    elif table == "rankings":
        if unit not in ("department", "street", "community", "grid"):
            raise ApiError(
                "validation_error",
                field="unit",
                detail="排名只支持部门、街道、社区、网格",
                detail_en="Rankings are for departments, streets, communities and grids",
            )
        rows = await service.rankings(reader, who, unit, p, periods.previous(p), lang)
        tab = export.ranking_table(rows, lang)
    elif table == "hotspots":
        tab = export.hotspot_table(await maps.hotspots(reader, who, p, lang, category), lang)
    else:
        u = unit if unit_id is not None else None
        tab = export.channel_table(await maps.channels(reader, who, p, lang, u, unit_id), lang)
    name = f"wangge-{table}-{unit}-{p.label.replace('/', '_').replace(':', '')}.{format}"
    headers = {"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"}
    if format == "csv":
        return Response(export.to_csv(tab), media_type="text/csv; charset=utf-8", headers=headers)
    return Response(
        export.to_xlsx(tab, table),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers=headers,
    )


@router.get(
    "/departments/{department_id}/monthly-report",
    summary="A department's monthly evaluation report: printable HTML with a 12-month trend chart",
    response_class=HTMLResponse,
)
async def monthly_report(
    department_id: IdPath,
    reader: FactsReader,
    who: StatsReader,
    lang: RequestLang,
    month: Annotated[
        str | None,
        Query(
            pattern=r"^20\d{2}-(0[1-9]|1[0-2])$",
            description="YYYY-MM, 2000-2099 (default: this month)",
        ),
    ] = None,
) -> HTMLResponse:
    dept = (
        await reader.execute(
            text("SELECT id, code, name FROM departments WHERE id = :id"), {"id": department_id}
        )
    ).first()
    scope = await service.scope_of(reader, who)
    allowed = await scope.units(reader, "department")
    if dept is None or (allowed is not None and department_id not in allowed):
        raise ApiError(
            "not_found",
            detail=f"部门不存在：{department_id}",
            detail_en=f"No such department: {department_id}",
        )
    first = date.fromisoformat(f"{month}-01") if month else _today().replace(day=1)
    cfg = await service.thresholds(reader)
    p = periods.period_of("month", first)
    ranked = await service.indicator_rows(reader, who, "department", p, "zh", cfg=cfg, scope=scope)
    ranks = service._ranked(ranked)
    row = next((r for r in ranked if r["unit"]["id"] == department_id), None)
    rank = (ranks[department_id], len(ranked)) if row and scope.non_department else None
    months = []
    for k in range(11, -1, -1):
        m = date(first.year + (first.month - 1 - k) // 12, (first.month - 1 - k) % 12 + 1, 1)
        if k == 0:
            months.append((f"{m.year}-{m.month:02d}", row))
            continue
        mp = periods.period_of("month", m)
        rows = await service.indicator_rows(
            reader, who, "department", mp, "zh", unit_id=department_id, cfg=cfg, scope=scope
        )
        months.append((mp.label, rows[0] if rows else None))
    html = report.render(
        {"id": dept.id, "code": dept.code, "name": dept.name},
        first,
        row,
        rank,
        months,
        datetime.now(SHANGHAI).strftime("%Y-%m-%d %H:%M"),
    )
    return HTMLResponse(html)


@router.get("/thresholds", response_model=ThresholdsOut, summary="Rating thresholds and weights")
async def get_thresholds(reader: DbReader, who: StatsReader) -> Response:
    return FastJSON(await service.thresholds(reader))


@router.put(
    "/thresholds", response_model=ThresholdsOut, summary="Change rating thresholds and weights"
)
async def put_thresholds(body: ThresholdsIn, session: DbSession, who: StatsConfigurer) -> Response:
    conn = await session.connection()
    before = await service.thresholds(conn)
    after = {**before, **body.model_dump(exclude_none=True)}
    if float(after["excellent"]) < float(after["qualified"]):
        raise ApiError(
            "validation_error",
            field="excellent",
            detail="优秀线不能低于合格线",
            detail_en="excellent must not be below qualified",
        )
    await service.save_thresholds(conn, after, who)
    await record(
        session,
        "stats_thresholds_changed",
        actor=who,
        object_type="stats_thresholds",
        object_id="1",
        detail={"before": before, "after": after},
    )
    return FastJSON(after)
