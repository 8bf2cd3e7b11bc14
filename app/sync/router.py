"""/api/v1/sync — a phone catches up on everything in its scope that changed since its cursor.

The contract (docs/intake.md, "Sync contract"): changes are ordered by the transaction that made them, and only
changes from transactions that have finished are handed out, so a change committed late by a
slow transaction is never skipped. A case that changed several times comes once, as it is now.
A case that left the caller's scope (placed into another grid) comes back in `removed`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import Field
from sqlalchemy import text

from app.auth import scope
from app.auth.policy import SignedIn
from app.cases import service as cases
from app.cases.schemas import CaseOut
from app.config import get_settings
from app.db import HotReader
from app.errors import ApiError
from app.geometry import CRS
from app.http import ApiRoute
from app.i18n import RequestLang
from app.loop.service import allowed_for
from app.responses import FastJSON
from app.schemas import LimitQuery, ResponseModel

router = APIRouter(prefix="/api/v1", tags=["sync"], route_class=ApiRoute)


class SyncTask(ResponseModel):
    case_id: int
    status: str
    actions: list[str] = Field(description="What you may do to it now")


class SyncOut(ResponseModel):
    cursor: str = Field(description="Send back as `cursor` next time")
    has_more: bool = Field(description="Call again at once with the new cursor")
    cases: list[CaseOut] = Field(description="Cases in your scope changed since the cursor")
    removed: list[int] = Field(description="Cases that left your scope: drop them")
    tasks: list[SyncTask] = Field(
        description="Of the changed cases, those waiting for you (e.g. verify on site)"
    )


# The first transaction number not yet finished everywhere (migration 0032), read in a statement
# of its own before the changes: on Citus it must run on the coordinator, which numbers the
# transactions, not on each shard. Anything below it has committed on every node, so the next
# statement sees it.
_HORIZON = text("SELECT sync_horizon()")


@router.get("/sync", response_model=SyncOut, summary="Changes in your scope since a cursor")
async def sync(
    reader: HotReader,
    who: SignedIn,
    lang: RequestLang,
    cursor: Annotated[str | None, Query(max_length=200, description="Omit the first time")] = None,
    limit: LimitQuery = None,
    crs: Annotated[CRS, Query(description="CRS of coordinates in the answer")] = CRS.WGS84,
) -> Response:
    s = get_settings()
    limit = min(limit or 200, s.sync_page_max)
    xid, last_id = 0, 0
    if cursor:
        a, b = cases.decode_cursor(cursor, 2)
        try:
            xid, last_id = int(a), int(b)
        except ValueError:
            xid = -1
        if xid < 0 or last_id < 0:
            raise ApiError(
                "validation_error", field="cursor", detail="cursor 无效", detail_en="Invalid cursor"
            )
    mine = await scope.resolve(reader, who)
    frag = mine.sql("c")
    vis, params = frag.sql, frag.binds
    grids = sorted(mine.grids)
    horizon = (await reader.execute(_HORIZON)).scalar_one()
    sql = (
        f"SELECT {cases.CASE_COLUMNS}, ({vis}) AS visible "
        f"{cases.CASE_FROM} "
        "WHERE (c.change_seq, c.id) > (:xid, :last_id) AND c.change_seq < :horizon "
        f"AND (({vis}) OR c.prev_grid_id = ANY(:my_grids)) "
        "ORDER BY c.change_seq, c.id LIMIT :limit"
    )
    rows = list(
        (
            await reader.execute(
                text(sql),
                {
                    **params,
                    "xid": xid,
                    "last_id": last_id,
                    "horizon": horizon,
                    "my_grids": grids,
                    "limit": limit + 1,
                },
            )
        ).all()
    )
    has_more = len(rows) > limit
    rows = rows[:limit]
    if has_more:
        nxt = cases.encode_cursor(rows[-1].change_seq, rows[-1].id)
    else:
        # Everything below the horizon has been handed out; next time start there.
        nxt = cases.encode_cursor(max(horizon, xid), 0 if horizon > xid else last_id)
    masked = not cases.sees_pii(who)
    actions = await allowed_for(reader, [r.id for r in rows if r.visible], who)
    out: dict[str, Any] = {
        "cursor": nxt,
        "has_more": has_more,
        "cases": [cases.case_out(r, lang, crs, masked_text=masked) for r in rows if r.visible],
        "removed": [r.id for r in rows if not r.visible],
        "tasks": [
            {"case_id": r.id, "status": r.status, "actions": acts}
            for r in rows
            if r.visible and (acts := actions.get(r.id))
        ],
    }
    return FastJSON(out)
