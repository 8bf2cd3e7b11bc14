"""/api/v1/categories — the category catalogue (事项清单) phones and consoles pick from."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import text

from app.auth.policy import RegistryReader
from app.db import DbReader
from app.http import ApiRoute
from app.i18n import RequestLang, pick
from app.schemas import ResponseModel

router = APIRouter(prefix="/api/v1/categories", tags=["categories"], route_class=ApiRoute)


class CategoryOut(ResponseModel):
    code: str
    name: str
    class_code: str
    class_name: str
    kind: str
    lead_department: str | None
    co_departments: list[str]
    limits: dict[str, Any]
    duplicate_radius_m: int
    keywords: list[str]
    description: str


@router.get("", response_model=list[CategoryOut], summary="The active categories")
async def list_categories(
    reader: DbReader, who: RegistryReader, lang: RequestLang
) -> list[dict[str, Any]]:
    rows = await reader.execute(
        text(
            """
        SELECT c.code, c.name, c.name_en, c.class_code, k.name AS class_name,
               k.name_en AS class_name_en, k.kind, c.lead_department, c.co_departments, c.limits,
               c.duplicate_radius_m, c.keywords, c.description
        FROM categories c JOIN category_classes k ON k.code = c.class_code
        WHERE c.active ORDER BY c.code
        """
        )
    )
    return [
        {
            "code": r.code,
            "name": pick(lang, r.name, r.name_en),
            "class_code": r.class_code,
            "class_name": pick(lang, r.class_name, r.class_name_en),
            "kind": r.kind,
            "lead_department": r.lead_department,
            "co_departments": list(r.co_departments),
            "limits": r.limits,
            "duplicate_radius_m": r.duplicate_radius_m,
            "keywords": list(r.keywords),
            "description": r.description,
        }
        for r in rows
    ]
