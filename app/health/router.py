"""/healthz (the process is alive) and /readyz (the database is usable)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from app.auth.policy import Public
from app.db import db
from app.errors import ApiError
from app.http import ApiRoute
from app.migrate import head_revision

router = APIRouter(tags=["health"], route_class=ApiRoute)


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz(_: Public) -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: database reachable, migrations at head, PostGIS present",
    responses={503: {"description": "Not ready; the problem says why"}},
)
async def readyz(_: Public) -> dict[str, Any]:
    try:
        async with db.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT (SELECT string_agg(version_num, ',' ORDER BY version_num)"
                        "        FROM alembic_version) AS rev,"
                        " (SELECT extversion FROM pg_extension WHERE extname = 'postgis') AS postgis"
                    )
                )
            ).one()
    except Exception as e:
        raise ApiError(
            "database_unavailable",
            detail=f"数据库不可用：{type(e).__name__}",
            detail_en=f"Database unavailable: {type(e).__name__}",
            headers={"Retry-After": "5"},
        ) from None
    head = head_revision()
    if row.rev != head or not row.postgis:
        raise ApiError(
            "database_unavailable",
            status=503,
            detail=f"数据库未就绪：迁移版本 {row.rev}（应为 {head}），PostGIS {row.postgis or '缺失'}",
            detail_en=f"Database not ready: revision {row.rev} (want {head}), "
            f"PostGIS {row.postgis or 'missing'}",
        )
    return {"status": "ready", "revision": row.rev, "postgis": row.postgis}
