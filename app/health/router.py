"""/healthz (the process is alive) and /readyz (the database is usable)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from app.auth.policy import Public
from app.db import db
from app.errors import ApiError
from app.grids import lookup_index
from app.http import ApiRoute
from app.migrate import head_revision

router = APIRouter(tags=["health"], route_class=ApiRoute)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(_: Public) -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: the primary database answers a PL/pgSQL call, migrations at head, "
    "PostGIS present; the read replica's lag when one is configured",
    responses={503: {"description": "Not ready; the problem says why"}},
)
async def readyz(_: Public) -> dict[str, Any]:
    head = head_revision()
    try:
        async with db.engine.connect() as conn:
            rev = (
                await conn.execute(
                    text(
                        "SELECT string_agg(version_num, ',' ORDER BY version_num) FROM alembic_version"
                    )
                )
            ).scalar()
            # ops_ready() is PL/pgSQL (migration 0019): the language every trigger needs runs
            ready: dict[str, Any] = {}
            if rev == head:
                ready = (await conn.execute(text("SELECT ops_ready()"))).scalar() or {}
    except Exception as e:
        raise ApiError(
            "database_unavailable",
            detail=f"数据库不可用：{type(e).__name__}",
            detail_en=f"Database unavailable: {type(e).__name__}",
            headers={"Retry-After": "5"},
        ) from None
    postgis = ready.get("postgis")
    if rev != head or not postgis or ready.get("standby"):
        raise ApiError(
            "database_unavailable",
            status=503,
            detail=f"数据库未就绪：迁移版本 {rev}（应为 {head}），PostGIS {postgis or '缺失'}"
            + ("，连接的是只读备库" if ready.get("standby") else ""),
            detail_en=f"Database not ready: revision {rev} (want {head}), "
            f"PostGIS {postgis or 'missing'}"
            + (", connected to a standby" if ready.get("standby") else ""),
            headers={"Retry-After": "5"},
        )
    out: dict[str, Any] = {"status": "ready", "revision": rev, "postgis": postgis}
    # The lookup's in-process index (app.grids.lookup_index): reported, never deciding readiness
    # (without it the statement answers).
    index = lookup_index.current
    out["lookup_index"] = {"grids": None if index is None else len(index)}
    if db.replica is not None:
        # the replica does not decide readiness (reads fall back to the primary): it is reported
        used = await db.read_engine() is not None
        out["replica"] = {"in_use": used, "lag_seconds": db.replica_lag}
    return out
