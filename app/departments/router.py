"""/api/v1/departments — the department registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.areas.models import Area
from app.audit.service import record
from app.auth.policy import DepartmentWriter, RegistryReader
from app.db import DbSession
from app.departments.models import Department
from app.departments.schemas import DepartmentCreate, DepartmentOut, DepartmentUpdate
from app.errors import ApiError, not_found
from app.http import ApiRoute
from app.schemas import reject_nulls

router = APIRouter(prefix="/api/v1/departments", tags=["departments"], route_class=ApiRoute)


async def _get(session: DbSession, department_id: int) -> Department:
    d = await session.get(Department, department_id)
    if d is None:
        raise not_found("部门", "Department", department_id)
    return d


@router.get("", response_model=list[DepartmentOut], summary="List departments")
async def list_departments(session: DbSession, who: RegistryReader) -> Any:
    return (await session.execute(select(Department).order_by(Department.code))).scalars().all()


@router.post(
    "",
    response_model=DepartmentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a department",
)
async def create_department(
    body: DepartmentCreate,
    request: Request,
    session: DbSession,
    who: DepartmentWriter,
    response: Response,
) -> Any:
    if body.district_id is not None:
        area = await session.get(Area, body.district_id)
        if area is None or area.level != "district":
            raise ApiError(
                "unknown_parent",
                field="district_id",
                detail="district_id 不是区县",
                detail_en="district_id is not a district",
            )
    d = Department(**body.model_dump())
    session.add(d)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ApiError(
            "code_exists",
            field="code",
            detail=f"部门编码已存在：{body.code}",
            detail_en=f"The code is in use: {body.code}",
        ) from None
    await record(
        session,
        "department_created",
        actor=who,
        request=request,
        object_type="department",
        object_id=d.id,
        detail=body.model_dump(),
    )
    await session.commit()
    response.headers["Location"] = f"/api/v1/departments/{d.id}"
    return await _get(session, d.id)


@router.get("/{department_id}", response_model=DepartmentOut, summary="Get a department")
async def get_department(department_id: int, session: DbSession, who: RegistryReader) -> Any:
    return await _get(session, department_id)


@router.patch("/{department_id}", response_model=DepartmentOut, summary="Change a department")
async def update_department(
    department_id: int,
    body: DepartmentUpdate,
    request: Request,
    session: DbSession,
    who: DepartmentWriter,
) -> Any:
    d = await _get(session, department_id)
    reject_nulls(body, "name")
    changes = body.model_dump(exclude_unset=True)
    before = {k: getattr(d, k) for k in changes}
    for k, v in changes.items():
        setattr(d, k, v)
    d.updated_at = func.now()
    await record(
        session,
        "department_updated",
        actor=who,
        request=request,
        object_type="department",
        object_id=d.id,
        detail={"before": before, "after": changes},
    )
    await session.commit()
    await session.refresh(d)
    return d
