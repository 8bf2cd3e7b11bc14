"""The admission list (事务准入清单): versions, the check a department's task goes through, and
the figures of what departments tried to push down outside it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.admission.models import AdmissionItem, AdmissionList
from app.admission.schemas import AdmissionListIn
from app.auth.policy import Principal
from app.errors import ApiError, FieldError, not_found

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "invalid_admission_list": (422, "准入清单内容不合规", "The admission list is not valid"),
}

_DISTRICT = text(
    """
    WITH RECURSIVE up(id, parent_id, level) AS (
        SELECT id, parent_id, level FROM areas WHERE id = :id
        UNION ALL SELECT a.id, a.parent_id, a.level FROM areas a JOIN up ON a.id = up.parent_id
    ) SELECT (SELECT id FROM up WHERE level = 'district' LIMIT 1) AS district,
             EXISTS (SELECT 1 FROM up) AS found
    """
)


async def district_of(session: AsyncSession, area_id: int) -> int:
    """The district an area lies in (the area itself when it is one)."""
    row = (await session.execute(_DISTRICT, {"id": area_id})).one()
    if not row.found:
        raise not_found("区域", "Area", area_id)
    if row.district is None:
        raise ApiError(
            "validation_error",
            detail="该区域不属于任何区县",
            detail_en="The area is in no district",
            field="area_id",
        )
    return int(row.district)


def _bad(field: str, zh: str, en: str) -> ApiError:
    return ApiError(
        "invalid_admission_list",
        detail=zh,
        detail_en=en,
        field=field,
        errors=[FieldError(field, "invalid_admission_list", zh, en)],
    )


async def publish(
    session: AsyncSession, district_id: int, who: Principal, body: AdmissionListIn
) -> AdmissionList:
    """A new version of the district's list (versions are never changed)."""
    seen: set[str] = set()
    codes = sorted({c for it in body.items for c in it.department_codes})
    known = {
        r.code: r.id
        for r in await session.execute(
            text(
                "SELECT id, code FROM departments WHERE code = ANY(:codes) "
                "AND (district_id IS NULL OR district_id = :district)"
            ),
            {"codes": codes, "district": district_id},
        )
    }
    for i, it in enumerate(body.items):
        if it.code in seen:
            raise _bad(
                f"items[{i}].code", f"事项编码重复：{it.code}", f"Duplicate item code: {it.code}"
            )
        seen.add(it.code)
        for j, c in enumerate(it.department_codes):
            if c not in known:
                raise _bad(
                    f"items[{i}].department_codes[{j}]",
                    f"部门不存在：{c}",
                    f"Unknown department: {c}",
                )
    # One version at a time per district: the row lock of the district orders the publishers.
    await session.execute(text("SELECT id FROM areas WHERE id = :d FOR UPDATE"), {"d": district_id})
    version = (
        await session.execute(
            text(
                "SELECT coalesce(max(version), 0) + 1 FROM admission_lists WHERE district_id = :d"
            ),
            {"d": district_id},
        )
    ).scalar_one()
    lst = AdmissionList(
        district_id=district_id,
        version=version,
        title=body.title,
        effective_from=body.effective_from,
        note=body.note,
        created_by=who.user_id,
    )
    session.add(lst)
    await session.flush()
    for it in body.items:
        session.add(
            AdmissionItem(
                district_id=district_id,
                list_id=lst.id,
                code=it.code,
                name=it.name,
                legal_basis=it.legal_basis,
                department_ids=sorted({known[c] for c in it.department_codes}),
                task_kinds=sorted(set(it.task_kinds)),
            )
        )
    await session.flush()
    return lst


async def in_force(session: AsyncSession, district_id: int, on: date) -> AdmissionList | None:
    """The version in force on a day: the newest whose date has come."""
    return (
        await session.execute(
            select(AdmissionList)
            .where(AdmissionList.district_id == district_id, AdmissionList.effective_from <= on)
            .order_by(AdmissionList.version.desc())
            .limit(1)
        )
    ).scalar_one_or_none()


