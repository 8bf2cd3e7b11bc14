"""/api/v1/categories — the category catalogue (事项清单) phones and consoles pick from, and
/api/v1/routing-rules — which department leads a category in which street. Administrators
edit both; a change applies to new dispatches only (a dispatched case keeps its limits)."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from fastapi import APIRouter, Request, Response, status
from pydantic import Field
from sqlalchemy import text

from app.audit.service import record
from app.auth.policy import CatalogueWriter, RegistryReader
from app.db import DbReader, DbSession
from app.errors import ApiError, not_found
from app.http import ApiRoute
from app.i18n import RequestLang, pick
from app.schemas import RequestModel, ResponseModel, reject_nulls

router = APIRouter(prefix="/api/v1", tags=["categories"], route_class=ApiRoute)


class LimitIn(RequestModel):
    sign_in_hours: float = Field(gt=0, le=240, description="Working hours to sign in")
    handle: int | float = Field(gt=0, le=365)
    handle_unit: Literal["hours", "days"]


class LimitsIn(RequestModel):
    normal: LimitIn
    urgent: LimitIn
    critical: LimitIn


class CategoryIn(RequestModel):
    code: str = Field(pattern=r"^[A-Z]{2}-[0-9]{2,3}$")
    class_code: str = Field(min_length=1, max_length=8)
    name: str = Field(min_length=1, max_length=100)
    name_en: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=500)
    lead_department: str | None = Field(None, description="Department code")
    co_departments: list[str] = Field(default_factory=list, max_length=10)
    limits: LimitsIn
    duplicate_radius_m: int = Field(100, ge=10, le=1000)
    keywords: list[str] = Field(default_factory=list, max_length=30)


class CategoryPatch(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=100)
    name_en: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=500)
    lead_department: str | None = None
    co_departments: list[str] | None = Field(None, max_length=10)
    limits: LimitsIn | None = None
    duplicate_radius_m: int | None = Field(None, ge=10, le=1000)
    keywords: list[str] | None = Field(None, max_length=30)
    active: bool | None = None


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
    active: bool


_SELECT = """
    SELECT c.code, c.name, c.name_en, c.class_code, k.name AS class_name,
           k.name_en AS class_name_en, k.kind, c.lead_department, c.co_departments, c.limits,
           c.duplicate_radius_m, c.keywords, c.description, c.active
    FROM categories c JOIN category_classes k ON k.code = c.class_code
