"""Disputes (矛盾纠纷) for the demo grid, after its base data (app/demo/basedata.py): a handful
screened by the demo `worker` through the disputes service itself (so each is a case of the
矛盾纠纷 class with its timeline), walked to different points of the loop: one closed after its
follow-up held, one agreed and waiting for its follow-ups, one in mediation, one high-risk at the
centre, one whose mediation failed. Parties are demo residents (names 张演示17…) or free names
that say 演示. Deterministic (the same disputes in the same order); idempotent: nothing is added
when the grid has disputes already. Not loaded when ENV=test."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.policy import PostScope, Principal
from app.demo.basedata import GRID
from app.disputes import service
from app.disputes.schemas import DisputeCreate, FollowUpIn, PartyIn, SessionIn

# title, kind, risk, how far it goes, a free party's name
PLAN: tuple[tuple[str, str, str, str, str], ...] = (
    ("楼上装修噪音扰民", "neighbour", "low", "closed", "演示邻居甲"),
    ("赡养老人费用分担", "family", "medium", "follow_up", "演示亲属乙"),
    ("楼道堆放杂物占用", "neighbour", "low", "mediating", "演示邻居丙"),
    ("讨要工钱情绪激动", "labour", "high", "screened", "演示包工头丁"),
    ("车位归属争议", "property", "low", "failed", "演示业主戊"),
)


async def _worker(conn: AsyncConnection, user_id: int) -> Principal:
    """The demo worker as the policy would load it (its current posts and their grids)."""
    u = (
        await conn.execute(
            text("SELECT id, username, display_name FROM users WHERE id = :u"), {"u": user_id}
        )
    ).one()
    posts = [
        PostScope(r.id, r.role, r.area_id, r.department_id, frozenset(r.grids))
        for r in await conn.execute(
            text(
                "SELECT p.id, p.role, p.area_id, p.department_id, "
                "array(SELECT pg.grid_id FROM post_grids pg WHERE pg.post_id = p.id) AS grids "
                "FROM posts p WHERE p.user_id = :u AND p.starts_on <= current_date "
                "AND (p.ends_on IS NULL OR p.ends_on >= current_date) ORDER BY p.id"
            ),
            {"u": user_id},
        )
    ]
    return Principal(u.id, u.username, u.display_name, uuid.uuid4(), posts)


async def load_disputes(conn: AsyncConnection, grid_code: str = GRID) -> int:
    """The disputes added (0 when the grid has some already, or no demo residents)."""
    grid = (
        await conn.execute(text("SELECT id FROM grids WHERE code = :c"), {"c": grid_code})
    ).scalar()
    worker = (await conn.execute(text("SELECT id FROM users WHERE username = 'worker'"))).scalar()
    if grid is None or worker is None:
        return 0
    if (await conn.execute(text("SELECT 1 FROM disputes WHERE grid_id = :g"), {"g": grid})).first():
        return 0
    people = [
        r.id
        for r in await conn.execute(
            text(
                "SELECT r.id FROM residents r JOIN households hh ON hh.id = r.household_id "
                "AND hh.district_id = r.district_id JOIN houses h ON h.id = hh.house_id "
                "AND h.district_id = hh.district_id JOIN buildings b ON b.id = h.building_id "
                "WHERE b.grid_id = :g AND r.demo AND r.status = 'active' ORDER BY r.id LIMIT 10"
            ),
            {"g": grid},
        )
    ]
    if not people:
        return 0
    session = AsyncSession(bind=conn)
    who = await _worker(conn, int(worker))
    n = 0
    for i, (title, kind, risk, goal, free) in enumerate(PLAN):
        body = DisputeCreate(
            title=title,
            kind=kind,  # type: ignore[arg-type]
            risk=risk,  # type: ignore[arg-type]
            source="visit" if i % 2 else "patrol",
            parties=[PartyIn(resident_id=people[(2 * i) % len(people)]), PartyIn(name=free)],
        )
        did, _ = await service.create(session, grid, body, who, None)
        d = await service.get(session, did)
        if goal in ("closed", "follow_up", "mediating", "failed"):
            await service.mediate(session, d, SessionIn(outcome="continued", note="首次调解"), who)
        if goal in ("closed", "follow_up"):
            agreed = SessionIn(
                outcome="agreed", agreement=f"{title}：双方达成调解协议（演示）", signed_by=free
            )
            await service.mediate(session, d, agreed, who)
        if goal == "failed":
            await service.mediate(session, d, SessionIn(outcome="failed", note="调解未成"), who)
        if goal == "closed":
            follow_ups: list[Any] = list((await service.detail(session, d))["followups"])
            for f in follow_ups:
                await service.follow_up(session, d, FollowUpIn(n=f.n, holds=True), who)
            await service.close(session, d, who, None)
        await session.flush()
        n += 1
    await session.flush()
    return n
