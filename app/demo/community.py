"""A plausible quarter of the community mechanisms for three demo communities, plus the grid
support list (25 departments, 86 measures, as in Yuehu).

Deterministic (fixed dates in the third and fourth quarters of 2026, choices from a seeded
generator) and idempotent: a community that already has its big party committee is skipped, and
measures and departments are inserted by code. Written with plain inserts (no events: this is
history, not live news)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from app.demo.community_lists import _Lists
from app.demo.community_meetings import _Meetings
from app.demo.community_residents import _Residents
from app.demo.support_list import load_departments_and_measures

COMMUNITIES = ("360602001001", "360602003001", "360602004001")  # 立新, 磷肥厂, 东湖家园


class _Builder(_Lists, _Meetings, _Residents):
    """One community's quarter (the parts: community_base, community_lists, community_meetings,
    community_residents)."""

    async def build(self) -> None:
        u = await self.units()
        needs = await self.needs()
        res = await self.resources(u)
        await self.projects(u, needs, res)
        await self.meetings(u, needs)
        await self.ratings(u)
        await self.matters(u)
        await self.volunteers(u)


async def load_community(conn: AsyncConnection) -> int:
    """The demo quarter of three communities and the grid support list; returns how many
    communities it filled (0 on a second run). Like the demo accounts, not in production: its
    people, ratings and votes are made up."""
    from app.config import get_settings

    if get_settings().env == "production":
        return 0
    await load_departments_and_measures(conn)
    filled = 0
    for code in COMMUNITIES:
        b = _Builder(conn, code)
        if await b.setup():
            await b.build()
            filled += 1
    return filled
