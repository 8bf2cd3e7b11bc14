"""The base data in the rest of the work: the households and persons a case names (a department
handling the case then sees them, masked), and a worker's visit plan (households due a visit by
their residents' tags: 独居老人 every 7 days…, from the visits that named the household)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import RULES, Principal
from app.auth.scope import covers, district_of, object_chain
from app.basedata.models import CasePerson
from app.basedata.schemas import CasePersonIn
from app.basedata.service import log_change
from app.errors import ApiError, not_found


async def name_in_case(
    session: AsyncSession, case_id: int, body: CasePersonIn, who: Principal
) -> CasePerson:
    if (body.resident_id is None) == (body.household_id is None):
        raise ApiError(
            "validation_error",
            field="resident_id",
            detail="须给出 resident_id 或 household_id 之一",
            detail_en="Give exactly one of resident_id and household_id",
        )
    district = await district_of(session, case_id)
    if district is None:
        raise not_found("案件", "Case", case_id)
    kind, oid = (
        ("resident_id", body.resident_id)
        if body.resident_id is not None
        else ("household_id", body.household_id)
    )
    assert oid is not None
    found, chain, grid, _, _ = await object_chain(session, kind, oid)
    same = (
        await session.execute(
            text(
                "SELECT 1 FROM residents WHERE id = :id AND district_id = :d"
                if kind == "resident_id"
                else "SELECT 1 FROM households WHERE id = :id AND district_id = :d"
            ),
            {"id": oid, "d": district},
        )
    ).scalar()
    if not found or not same or not covers(who, RULES["basedata:write"], chain, grid):
        raise ApiError(
            "validation_error",
            field=kind,
            detail="人员或户不存在、不在您的网格内或不在案件所在区",
            detail_en="No such person or household in your grids and the case's district",
        )
    link = CasePerson(
        district_id=district,
        case_id=case_id,
        resident_id=body.resident_id,
        household_id=body.household_id,
        created_by=who.user_id,
    )
    session.add(link)
    await session.flush()
    await log_change(session, district, kind[:-3], oid, "named_in_case", who, {"case": case_id})
    return link


async def case_persons(session: AsyncSession, case_id: int) -> list[Any]:
    district = await district_of(session, case_id)
    return list(
        await session.execute(
            text(
                "SELECT id, case_id, resident_id, household_id FROM case_persons "
                "WHERE case_id = :c AND district_id = :d ORDER BY id"
            ),
            {"c": case_id, "d": district},
        )
    )


_PLAN = text(
    """
    WITH due AS (
        SELECT r.household_id, r.district_id, min(t.visit_every_days) AS every,
               array_agg(DISTINCT t.code ORDER BY t.code) AS tags
        FROM residents r
        JOIN resident_tags t ON t.district_id = r.district_id AND t.code = ANY(r.tags)
             AND t.active AND t.visit_every_days IS NOT NULL AND NOT t.sensitive
        WHERE r.status = 'active' AND r.household_id IS NOT NULL
        GROUP BY r.household_id, r.district_id
    )
    SELECT d.household_id, d.every, d.tags, h.building_id, b.grid_id,
           concat_ws('-', nullif(h.unit, ''), h.room) AS house,
           (SELECT max(v.at) FROM visits v WHERE v.district_id = d.district_id
            AND v.household_id = d.household_id) AS last_visit_at
    FROM due d
    JOIN households hh ON hh.id = d.household_id AND hh.district_id = d.district_id
         AND hh.ended_at IS NULL
    JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
    JOIN buildings b ON b.id = h.building_id
    WHERE b.grid_id = ANY(:grids)
    ORDER BY b.grid_id, h.building_id, house
    """
)


async def visit_plan(session: AsyncSession, who: Principal, now: Any) -> list[dict[str, Any]]:
    """The households of the caller's grids due a visit (sensitive tags are not planned here:
    their visits are kept by the roles that see them)."""
    grids = sorted(who.grid_roots(RULES["basedata:write"]))
    if not grids:
        return []
    out = []
    for r in await session.execute(_PLAN, {"grids": grids}):
        last = r.last_visit_at
        due = last is None or (now - last).total_seconds() >= r.every * 86400
        out.append(
            {
                "household_id": r.household_id,
                "house": r.house,
                "building_id": r.building_id,
                "grid_id": r.grid_id,
                "tags": list(r.tags),
                "every_days": r.every,
                "last_visit_at": last,
                "due": due,
            }
        )
    out.sort(key=lambda x: (not x["due"], x["grid_id"], x["building_id"], x["house"]))
    return out
