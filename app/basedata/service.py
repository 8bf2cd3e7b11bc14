"""Houses, households, organisations, the tag catalogue, the derived figures and the change
history of the base data. Residents (the personal data) are in `app.basedata.residents`."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.audit.service import record
from app.auth.policy import Principal
from app.basedata import crypto
from app.basedata.checks import check_phone
from app.basedata.models import Change, House, Household, Organisation, ResidentTag
from app.basedata.schemas import HouseCreate, HouseUpdate, OrganisationCreate, TagCreate
from app.errors import ApiError, not_found
from app.pii import mask_phone

_BUILDING = text(
    """
    SELECT b.id, b.grid_id, g.community_id, s.parent_id AS district_id
    FROM buildings b JOIN grids g ON g.id = b.grid_id
    JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id
    WHERE b.id = :id
    """
)
_HOUSE = text(
    """
    SELECT h.*, b.grid_id,
           (SELECT count(*) FROM households hh WHERE hh.house_id = h.id
            AND hh.district_id = h.district_id AND hh.ended_at IS NULL) AS households
    FROM houses h JOIN buildings b ON b.id = h.building_id
    WHERE h.id = :id
    """
)
_DISTRICT_OF_AREA = text(
    """
    SELECT coalesce(CASE WHEN a.level = 'district' THEN a.id END,
                    CASE WHEN p.level = 'district' THEN p.id END,
                    CASE WHEN pp.level = 'district' THEN pp.id END) AS district_id
    FROM areas a LEFT JOIN areas p ON p.id = a.parent_id LEFT JOIN areas pp ON pp.id = p.parent_id
    WHERE a.id = :id
    """
)


async def building(session: AsyncSession, building_id: int) -> Any:
    row = (await session.execute(_BUILDING, {"id": building_id})).first()
    if row is None:
        raise not_found("楼栋", "Building", building_id)
    return row


async def district_of_area(session: AsyncSession, area_id: int) -> int:
    row = (await session.execute(_DISTRICT_OF_AREA, {"id": area_id})).first()
    if row is None or row.district_id is None:
        raise ApiError(
            "validation_error",
            field="area_id",
            detail="须为区（县）或其下属的街道、社区",
            detail_en="Must be a district or an area below one",
        )
    return int(row.district_id)


async def log_change(
    session: AsyncSession,
    district_id: int,
    object_type: str,
    object_id: int,
    action: str,
    who: Principal | None,
    fields: dict[str, Any] | None = None,
) -> None:
    """Who changed what, when: field names with masked values (never clear personal data)."""
    session.add(
        Change(
            district_id=district_id,
            object_type=object_type,
            object_id=object_id,
            action=action,
            actor_id=who.user_id if who else None,
            fields=fields or {},
        )
    )


# --- houses -------------------------------------------------------------------------------------


async def create_house(
    session: AsyncSession, building_id: int, body: HouseCreate, who: Principal, request: Request
) -> int:
    b = await building(session, building_id)
    exists = await session.scalar(
        select(House.id).where(
            House.district_id == b.district_id,
            House.building_id == building_id,
            House.unit == body.unit,
            House.floor == body.floor,
            House.room == body.room,
        )
    )
    if exists is not None:
        raise ApiError(
            "house_exists",
            field="room",
            detail=f"该房屋已登记：{body.unit}单元 {body.floor}层 {body.room}",
            extra={"house_id": exists},
        )
    h = House(district_id=b.district_id, building_id=building_id, **body.model_dump())
    session.add(h)
    await session.flush()
    await log_change(session, b.district_id, "house", h.id, "created", who, body.model_dump())
    await record(
        session, "house_created", actor=who, request=request, object_type="house", object_id=h.id
    )
    return h.id


async def get_house(session: AsyncSession, house_id: int) -> Any:
    row = (await session.execute(_HOUSE, {"id": house_id})).first()
    if row is None:
        raise not_found("房屋", "House", house_id)
    return row


async def update_house(
    session: AsyncSession, house_id: int, body: HouseUpdate, who: Principal
) -> None:
    row = await get_house(session, house_id)
    data = body.model_dump(exclude_unset=True)
    for k in ("use", "tenure"):
        if k in data and data[k] is None:
            raise ApiError("validation_error", field=k, detail=f"{k} 不能为空")
    if data:
        await session.execute(
            update(House)
            .where(House.id == house_id, House.district_id == row.district_id)
            .values(**data, updated_at=text("now()"))
        )
        await log_change(session, row.district_id, "house", house_id, "updated", who, data)


async def list_houses(
    session: AsyncSession, building_id: int, limit: int, offset: int
) -> tuple[list[Any], int]:
    b = await building(session, building_id)
    rows = list(
        await session.execute(
            text(
                """
                SELECT h.*, CAST(:grid AS bigint) AS grid_id, count(*) OVER () AS total,
                       (SELECT count(*) FROM households hh WHERE hh.house_id = h.id
                        AND hh.district_id = h.district_id AND hh.ended_at IS NULL) AS households
                FROM houses h WHERE h.district_id = :district AND h.building_id = :building
                ORDER BY h.unit, h.floor, h.room LIMIT :limit OFFSET :offset
                """
            ),
            {
                "grid": b.grid_id,
                "district": b.district_id,
                "building": building_id,
                "limit": limit,
                "offset": offset,
            },
        )
    )
    return rows, (rows[0].total if rows else 0)


def house_out(r: Any) -> dict[str, Any]:
    return {
        k: getattr(r, k)
        for k in (
            "id",
            "building_id",
            "grid_id",
            "unit",
            "floor",
            "room",
            "use",
            "tenure",
            "area_m2",
            "households",
            "created_at",
            "updated_at",
        )
    }


# --- households ---------------------------------------------------------------------------------


async def create_household(
    session: AsyncSession, house_id: int, number: str | None, who: Principal
) -> int:
    h = await get_house(session, house_id)
    hh = Household(district_id=h.district_id, house_id=house_id, number=number)
    session.add(hh)
    await session.flush()
    await log_change(
        session, h.district_id, "household", hh.id, "created", who, {"house": house_id}
    )
    await recount(session, [h.grid_id])
    return hh.id


_HOUSEHOLD = text(
    """
    SELECT hh.*, h.building_id, b.grid_id FROM households hh
    JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
    JOIN buildings b ON b.id = h.building_id
    WHERE hh.id = :id
    """
)


async def get_household(session: AsyncSession, household_id: int) -> Any:
    row = (await session.execute(_HOUSEHOLD, {"id": household_id})).first()
    if row is None:
        raise not_found("户", "Household", household_id)
    return row


# --- the figures derived from the base data (item: the grid's households and population) -------

# Counted first (the base data is distributed by district on Citus), then written into the
# registry's rows (reference tables there) from binds: Citus refuses an UPDATE of a reference
# table that reads a distributed one.
_COUNT_BUILDINGS = text(
    """
    SELECT h.building_id AS id, count(hh.id) AS n
    FROM houses h JOIN buildings b ON b.id = h.building_id
    LEFT JOIN households hh ON hh.house_id = h.id AND hh.district_id = h.district_id
        AND hh.ended_at IS NULL
    WHERE b.grid_id = ANY(:grids)
    GROUP BY h.building_id
    """
)
_RECOUNT_BUILDINGS = text(
    """
    UPDATE buildings b SET derived_households = x.n
    FROM (SELECT b2.id, u.n FROM buildings b2
          LEFT JOIN unnest(CAST(:ids AS bigint[]), CAST(:ns AS bigint[])) AS u(id, n)
              ON u.id = b2.id
          WHERE b2.grid_id = ANY(:grids)) x
    WHERE b.id = x.id AND b.derived_households IS DISTINCT FROM x.n
    """
)
_COUNT_GRIDS = text(
    """
    SELECT b.grid_id AS id, count(DISTINCT h.id) AS houses,
           count(DISTINCT hh.id) FILTER (WHERE hh.ended_at IS NULL) AS households,
           count(r.id) FILTER (WHERE r.status = 'active' AND r.living)
               AS population
    FROM houses h JOIN buildings b ON b.id = h.building_id
    LEFT JOIN households hh ON hh.house_id = h.id AND hh.district_id = h.district_id
    LEFT JOIN residents r ON r.household_id = hh.id AND r.district_id = hh.district_id
    WHERE b.grid_id = ANY(:grids)
    GROUP BY b.grid_id
    """
)
_RECOUNT_GRIDS = text(
    """
    UPDATE grids g SET derived_households = x.households, derived_population = x.population
    FROM (SELECT g2.id, u.households, u.population FROM grids g2
          LEFT JOIN unnest(CAST(:ids AS bigint[]), CAST(:households AS bigint[]),
                           CAST(:population AS bigint[])) AS u(id, households, population)
              ON u.id = g2.id
          WHERE g2.id = ANY(:grids)) x
    WHERE g.id = x.id
      AND (g.derived_households, g.derived_population)
          IS DISTINCT FROM (x.households, x.population)
    """
)


async def recount(session: AsyncSession | AsyncConnection, grid_ids: list[int]) -> None:
    """The grids' (and their buildings') households and population from the base data; a grid
    without any house keeps NULL (its typed number holds)."""
    grids = sorted(set(grid_ids))
    if not grids:
        return
    b = (await session.execute(_COUNT_BUILDINGS, {"grids": grids})).all()
    await session.execute(
        _RECOUNT_BUILDINGS,
        {"grids": grids, "ids": [r.id for r in b], "ns": [r.n for r in b]},
    )
    g = (await session.execute(_COUNT_GRIDS, {"grids": grids})).all()
    await session.execute(
        _RECOUNT_GRIDS,
        {
            "grids": grids,
            "ids": [r.id for r in g],
            "households": [r.households for r in g],
            "population": [r.population for r in g],
        },
    )


_FIGURES = """
WITH b AS (SELECT id FROM buildings WHERE grid_id = ANY(:grids)),
r AS (SELECT r.* FROM residents r
      JOIN households hh ON hh.id = r.household_id AND hh.district_id = r.district_id
      JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
      WHERE h.building_id IN (SELECT id FROM b) AND r.status = 'active')
