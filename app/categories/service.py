"""The category catalogue and the routing rules: reads, checked writes, each write audited."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit.service import record
from app.auth.policy import Principal
from app.categories.schemas import CategoryIn, CategoryPatch, RuleIn
from app.errors import ApiError, not_found
from app.i18n import Lang, pick
from app.schemas import reject_nulls

_SELECT = """
    SELECT c.code, c.name, c.name_en, c.class_code, k.name AS class_name,
           k.name_en AS class_name_en, k.kind, c.lead_department, c.co_departments, c.limits,
           c.duplicate_radius_m, c.keywords, c.description, c.active
    FROM categories c JOIN category_classes k ON k.code = c.class_code
"""
_ALL = text(_SELECT + " ORDER BY c.code")
_ACTIVE = text(_SELECT + " WHERE c.active ORDER BY c.code")
_ONE = text(_SELECT + " WHERE c.code = :c")
_ONE_FOR_UPDATE = text(_SELECT + " WHERE c.code = :c FOR UPDATE OF c")


def _out(r: Any, lang: Lang) -> dict[str, Any]:
    return {
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
        "active": r.active,
    }


async def list_categories(
    session: AsyncSession | AsyncConnection, lang: Lang, include_inactive: bool = False
) -> list[dict[str, Any]]:
    rows = await session.execute(_ALL if include_inactive else _ACTIVE)
    return [_out(r, lang) for r in rows]


async def _category(session: AsyncSession, code: str, lang: Lang) -> dict[str, Any]:
    return _out((await session.execute(_ONE, {"c": code})).one(), lang)


async def _check_departments(session: AsyncSession, codes: list[str]) -> None:
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


async def create_category(
    session: AsyncSession, body: CategoryIn, who: Principal, request: Request | None, lang: Lang
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
    await session.flush()
    return await _category(session, body.code, lang)


_COLUMNS = {
    "name",
    "name_en",
    "description",
    "lead_department",
    "co_departments",
    "limits",
    "duplicate_radius_m",
    "keywords",
    "active",
}


async def update_category(
    session: AsyncSession,
    code: str,
    body: CategoryPatch,
    who: Principal,
    request: Request | None,
    lang: Lang,
) -> dict[str, Any]:
    before = (await session.execute(_ONE_FOR_UPDATE, {"c": code})).first()
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
        assert set(changes) <= _COLUMNS  # column names come from the schema, never from input
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
    await session.flush()
    return await _category(session, code, lang)


# --- routing rules ----------------------------------------------------------------------------


async def list_rules(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        text("SELECT id, category_code, street_id, department_id FROM routing_rules ORDER BY id")
    )
    return [dict(r._mapping) for r in rows]


async def create_rule(
    session: AsyncSession, body: RuleIn, who: Principal, request: Request | None
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
    await session.flush()
    return {"id": rid, **body.model_dump()}


async def delete_rule(
    session: AsyncSession, rule_id: int, who: Principal, request: Request | None
) -> None:
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
    await session.flush()
