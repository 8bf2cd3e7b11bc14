"""Where a community object lives: the community an `{area_id}` path names, the communities at or
below an area, and the one helper every community mechanism lists and finds its rows with
(`rows_under`, `row_under`): a street or district reader sees the rows of every community below."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.community.models import CommunityScoped
from app.errors import ApiError, not_found


@dataclass(frozen=True)
class Community:
    id: int
    district_id: int
    name: str
    street_id: int


_COMMUNITY = text(
    """
    SELECT c.id, c.name, c.level, s.id AS street_id, s.parent_id AS district_id
    FROM areas c LEFT JOIN areas s ON s.id = c.parent_id WHERE c.id = :id
    """
)


async def community_of(session: AsyncSession, area_id: int) -> Community:
    """The community an `{area_id}` path names (422 when the area is not a community)."""
    row = (await session.execute(_COMMUNITY, {"id": area_id})).first()
    if row is None:
        raise not_found("区域", "Area", area_id)
    if row.level != "community" or row.district_id is None:
        raise ApiError(
            "not_a_community",
            field="area_id",
            detail=f"区域 {row.name} 不是社区/村",
            detail_en=f"{row.name} is not a community",
        )
    return Community(row.id, row.district_id, row.name, row.street_id)


_GRID = text("SELECT community_id FROM grids WHERE id = :g AND deleted_at IS NULL")


async def grid_community(session: AsyncSession, grid_id: int) -> Community:
    """The community of a (live) grid: where a need or proposal collected in it belongs."""
    row = (await session.execute(_GRID, {"g": grid_id})).first()
    if row is None:
        raise not_found("网格", "Grid", grid_id)
    return await community_of(session, row.community_id)


async def check_grid(session: AsyncSession, community: Community, grid_id: int | None) -> None:
    """A grid named in a body is a live grid of this community (422 naming `grid_id` otherwise)."""
    if grid_id is None:
        return
    row = (await session.execute(_GRID, {"g": grid_id})).first()
    if row is None or row.community_id != community.id:
        raise ApiError(
            "validation_error",
            field="grid_id",
            detail="网格不属于该社区",
            detail_en="The grid is not in this community",
        )


_UNDER = text(
    """
    WITH RECURSIVE down(id, level) AS (
        SELECT id, level FROM areas WHERE id = :id
        UNION ALL SELECT a.id, a.level FROM areas a JOIN down ON a.parent_id = down.id
    )
    SELECT id FROM down WHERE level = 'community'
    """
)
_EXISTS = text("SELECT 1 FROM areas WHERE id = :id")


async def communities_under(session: AsyncSession, area_id: int) -> list[int]:
    """The communities at or below an area (404 when the area does not exist)."""
    ids = list((await session.execute(_UNDER, {"id": area_id})).scalars())
    if not ids and (await session.execute(_EXISTS, {"id": area_id})).first() is None:
        raise not_found("区域", "Area", area_id)
    return ids


M = TypeVar("M", bound=CommunityScoped)


async def rows_under(
    session: AsyncSession,
    model: type[M],
    area_id: int,
    *,
    order_by: Sequence[Any],
    limit: int | None = None,
    **equal: Any,
) -> list[M]:
    """The rows of a community table in the communities at or below `area_id`, filtered by
    column values (`status="held"`; a None value filters nothing), in `order_by` order."""
    communities = await communities_under(session, area_id)
    stmt = select(model).where(model.community_id.in_(communities))
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(getattr(model, column) == value)
    stmt = stmt.order_by(*order_by)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list((await session.execute(stmt)).scalars())


async def row_under(
    session: AsyncSession,
    model: type[M],
    area_id: int,
    row_id: int,
    what: tuple[str, str],
    *,
    fresh: bool = False,
) -> M:
    """One row of a community table, when it lies at or below `area_id` (404 `what` otherwise);
    `fresh` reloads it from the database (after a change in the same session)."""
    row = await session.get(model, row_id, populate_existing=fresh)
    if row is None or row.community_id not in await communities_under(session, area_id):
        raise not_found(what[0], what[1], row_id)
    return row
