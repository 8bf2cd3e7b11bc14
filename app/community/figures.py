"""The community mechanisms of a quarter in numbers (consoles and the evaluation figures)."""

from __future__ import annotations

from datetime import datetime
from datetime import time as dtime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.community.records import quarter_bounds
from app.schemas import SHANGHAI

_FIGURES = text(
    """
    SELECT
      (SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) n FROM community_needs
         WHERE community_id = ANY(:c) GROUP BY status) x) AS needs,
      (SELECT count(*) FROM community_needs n WHERE n.community_id = ANY(:c) AND n.status = 'open'
         AND NOT EXISTS (SELECT 1 FROM community_projects p
                         WHERE p.need_id = n.id AND p.status <> 'cancelled')) AS needs_unmatched,
      (SELECT count(*) FROM community_resources WHERE community_id = ANY(:c)
         AND valid_from <= :until_day AND (valid_until IS NULL OR valid_until >= :until_day))
         AS resources_valid,
      (SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) n FROM community_projects
         WHERE community_id = ANY(:c) GROUP BY status) x) AS projects,
      (SELECT count(*) FROM community_meetings WHERE community_id = ANY(:c) AND status = 'held'
         AND period = :period) AS meetings,
      (SELECT count(DISTINCT community_id) FROM community_units WHERE community_id = ANY(:c)
         AND is_member AND active) AS with_committee,
      (SELECT count(DISTINCT community_id) FROM community_meetings WHERE community_id = ANY(:c)
         AND status = 'held' AND period = :period) AS met,
      (SELECT jsonb_build_object(
          'due', count(*),
          'done', count(*) FILTER (WHERE state = 'done'),
          'done_on_time', count(*) FILTER (WHERE state = 'done' AND done_at <= due_at),
          'open_overdue', count(*) FILTER (WHERE state = 'open' AND due_at < :now),
          'escalated', count(*) FILTER (WHERE escalation_level > 0))
         FROM community_tasks WHERE community_id = ANY(:c) AND state <> 'cancelled'
           AND due_at >= :since AND due_at < :until) AS tasks,
      (SELECT jsonb_object_agg(status, n) FROM (SELECT status, count(*) n FROM community_matters
         WHERE community_id = ANY(:c) GROUP BY status) x) AS matters,
      (SELECT round(avg(CASE WHEN rating IN ('satisfied', 'basic') THEN 1.0 ELSE 0 END), 4)
         FROM community_matter_ratings WHERE community_id = ANY(:c)
           AND at >= :since AND at < :until) AS satisfaction,
      (SELECT count(*) FROM party_members WHERE community_id = ANY(:c) AND active) AS members,
      (SELECT count(*) FROM volunteer_services WHERE community_id = ANY(:c) AND status = 'confirmed'
         AND served_on >= :since_day AND served_on < :until_day) AS services,
      (SELECT coalesce(sum(hours), 0) FROM volunteer_services WHERE community_id = ANY(:c)
         AND status = 'confirmed' AND served_on >= :since_day AND served_on < :until_day) AS hours,
      (SELECT jsonb_object_agg(rating, n) FROM (SELECT rating, count(*) n
         FROM community_unit_ratings WHERE community_id = ANY(:c) AND period = :period
         GROUP BY rating) x) AS ratings
    """
)


async def figures(
    session: AsyncSession, communities: list[int], period: str, now: datetime
) -> dict[str, Any]:
    """The quarter `period` in numbers: tasks due in it, meetings held in it, service done in it;
    the lists as they stand now."""
    start, end = quarter_bounds(period)
    since = datetime.combine(start, dtime(), SHANGHAI)
    until = datetime.combine(end, dtime(), SHANGHAI)
    r = (
        await session.execute(
            _FIGURES,
            {
                "c": communities,
                "period": period,
                "since": since,
                "until": until,
                "since_day": start,
                "until_day": end,
                "now": now,
            },
        )
    ).one()
    tasks: dict[str, Any] = dict(r.tasks or {})
    tasks["on_time_rate"] = (
        round(tasks["done_on_time"] / tasks["done"], 4) if tasks.get("done") else None
    )
    return {
        "period": period,
        "since": start.isoformat(),
        "until": end.isoformat(),
        "communities": len(communities),
        "needs": r.needs or {},
        "needs_unmatched": r.needs_unmatched,
        "resources_valid": r.resources_valid,
        "projects": r.projects or {},
        "meetings": r.meetings,
        "communities_with_committee": r.with_committee,
        "communities_met": r.met,
        "tasks": tasks,
        "matters": r.matters or {},
        "matter_satisfaction": float(r.satisfaction) if r.satisfaction is not None else None,
        "party_members": r.members,
        "services": r.services,
        "service_hours": float(r.hours),
        "unit_ratings": r.ratings or {},
    }