async def version_of(session: AsyncSession, district_id: int, version: int) -> AdmissionList:
    lst = (
        await session.execute(
            select(AdmissionList).where(
                AdmissionList.district_id == district_id, AdmissionList.version == version
            )
        )
    ).scalar_one_or_none()
    if lst is None:
        raise not_found("准入清单版本", "Admission list version", version)
    return lst


async def items_of(session: AsyncSession, lst: AdmissionList) -> list[AdmissionItem]:
    return list(
        (
            await session.execute(
                select(AdmissionItem)
                .where(
                    AdmissionItem.district_id == lst.district_id, AdmissionItem.list_id == lst.id
                )
                .order_by(AdmissionItem.code)
            )
        ).scalars()
    )


async def as_out(session: AsyncSession, lst: AdmissionList) -> dict[str, Any]:
    return {
        **{c: getattr(lst, c) for c in ("id", "district_id", "version", "title", "note")},
        "effective_from": lst.effective_from,
        "created_at": lst.created_at,
        "items": await items_of(session, lst),
    }


async def versions(session: AsyncSession, district_id: int) -> list[Any]:
    return list(
        await session.execute(
            text(
                """
                SELECT l.id, l.version, l.title, l.effective_from, l.created_at,
                       (SELECT count(*) FROM admission_items i
                        WHERE i.district_id = l.district_id AND i.list_id = l.id) AS items
                FROM admission_lists l WHERE l.district_id = :d ORDER BY l.version DESC
                """
            ),
            {"d": district_id},
        )
    )


_ADMITTED = text(
    """
    SELECT i.id FROM admission_items i
    WHERE i.district_id = :district AND i.list_id = :list AND i.code = :code
      AND (cardinality(i.department_ids) = 0 OR :dept = ANY(i.department_ids))
      AND (cardinality(i.task_kinds) = 0 OR :kind = ANY(i.task_kinds))
    """
)


async def admitted(
    session: AsyncSession,
    district_id: int,
    department_id: int,
    matter_code: str | None,
    kind: str,
    on: date,
) -> int | None:
    """The item of the list in force that lets this department push this kind of work down,
    or None (outside the list: the task waits for the street)."""
    if not matter_code:
        return None
    lst = await in_force(session, district_id, on)
    if lst is None:
        return None
    found = (
        await session.execute(
            _ADMITTED,
            {
                "district": district_id,
                "list": lst.id,
                "code": matter_code,
                "dept": department_id,
                "kind": kind,
            },
        )
    ).scalar()
    return int(found) if found is not None else None


_FIGURES = text(
    """
    SELECT t.department_id, d.name AS department,
           count(*) AS pushed,
           count(*) FILTER (WHERE NOT t.outside_list) AS inside_list,
           count(*) FILTER (WHERE t.outside_list) AS outside_list,
           count(*) FILTER (WHERE t.outside_list AND t.decided_at IS NOT NULL
                            AND t.state <> 'refused') AS approved,
           count(*) FILTER (WHERE t.outside_list AND t.state = 'refused') AS refused,
           count(*) FILTER (WHERE t.outside_list AND t.state = 'pending_approval') AS pending
    FROM worker_tasks t JOIN departments d ON d.id = t.department_id
    WHERE t.district_id = :district AND t.department_id IS NOT NULL
      AND t.created_at >= :since AND t.created_at < :until
      AND (CAST(:all AS boolean) OR t.department_id = ANY(CAST(:depts AS bigint[])))
    GROUP BY t.department_id, d.name
    ORDER BY count(*) FILTER (WHERE t.outside_list) DESC, t.department_id
    """
)


async def figures(
    session: AsyncSession,
    district_id: int,
    since: datetime,
    until: datetime,
    departments: list[int] | None,
) -> list[dict[str, Any]]:
    """Per department: what it pushed down to workers, and how much of it outside the list.
    `departments`: only these (a department reads its own), None: all."""
    rows = await session.execute(
        _FIGURES,
        {
            "district": district_id,
            "since": since,
            "until": until,
            "all": departments is None,
            "depts": departments or [],
        },
    )
    return [
        {**r._mapping, "outside_share": round(r.outside_list / r.pushed, 4) if r.pushed else None}
        for r in rows
    ]
