"""The follow-up visits (回访) due, for everyone who answers for them, through the one scope module
(`app.auth.scope.resolve_rule`, the places a caller reaches under a rule):

- **who mediates** (`disputes:work`: grid workers and leaders, the community's mediators, an
  administrator): the follow-ups of the disputes at their places: grid posts their grids, a
  community post every grid of the community;
- **who supervises** (`disputes:read` without `disputes:work`: the street, the centre): the
  follow-ups of the disputes at their places that went up to them: escalated to the centre
  (high risk at once, or past the mediation deadline) or referred to a joint review (会商研判).

Earliest first, each with why the caller sees it (`reason`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth import scope
from app.auth.policy import RULES, Principal, Rule

LIMIT = 500

_DUE = """
    SELECT x.id AS dispute_id, x.case_id, x.grid_id, x.title, x.risk, f.n, f.due_at,
           f.due_at < now() AS overdue, x.escalated_to, x.meeting_id
    FROM (SELECT d.*, cm.parent_id AS street_id FROM disputes d
          JOIN areas cm ON cm.id = d.community_id) x
    JOIN dispute_followups f ON f.dispute_id = x.id AND f.district_id = x.district_id
    WHERE x.status = 'follow_up' AND f.done_at IS NULL AND {went_up} AND {scope}
    ORDER BY f.due_at, x.id, f.n LIMIT {limit}
"""
"""`x` carries the place columns the scope's condition reads (grid, community, street,
district); `reported_by` is its owner column (no rule here lets the reporter act)."""
_WENT_UP = "(x.escalated_to IS NOT NULL OR x.meeting_id IS NOT NULL)"


def _rules() -> tuple[tuple[str, Rule, str], ...]:
    work, read = RULES["disputes:work"], RULES["disputes:read"]
    above = (read.roles or frozenset()) - (work.roles or frozenset())
    return (
        ("mediation", work, "true"),
        ("went_up", Rule(above, scoped=True, description="supervise disputes"), _WENT_UP),
    )


async def queue(session: AsyncSession, who: Principal) -> list[dict[str, Any]]:
    """The follow-ups due that the caller answers for, earliest first (at most `LIMIT`)."""
    seen: dict[tuple[int, int], dict[str, Any]] = {}
    for reason, rule, went_up in _rules():
        if not who.posts_for(rule):
            continue
        where = (await scope.resolve_rule(session, who, rule)).sql("x", owner="reported_by")
        rows = await session.execute(
            text(_DUE.format(went_up=went_up, scope=where.sql, limit=LIMIT)), where.binds
        )
        for r in rows:
            seen.setdefault((r.dispute_id, r.n), {**r._mapping, "reason": reason})
    return sorted(seen.values(), key=lambda i: (i["due_at"], i["dispute_id"], i["n"]))[:LIMIT]
