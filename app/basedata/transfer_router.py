"""/api/v1/grids/{grid_id}/basedata/import and /export — the ledgers (台账) in and out."""

from __future__ import annotations

import json
import logging
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile
from sqlalchemy import text

from app.audit.service import record
from app.auth.basedata_scope import list_view
from app.auth.policy import BasedataReader, BasedataWriter
from app.auth.scope import object_chain
from app.basedata import importer, residents, service
from app.basedata.ledger import FIELDS, RELATION_LABELS, USE_LABELS, read_rows, to_csv, to_xlsx
from app.basedata.schemas import ImportOut
from app.db import DbSession
from app.errors import ApiError, not_found
from app.http import ApiRoute
from app.schemas import IdPath

router = APIRouter(prefix="/api/v1", tags=["base data"], route_class=ApiRoute)
log = logging.getLogger("wangge.basedata")


@router.post(
    "/grids/{grid_id}/basedata/import",
    response_model=ImportOut,
    summary="Import a ledger (XLSX or CSV): every row validated, all errors at once, all or "
    "nothing; dry_run validates only",
)
async def import_ledger(
    grid_id: IdPath,
    request: Request,
    session: DbSession,
    who: BasedataWriter,
    file: Annotated[UploadFile, File(description="XLSX (first sheet) or CSV, header in row 1")],
    mapping: Annotated[
        str | None,
        Form(description='JSON: field → the file\'s header, e.g. {"id_number": "证件号"}'),
    ] = None,
    dry_run: Annotated[bool, Form()] = False,
    create_houses: Annotated[bool, Form(description="Register houses not yet known")] = False,
) -> dict[str, Any]:
    started = time.monotonic()
    # A 50,000-row ledger is a few large statements (COPY, the recount): they get five
    # minutes each, not the API's per-statement limit, inside this request's transaction only.
    await session.execute(text("SET LOCAL statement_timeout = '300s'"))
    parsed: dict[str, str] | None = None
    if mapping:
        try:
            parsed = json.loads(mapping)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in parsed.items()
        ):
            raise ApiError(
                "import_mapping", field="mapping", detail="mapping 应为 JSON 对象（字段 → 列名）"
            )
    data = await file.read()
    table = list(read_rows(data, file.filename or ""))

    def progress(phase: str, done: int, total: int) -> None:
        log.info("basedata import", extra={"phase": phase, "done": done, "total": total})

    plan, district = await importer.validate(
        session, grid_id, table, parsed, who, create_houses, progress
    )
    if plan.error_count:
        raise importer.report(plan)
    counts = {"houses_created": 0, "households": len(plan.households), "residents": plan.rows}
    if not dry_run:
        counts = await importer.apply(session, plan, district, grid_id, who, progress)
        await record(
            session,
            "basedata_imported",
            actor=who,
            request=request,
            object_type="grid",
            object_id=grid_id,
            detail={"rows": plan.rows, **counts},
        )
    return {
        "dry_run": dry_run,
        "rows": plan.rows,
        **counts,
        "seconds": round(time.monotonic() - started, 3),
    }


@router.get(
    "/grids/{grid_id}/basedata/export",
    summary="Export the grid's ledger in the import's columns (ID numbers and phones masked)",
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
async def export_ledger(
    grid_id: IdPath,
    session: DbSession,
    who: BasedataReader,
    format_: Annotated[Literal["csv", "xlsx"], Query(alias="format")] = "csv",
) -> Response:
    found, chain, _, _, _ = await object_chain(session, "grid_id", grid_id)
    if not found:
        raise not_found("网格", "Grid", grid_id)
    district = await service.district_of_area(session, chain[0])
    view = list_view(who, chain, grid_id)
    hidden = await residents.sensitive_codes(session, district)
    names = {t.code: t.name for t in await service.tags_of(session, district)}
    rows = []
    for r in await service.ledger_rows(session, grid_id, district):
        tags = [t for t in r.tags if view.sensitive_tags or t not in hidden]
        rows.append(
            [
                r.building,
                r.unit,
                r.floor,
                r.room,
                USE_LABELS.get(r.use, r.use),
                r.number or "",
                r.name if view.name_clear else residents.mask_name(r.name),
                r.id_masked or "",
                r.phone_masked or "",
                RELATION_LABELS.get(r.relation, r.relation),
                "是" if r.registered else "否",
                "是" if r.living else "否",
                "、".join(names.get(t, t) for t in tags),
            ]
        )
    assert len(FIELDS) == 13
    if format_ == "xlsx":
        body, media = (
            to_xlsx(rows),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
    else:
        body, media = to_csv(rows), "text/csv; charset=utf-8"
    return Response(
        body,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="grid-{grid_id}-ledger.{format_}"'},
    )
