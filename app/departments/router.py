"""/api/v1/departments — the department registry."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from app.auth.policy import DepartmentWriter, RegistryReader
from app.db import DbSession
from app.departments import service
from app.departments.schemas import DepartmentCreate, DepartmentOut, DepartmentUpdate
from app.http import ApiRoute
from app.schemas import IdPath

router = APIRouter(prefix="/api/v1/departments", tags=["departments"], route_class=ApiRoute)


@router.get("", response_model=list[DepartmentOut], summary="List departments")
async def list_departments(session: DbSession, who: RegistryReader) -> Any:
    return await service.list_all(session)


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
    d = await service.create(session, body, who, request)
    response.headers["Location"] = f"/api/v1/departments/{d.id}"
    return d


@router.get("/{department_id}", response_model=DepartmentOut, summary="Get a department")
async def get_department(department_id: IdPath, session: DbSession, who: RegistryReader) -> Any:
    return await service.get(session, department_id)


@router.patch("/{department_id}", response_model=DepartmentOut, summary="Change a department")
async def update_department(
    department_id: IdPath,
    body: DepartmentUpdate,
    request: Request,
    session: DbSession,
    who: DepartmentWriter,
) -> Any:
    return await service.update(session, department_id, body, who, request)
