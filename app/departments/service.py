"""The department registry: reads and audited writes."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas.models import Area
from app.audit.service import record
from app.auth.policy import Principal
from app.departments.models import Department
from app.departments.schemas import DepartmentCreate, DepartmentUpdate
from app.errors import ApiError, not_found
from app.schemas import reject_nulls


async def get(session: AsyncSession, department_id: int) -> Department:
    d = await session.get(Department, department_id)
    if d is None:
        raise not_found("部门", "Department", department_id)
    return d


async def exists(session: AsyncSession, department_id: int) -> bool:
    return await session.get(Department, department_id) is not None


async def list_all(session: AsyncSession) -> Sequence[Department]:
    return (await session.execute(select(Department).order_by(Department.code))).scalars().all()


async def create(
    session: AsyncSession, body: DepartmentCreate, who: Principal, request: Request | None
) -> Department:
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
    await session.flush()
    return await get(session, d.id)


async def update(
    session: AsyncSession,
    department_id: int,
    body: DepartmentUpdate,
    who: Principal,
    request: Request | None,
) -> Department:
    d = await get(session, department_id)
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
    await session.flush()
    await session.refresh(d)
    return d
