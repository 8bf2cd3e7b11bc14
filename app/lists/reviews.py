"""Quarterly reviews of the three lists: an immutable snapshot of needs, valid resources and
projects, one per community and quarter."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import Request
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import records
from app.community.areas import Community
from app.errors import ApiError
from app.lists.models import ListReview

_SNAPSHOT = text(
    """
    SELECT jsonb_build_object(
      'needs', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', n.id, 'title', n.title, 'category', n.category, 'households', n.households,
            'urgency', n.urgency, 'source', n.source, 'status', n.status) ORDER BY n.id)
         FROM community_needs n WHERE n.community_id = :c), '[]'),
      'resources', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', r.id, 'unit', u.name, 'kind', r.kind, 'title', r.title, 'amount', r.amount,
            'capacity', r.capacity, 'measure', r.measure, 'valid_from', r.valid_from,
            'valid_until', r.valid_until) ORDER BY r.id)
         FROM community_resources r JOIN community_units u ON u.id = r.unit_id
         WHERE r.community_id = :c AND r.valid_from <= :today
           AND (r.valid_until IS NULL OR r.valid_until >= :today)), '[]'),
      'projects', coalesce((SELECT jsonb_agg(jsonb_build_object(
            'id', p.id, 'title', p.title, 'need_id', p.need_id, 'lead_unit', u.name,
            'status', p.status, 'progress', p.progress, 'evaluation', p.evaluation) ORDER BY p.id)
         FROM community_projects p JOIN community_units u ON u.id = p.lead_unit_id
         WHERE p.community_id = :c), '[]')
    ) AS snapshot
    """
)


def _counts(snapshot: dict[str, Any]) -> dict[str, Any]:
    def by(items: list[dict[str, Any]], key: str) -> dict[str, int]:
        out: dict[str, int] = {}
        for i in items:
            out[i[key]] = out.get(i[key], 0) + 1
        return out

    return {
        "needs": len(snapshot["needs"]),
        "needs_by_status": by(snapshot["needs"], "status"),
        "resources": len(snapshot["resources"]),
        "resources_by_kind": by(snapshot["resources"], "kind"),
        "projects": len(snapshot["projects"]),
        "projects_by_status": by(snapshot["projects"], "status"),
    }


async def review(
    session: AsyncSession,
    community: Community,
    period: str,
    note: str,
    who: Principal,
    request: Request | None,
    today: date,
) -> int:
    snap = (await session.execute(_SNAPSHOT, {"c": community.id, "today": today})).scalar_one()
    rv = ListReview(
        district_id=community.district_id,
        community_id=community.id,
        period=period,
        note=note,
        counts=_counts(snap),
        snapshot=snap,
        reviewed_by=who.user_id,
    )
    session.add(rv)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ApiError(
            "period_reviewed",
            field="period",
            detail=f"{community.name} {period} 的三张清单已评审",
            detail_en=f"The lists of {period} were already reviewed",
        ) from None
    await records.step(
        session, community, "review", rv.id, "created", who, note=period, detail=rv.counts
    )
    await records.audit(
        session, "community_lists_reviewed", who, request, "community_list_review", rv.id, rv.counts
    )
    await session.flush()
    return rv.id
