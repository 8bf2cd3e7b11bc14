"""Visits (走访) to a building: a purpose from the catalogue (`visit_purposes`, zh/en), an outcome,
and possibly a case raised on the spot through the case intake (`app.cases.intake.insert_case`,
in the same transaction: the visit and its case are stored together or not at all)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.cases import intake
from app.cases.schemas import CaseCreate, LocationIn
from app.db import raw_of
from app.errors import ApiError, not_found
from app.events import outbox
from app.patrols.schemas import VisitIn
from app.patrols.service import _when
from geo.crs import CRS

CATALOGUE: tuple[tuple[str, str, str, int], ...] = (
    ("condolence", "走访慰问", "Caring visit", 10),
    ("safety", "安全检查", "Safety inspection", 20),
    ("policy", "政策宣传", "Policy outreach", 30),
    ("dispute", "矛盾排查", "Dispute screening", 40),
    ("care", "重点人群关爱", "Care for people who need attention", 50),
    ("info", "信息采集", "Base data collection", 60),
    ("fire", "消防检查", "Fire safety check", 70),
    ("shop", "商户走访", "Visit to a shop", 80),
)
"""The default visit purposes (migration 0022 seeds the same; `app.demo` puts back any missing)."""

_COLUMNS = """
    v.id, v.building_id, v.grid_id, v.worker_id, v.patrol_id, v.purpose_code AS purpose,
    CASE WHEN :lang = 'en' THEN vp.name_en ELSE vp.name END AS purpose_name, v.outcome, v.note,
    v.at, v.case_id, v.household_id, v.resident_id