"""


def _out(r: Any, lang: str) -> dict[str, Any]:
    return {
        "code": r.code,
        "name": pick(lang, r.name, r.name_en),  # type: ignore[arg-type]
        "class_code": r.class_code,
        "class_name": pick(lang, r.class_name, r.class_name_en),  # type: ignore[arg-type]
        "kind": r.kind,
        "lead_department": r.lead_department,
        "co_departments": list(r.co_departments),
        "limits": r.limits,
        "duplicate_radius_m": r.duplicate_radius_m,
        "keywords": list(r.keywords),
        "description": r.description,
        "active": r.active,
    }


@router.get("/categories", response_model=list[CategoryOut], summary="The catalogue")
async def list_categories(
    reader: DbReader, who: RegistryReader, lang: RequestLang, include_inactive: bool = False
) -> list[dict[str, Any]]:
    where = "" if include_inactive else "WHERE c.active"
    return [_out(r, lang) for r in await reader.execute(text(f"{_SELECT} {where} ORDER BY c.code"))]


async def _check_departments(session: DbSession, codes: list[str]) -> None:
    if not codes:
        return
    known = set(
        (
            await session.execute(
                text("SELECT code FROM departments WHERE code = ANY(:c)"), {"c": codes}
            )
        ).scalars()
    )
    missing = sorted(set(codes) - known)
    if missing:
        raise ApiError(
            "validation_error",
            field="lead_department",
            detail=f"部门编码不存在：{missing}",
            detail_en=f"Unknown departments: {missing}",
        )


@router.post(
    "/categories",
    response_model=CategoryOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a category",
)
async def create_category(
    body: CategoryIn, request: Request, session: DbSession, who: CatalogueWriter, lang: RequestLang
) -> dict[str, Any]:
    await _check_departments(
        session, [d for d in [body.lead_department, *body.co_departments] if d]
    )
    if not (
        await session.execute(
            text("SELECT 1 FROM category_classes WHERE code = :c"), {"c": body.class_code}
        )
    ).scalar():
        raise ApiError(
            "validation_error", field="class_code", detail="大类不存在", detail_en="Unknown class"
        )
    if (
        await session.execute(text("SELECT 1 FROM categories WHERE code = :c"), {"c": body.code})
    ).scalar():
        raise ApiError(
            "code_exists",
            field="code",
            detail=f"编码已存在：{body.code}",
            detail_en=f"The code is in use: {body.code}",
        )
    await session.execute(
        text(
            """
        INSERT INTO categories (code, class_code, name, name_en, description, lead_department,
                                co_departments, limits, duplicate_radius_m, keywords)
        VALUES (:code, :class_code, :name, :name_en, :description, :lead_department,
                :co_departments, CAST(:limits AS jsonb), :duplicate_radius_m, :keywords)
        """
        ),
        {
            **body.model_dump(exclude={"limits"}),
            "limits": orjson.dumps(body.limits.model_dump()).decode(),
        },
    )
    await record(
        session,
        "category_created",
        actor=who,
        request=request,
        object_type="category",
        object_id=body.code,
        detail=body.model_dump(),
    )
    await session.commit()
    row = (await session.execute(text(f"{_SELECT} WHERE c.code = :c"), {"c": body.code})).one()
    return _out(row, lang)


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
    before = (
        await session.execute(text(f"{_SELECT} WHERE c.code = :c FOR UPDATE OF c"), {"c": code})
    ).first()
    if before is None:
        raise not_found("事项类别", "Category", code)
    reject_nulls(body, "name", "name_en", "limits", "active")
    changes = body.model_dump(exclude_unset=True)
    deps = [
        d for d in [changes.get("lead_department"), *(changes.get("co_departments") or [])] if d
    ]
    await _check_departments(session, deps)
    if "limits" in changes:
        changes["limits"] = orjson.dumps(changes["limits"]).decode()
    if changes:
        sets = ", ".join(
            f"{k} = CAST(:{k} AS jsonb)" if k == "limits" else f"{k} = :{k}" for k in changes
        )
        await session.execute(
            text(f"UPDATE categories SET {sets}, updated_at = now() WHERE code = :code"),
            {**changes, "code": code},
        )
        await record(
            session,
            "category_updated",
            actor=who,
            request=request,
            object_type="category",
            object_id=code,
            detail={"before": _out(before, "zh"), "after": body.model_dump(exclude_unset=True)},
        )
    await session.commit()
    row = (await session.execute(text(f"{_SELECT} WHERE c.code = :c"), {"c": code})).one()
    return _out(row, lang)


class RuleIn(RequestModel):
    category_code: str
    street_id: int | None = Field(None, description="Only in this street (a local agency)")
    department_id: int


class RuleOut(RuleIn, ResponseModel):  # type: ignore[misc]
    id: int


@router.get("/routing-rules", response_model=list[RuleOut], summary="Routing rules")
async def list_rules(session: DbSession, who: RegistryReader) -> list[dict[str, Any]]:
    rows = await session.execute(
        text("SELECT id, category_code, street_id, department_id FROM routing_rules ORDER BY id")
    )
    return [dict(r._mapping) for r in rows]


@router.post(
    "/routing-rules",
    response_model=RuleOut,
    status_code=status.HTTP_201_CREATED,
    summary="Route a category (in a street) to a department",
)
async def create_rule(
    body: RuleIn, request: Request, session: DbSession, who: CatalogueWriter
) -> dict[str, Any]:
    ok = (
        await session.execute(
            text(
                """
        SELECT EXISTS (SELECT 1 FROM categories WHERE code = :c)
           AND EXISTS (SELECT 1 FROM departments WHERE id = :d)
           AND (CAST(:s AS bigint) IS NULL
                OR EXISTS (SELECT 1 FROM areas WHERE id = :s AND level = 'street'))
        """
            ),
            {"c": body.category_code, "d": body.department_id, "s": body.street_id},
        )
    ).scalar()
    if not ok:
        raise ApiError(
            "validation_error",
            field="category_code",
            detail="类别、部门或街道不存在",
            detail_en="Unknown category, department or street",
        )
    rid = (
        await session.execute(
            text(
                "INSERT INTO routing_rules (category_code, street_id, department_id) "
                "VALUES (:c, :s, :d) RETURNING id"
            ),
            {"c": body.category_code, "s": body.street_id, "d": body.department_id},
        )
    ).scalar_one()
    await record(
        session,
        "routing_rule_created",
        actor=who,
        request=request,
        object_type="routing_rule",
        object_id=rid,
        detail=body.model_dump(),
    )
    await session.commit()
    return {"id": rid, **body.model_dump()}


@router.delete(
    "/routing-rules/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a routing rule",
)
async def delete_rule(
    rule_id: int, request: Request, session: DbSession, who: CatalogueWriter
) -> Response:
    gone = (
        await session.execute(
            text("DELETE FROM routing_rules WHERE id = :id RETURNING id"), {"id": rule_id}
        )
    ).scalar()
    if gone is None:
        raise not_found("派遣规则", "Routing rule", rule_id)
    await record(
        session,
        "routing_rule_deleted",
        actor=who,
        request=request,
        object_type="routing_rule",
        object_id=rule_id,
    )
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