SELECT (SELECT count(*) FROM houses WHERE building_id IN (SELECT id FROM b)) AS houses,
       (SELECT count(*) FROM households hh JOIN houses h
        ON h.id = hh.house_id AND h.district_id = hh.district_id
        WHERE h.building_id IN (SELECT id FROM b) AND hh.ended_at IS NULL) AS households,
       (SELECT count(*) FROM r WHERE living) AS population,
       (SELECT count(*) FROM r WHERE registered) AS registered,
       (SELECT count(*) FROM organisations WHERE building_id IN (SELECT id FROM b))
           AS organisations,
       (SELECT coalesce(json_object_agg(tag, n), '{}') FROM
           (SELECT unnest(tags) AS tag, count(*) AS n FROM r GROUP BY 1) t) AS by_tag
"""


async def figures(
    session: AsyncSession, grid_ids: list[int], hidden_tags: set[str]
) -> dict[str, Any]:
    row = (await session.execute(text(_FIGURES), {"grids": sorted(grid_ids)})).one()
    out = dict(row._mapping)
    out["by_tag"] = {k: v for k, v in (row.by_tag or {}).items() if k not in hidden_tags}
    return out


async def grids_below(session: AsyncSession, area_id: int) -> list[int]:
    rows = await session.execute(
        text(
            """
            WITH RECURSIVE below AS (SELECT id FROM areas WHERE id = :id
                UNION ALL SELECT a.id FROM areas a JOIN below ON a.parent_id = below.id)
            SELECT g.id FROM grids g WHERE g.community_id IN (SELECT id FROM below)
            AND g.deleted_at IS NULL
            """
        ),
        {"id": area_id},
    )
    return [r.id for r in rows]


# --- organisations ------------------------------------------------------------------------------


async def create_organisation(
    session: AsyncSession, building_id: int, body: OrganisationCreate, who: Principal
) -> int:
    b = await building(session, building_id)
    if body.house_id is not None:
        h = (await session.execute(_HOUSE, {"id": body.house_id})).first()
        if h is None or h.building_id != building_id:
            raise ApiError(
                "validation_error",
                field="house_id",
                detail="房屋不在该楼栋中",
                detail_en="The house is not in this building",
            )
    data = body.model_dump(exclude={"phone"})
    o = Organisation(district_id=b.district_id, building_id=building_id, **data)
    if body.phone:
        phone = check_phone(body.phone)
        o.phone_enc, o.key_version = crypto.seal(phone, "phone")
        o.phone_hash = crypto.keyed_hash(phone, "phone")
        o.phone_masked = mask_phone(phone)
    session.add(o)
    await session.flush()
    await log_change(session, b.district_id, "organisation", o.id, "created", who, data)
    return o.id


_ORGS = """
SELECT o.*, b.grid_id, count(*) OVER () AS total FROM organisations o
JOIN buildings b ON b.id = o.building_id WHERE {where}
ORDER BY o.id LIMIT :limit OFFSET :offset
"""


async def get_organisation(session: AsyncSession, organisation_id: int) -> Any:
    row = (
        await session.execute(
            text(_ORGS.format(where="o.id = :id")), {"id": organisation_id, "limit": 1, "offset": 0}
        )
    ).first()
    if row is None:
        raise not_found("单位", "Organisation", organisation_id)
    return row


async def list_organisations(
    session: AsyncSession, building_id: int, limit: int, offset: int
) -> tuple[list[Any], int]:
    b = await building(session, building_id)
    rows = list(
        await session.execute(
            text(_ORGS.format(where="o.district_id = :district AND o.building_id = :building")),
            {"district": b.district_id, "building": building_id, "limit": limit, "offset": offset},
        )
    )
    return rows, (rows[0].total if rows else 0)


def organisation_out(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "building_id": r.building_id,
        "house_id": r.house_id,
        "grid_id": r.grid_id,
        "name": r.name,
        "kind": r.kind,
        "credit_code": r.credit_code,
        "contact_name": r.contact_name,
        "phone": r.phone_masked,
        "created_at": r.created_at,
    }


# --- the tag catalogue --------------------------------------------------------------------------


async def tags_of(session: AsyncSession, district_id: int) -> list[ResidentTag]:
    return list(
        (
            await session.execute(
                select(ResidentTag)
                .where(ResidentTag.district_id == district_id)
                .order_by(ResidentTag.code)
            )
        ).scalars()
    )


async def create_tag(
    session: AsyncSession, area_id: int, body: TagCreate, who: Principal, request: Request
) -> ResidentTag:
    district = await district_of_area(session, area_id)
    if any(t.code == body.code for t in await tags_of(session, district)):
        raise ApiError("conflict", field="code", detail=f"本区已有该标签：{body.code}")
    t = ResidentTag(district_id=district, **body.model_dump())
    session.add(t)
    await session.flush()
    await record(
        session,
        "resident_tag_created",
        actor=who,
        request=request,
        object_type="resident_tag",
        object_id=t.id,
        detail=body.model_dump(),
    )
    return t


async def ledger_rows(session: AsyncSession, grid_id: int, district_id: int) -> list[Any]:
    """The grid's active residents with their house, in the ledger's order (masked columns)."""
    return list(
        await session.execute(
            text(
                """
                SELECT b.name AS building, h.unit, h.floor, h.room, h.use, hh.number, r.name,
                       r.id_masked, r.phone_masked, r.relation, r.registered, r.living, r.tags
                FROM residents r
                JOIN households hh ON hh.id = r.household_id AND hh.district_id = r.district_id
                JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
                JOIN buildings b ON b.id = h.building_id
                WHERE b.grid_id = :g AND r.district_id = :d AND r.status = 'active'
                ORDER BY b.name, h.unit, h.floor, h.room, hh.id, r.id
                """
            ),
            {"g": grid_id, "d": district_id},
        )
    )