"""


async def purposes(session: AsyncSession, lang: str) -> list[dict[str, str]]:
    rows = await session.execute(
        text(
            "SELECT code, CASE WHEN :lang = 'en' THEN name_en ELSE name END AS name "
            "FROM visit_purposes WHERE active ORDER BY sort, code"
        ),
        {"lang": lang},
    )
    return [{"code": r.code, "name": r.name} for r in rows]


async def get(session: AsyncSession, visit_id: int, lang: str) -> Any:
    row = (
        await session.execute(
            text(
                f"SELECT {_COLUMNS} FROM visits v JOIN visit_purposes vp "
                "ON vp.code = v.purpose_code WHERE v.id = :id"
            ),
            {"id": visit_id, "lang": lang},
        )
    ).first()
    if row is None:
        raise not_found("走访", "Visit", visit_id)
    return row


_BUILDING = text(
    """
    SELECT b.id, b.name, b.grid_id, g.community_id, coalesce(s.parent_id, s.id, c.id) AS district_id,
           ST_X(ST_PointOnSurface(b.geom)) AS lon, ST_Y(ST_PointOnSurface(b.geom)) AS lat
    FROM buildings b JOIN grids g ON g.id = b.grid_id JOIN areas c ON c.id = g.community_id
    LEFT JOIN areas s ON s.id = c.parent_id
    WHERE b.id = :id
    """
)


async def record(
    session: AsyncSession, building_id: int, body: VisitIn, who: Principal, lang: str
) -> tuple[Any, bool]:
    """(the visit, whether it was stored now)."""
    b = (await session.execute(_BUILDING, {"id": building_id})).first()
    if b is None:
        raise not_found("楼栋", "Building", building_id)
    if body.client_id is not None:
        old = (
            await session.execute(
                text(
                    "SELECT id FROM visits WHERE district_id = :d AND worker_id = :w "
                    "AND client_id = :c"
                ),
                {"d": b.district_id, "w": who.user_id, "c": body.client_id},
            )
        ).scalar()
        if old is not None:
            return await get(session, old, lang), False
    known = (
        await session.execute(
            text("SELECT 1 FROM visit_purposes WHERE code = :c AND active"), {"c": body.purpose}
        )
    ).scalar()
    if known is None:
        raise ApiError(
            "unknown_purpose",
            detail=f"走访目的不在目录中：{body.purpose}",
            detail_en=f"Unknown visit purpose: {body.purpose}",
            field="purpose",
        )
    at = _when(body.at)
    household_id = await _named(session, b, body)
    if body.patrol_id is not None:
        mine = (
            await session.execute(
                text("SELECT 1 FROM patrols WHERE id = :p AND worker_id = :w"),
                {"p": body.patrol_id, "w": who.user_id},
            )
        ).scalar()
        if mine is None:
            raise not_found("巡查", "Patrol", body.patrol_id)
    case_id = None
    outcome = body.outcome
    if body.case is not None:
        data = CaseCreate(
            category=body.case.category,
            title=body.case.title,
            description=body.case.description,
            location=LocationIn(lon=b.lon, lat=b.lat, crs=CRS.WGS84),
            building_id=b.id,
            urgency=body.case.urgency,
        )
        async with raw_of(await session.connection()) as raw:
            case, _ = await intake.insert_case(raw, data, who.user_id)
        outbox.queued(session)
        case_id = case.id
        outcome = "case_raised"
    vid = (
        await session.execute(
            text(
                """
                INSERT INTO visits (district_id, community_id, grid_id, building_id, worker_id,
                                    patrol_id, client_id, purpose_code, outcome, note, at, case_id,
                                    household_id, resident_id)
                VALUES (:d, :c, :g, :b, :w, :p, :client, :purpose, :outcome, :note, :at, :case,
                        :hh, :r)
                RETURNING id
                """
            ),
            {
                "d": b.district_id,
                "c": b.community_id,
                "g": b.grid_id,
                "b": b.id,
                "w": who.user_id,
                "p": body.patrol_id,
                "client": body.client_id,
                "purpose": body.purpose,
                "outcome": outcome,
                "note": body.note,
                "at": at,
                "case": case_id,
                "hh": household_id,
                "r": body.resident_id,
            },
        )
    ).scalar_one()
    return await get(session, vid, lang), True


_NAMED = text(
    """
    SELECT hh.id AS household_id, r.id AS resident_id FROM households hh
    JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
    LEFT JOIN residents r ON r.id = coalesce(CAST(:r AS bigint), 0) AND r.district_id = hh.district_id
         AND r.household_id = hh.id
    WHERE h.building_id = :b AND hh.district_id = :d AND h.district_id = :d
      AND (hh.id = CAST(:hh AS bigint) OR (CAST(:hh AS bigint) IS NULL AND r.id IS NOT NULL))
    """
)
"""Only a person named: their household is the one the join finds them in (a subquery beside the
outer join is refused on Citus: "complex joins"); no person named: id 0, which matches none
(`r.id = NULL` would fold the join's condition to false and hide its district from Citus)."""


async def _named(session: AsyncSession, b: Any, body: VisitIn) -> int | None:
    """The household a visit names (base data): it (and the person, if named) must be in the
    building visited. Naming only a person names their household too."""
    if body.household_id is None and body.resident_id is None:
        return None
    row = (
        await session.execute(
            _NAMED, {"b": b.id, "d": b.district_id, "hh": body.household_id, "r": body.resident_id}
        )
    ).first()
    if row is None or (body.resident_id is not None and row.resident_id is None):
        field = "resident_id" if body.resident_id is not None else "household_id"
        raise ApiError(
            "validation_error",
            field=field,
            detail="走访的户或人员不在该楼栋中",
            detail_en="The household or person is not in this building",
        )
    return int(row.household_id)


async def of_building(session: AsyncSession, building_id: int, lang: str) -> list[Any]:
    return list(
        await session.execute(
            text(
                f"SELECT {_COLUMNS} FROM visits v JOIN visit_purposes vp "
                "ON vp.code = v.purpose_code WHERE v.building_id = :b ORDER BY v.at DESC, v.id DESC "
                "LIMIT 200"
            ),
            {"b": building_id, "lang": lang},
        )
    )
