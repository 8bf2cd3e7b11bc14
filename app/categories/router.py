"""/api/v1/categories — the category catalogue (事项清单) phones and consoles pick from, and
/api/v1/routing-rules — which department leads a category in which street. Administrators
edit both; a change applies to new dispatches only (a dispatched case keeps its limits)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from app.auth.policy import CatalogueWriter, RegistryReader
from app.categories import service
from app.categories.schemas import CategoryIn, CategoryOut, CategoryPatch, RuleIn, RuleOut
from app.db import DbReader, DbSession
from app.http import ApiRoute
from app.i18n import RequestLang
from app.schemas import IdPath

router = APIRouter(prefix="/api/v1", tags=["categories"], route_class=ApiRoute)


@router.get("/categories", response_model=list[CategoryOut], summary="The catalogue")
async def list_categories(
    reader: DbReader, who: RegistryReader, lang: RequestLang, include_inactive: bool = False
) -> list[dict[str, Any]]:
    return await service.list_categories(reader, lang, include_inactive)


@router.post(
    "/categories",
    response_model=CategoryOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a category",
)
async def create_category(
    body: CategoryIn, request: Request, session: DbSession, who: CatalogueWriter, lang: RequestLang
) -> dict[str, Any]:
    return await service.create_category(session, body, who, request, lang)


@router.patch(
    "/categories/{code}",
    response_model=CategoryOut,
    summary="Change a category (new dispatches only; dispatched cases keep limits)",
)
async def update_category(
    code: str,
    body: CategoryPatch,
    request: Request,
    session: DbSession,
    who: CatalogueWriter,
    lang: RequestLang,
) -> dict[str, Any]:
    return await service.update_category(session, code, body, who, request, lang)


@router.get("/routing-rules", response_model=list[RuleOut], summary="Routing rules")
async def list_rules(session: DbSession, who: RegistryReader) -> list[dict[str, Any]]:
    return await service.list_rules(session)


@router.post(
    "/routing-rules",
    response_model=RuleOut,
    status_code=status.HTTP_201_CREATED,
    summary="Route a category (in a street) to a department",
)
async def create_rule(
    body: RuleIn, request: Request, session: DbSession, who: CatalogueWriter
) -> dict[str, Any]:
    return await service.create_rule(session, body, who, request)


@router.delete(
    "/routing-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a routing rule",
)
async def delete_rule(
    rule_id: IdPath, request: Request, session: DbSession, who: CatalogueWriter
) -> Response:
    await service.delete_rule(session, rule_id, who, request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
