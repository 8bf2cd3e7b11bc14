"""The district's admission list (事务准入清单): its versions, and the figures of what departments
tried to push down outside it. `{area_id}` may name the district or any area in it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from app.admission import service
from app.admission.schemas import (
    AdmissionFiguresOut,
    AdmissionListIn,
    AdmissionListOut,
    AdmissionVersionOut,
)
from app.auth.policy import AdmissionManager, AdmissionReader
from app.db import DbSession
from app.errors import ApiError
from app.http import ApiRoute
from app.i18n import request_lang
from app.schemas import SHANGHAI, IdPath, TimeQuery

router = APIRouter(
    prefix="/api/v1/areas/{area_id}/admission-list",
    tags=["admission list"],
    route_class=ApiRoute,
    dependencies=[Depends(request_lang)],
)


@router.get(
    "",
    response_model=AdmissionListOut | None,
    summary="The list in force (or `version=`): the kinds of work departments may push down",
)
async def current(
    area_id: IdPath,
    session: DbSession,
    who: AdmissionReader,
    version: Annotated[int | None, Query(ge=1, le=100_000)] = None,
) -> Any:
    district = await service.district_of(session, area_id)
    if version is not None:
        return await service.as_out(session, await service.version_of(session, district, version))
    lst = await service.in_force(session, district, datetime.now(SHANGHAI).date())
    return None if lst is None else await service.as_out(session, lst)


@router.get(
    "/versions", response_model=list[AdmissionVersionOut], summary="Every version, newest first"
)
async def versions(area_id: IdPath, session: DbSession, who: AdmissionReader) -> Any:
    return await service.versions(session, await service.district_of(session, area_id))


@router.post(
    "",
    response_model=AdmissionListOut,
    status_code=status.HTTP_201_CREATED,
    summary="Publish a new version (in force from `effective_from`); old versions stay",
)
async def publish(
    area_id: IdPath, body: AdmissionListIn, session: DbSession, who: AdmissionManager
) -> Any:
    district = await service.district_of(session, area_id)
    return await service.as_out(session, await service.publish(session, district, who, body))


@router.get(
    "/figures",
    response_model=AdmissionFiguresOut,
    summary="Per department: tasks pushed down to workers, how many outside the list (清单外), "
    "approved, refused, pending (default: the last 365 days); a department sees its own",
)
async def figures(
    area_id: IdPath,
    session: DbSession,
    who: AdmissionReader,
    since: TimeQuery = None,
    until: TimeQuery = None,
) -> Any:
    district = await service.district_of(session, area_id)
    until = until or datetime.now(UTC)
    try:
        since = since or until - timedelta(days=365)
    except OverflowError:
        since = until
    if since >= until:
        raise ApiError(
            "validation_error",
            detail="since 须早于 until",
            detail_en="since must be before until",
            field="since",
        )
    depts = None
    if not who.is_admin and all(p.role == "department" for p in who.posts):
        depts = sorted({p.department_id for p in who.posts if p.department_id})
    rows = await service.figures(session, district, since, until, depts)
    return {"district_id": district, "since": since, "until": until, "departments": rows}
