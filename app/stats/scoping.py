"""The figures' scope: the cases a caller may evaluate are exactly those the case list shows
them (the scope module, `app.auth.scope`), plus the units (areas, grids, workers, departments)
whose rows they may see."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.auth import scope
from app.auth.policy import Principal

AREA_LEVEL = {"district": "district", "street": "street", "community": "community"}

_BELOW = text(
    """
    WITH RECURSIVE below(id) AS (
        SELECT id FROM areas WHERE id = ANY(:roots)
        UNION ALL SELECT a.id FROM areas a JOIN below ON a.parent_id = below.id
    )
    SELECT a.id, a.level FROM areas a WHERE a.id IN (SELECT id FROM below)
    """
)


@dataclass
class Scope:
    """The cases a caller may evaluate: exactly those the case list shows them (the scope
    module's `CaseScope`), and the units whose rows they may see."""

    cases: scope.CaseScope
    areas: dict[str, list[int]] = field(default_factory=dict)
    """The areas in scope by level."""
    area_grids: list[int] = field(default_factory=list)
    """Grids inside the caller's areas."""
    non_department: bool = False

    @property
    def everything(self) -> bool:
        return self.cases.everything

    @property
    def user_id(self) -> int:
        return self.cases.user_id or 0

    @property
    def grids(self) -> list[int]:
        """Grids of the caller's grid posts."""
        return sorted(self.cases.grids)

    @property
    def departments(self) -> list[int]:
        return sorted(self.cases.departments)

    def visibility(self) -> tuple[str, dict[str, Any]]:
        vis = self.cases.sql("c")
        return vis.sql, dict(vis.binds)

    async def units(self, conn: AsyncConnection, unit: str) -> list[int] | None:
        """Ids of the units of this kind whose rows the caller sees; None = all."""
        if self.everything:
            return None
        if unit in AREA_LEVEL:
            return self.areas.get(unit, [])
        if unit == "grid":
            return sorted(set(self.grids) | set(self.area_grids))
        if unit == "department":
            return None if self.non_department else self.departments
        # grid workers: those posted on grids in scope, and the caller
        grids = sorted(set(self.grids) | set(self.area_grids))
        users = set(
            (
                await conn.execute(
                    text(
                        "SELECT DISTINCT p.user_id FROM posts p JOIN post_grids pg "
                        "ON pg.post_id = p.id WHERE p.role IN ('grid_worker', 'grid_leader') "
                        "AND pg.grid_id = ANY(:g)"
                    ),
                    {"g": grids},
                )
            ).scalars()
        )
        return sorted(users | {self.user_id})


async def scope_of(conn: AsyncConnection, who: Principal) -> Scope:
    """The caller's scope (`scope.of`, the rule of cases:read; stats:read is held by the same
    roles), its areas expanded down the tree with their levels."""
    mine = scope.of(who)
    non_department = any(p.role != "department" for p in who.posts)
    if mine.everything:
        return Scope(cases=mine, non_department=non_department)
    areas: dict[str, list[int]] = defaultdict(list)
    if mine.roots:
        for r in await conn.execute(_BELOW, {"roots": sorted(mine.roots)}):
            areas[r.level].append(r.id)
    area_grids: list[int] = []
    if areas.get("community"):
        area_grids = list(
            (
                await conn.execute(
                    text("SELECT id FROM grids WHERE community_id = ANY(:c) ORDER BY id"),
                    {"c": sorted(areas["community"])},
                )
            ).scalars()
        )
    below = frozenset(i for ids in areas.values() for i in ids)
    return Scope(
        cases=replace(mine, areas=mine.roots | below, resolved=True),
        areas={k: sorted(v) for k, v in areas.items()},
        area_grids=area_grids,
        non_department=non_department,
    )
