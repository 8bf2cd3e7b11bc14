"""Joint meetings: agenda from needs, cases and matters; resolutions become tracked tasks; the
述职 report each member unit gives at the next meeting; the two-way evaluation of member units."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import areas, records
from app.community import service as community_units
from app.community import tasks as tracked
from app.community.areas import Community, row_under, rows_under
from app.community.models import Unit
from app.community.schemas import TaskIn
from app.errors import ApiError, not_found
from app.meetings.models import Meeting, UnitRating
from app.meetings.schemas import MeetingIn, RatingIn

# The routes resolve their paths (and the current quarter) through their own service.
communities_under = areas.communities_under
community_of = areas.community_of
quarter = records.quarter

MEETING_MACHINE: dict[str, set[str]] = {"hold": {"planned"}, "resolve": {"held"}}
_TOPIC_TABLES = {
    "need": "SELECT 1 FROM community_needs WHERE id = :id AND community_id = :c",
    "case": "SELECT 1 FROM cases WHERE id = :id AND community_id = :c",
    "matter": "SELECT 1 FROM community_matters WHERE id = :id AND community_id = :c",
}


async def _attendees(
    session: AsyncSession, community: Community, unit_ids: list[int]
) -> list[dict[str, Any]]:
    if not unit_ids:
        return []
    units = (
        (
            await session.execute(
                select(Unit).where(
                    Unit.id.in_(unit_ids), Unit.community_id == community.id, Unit.is_member
                )
            )
        )
        .scalars()
        .all()
    )
    missing = sorted(set(unit_ids) - {u.id for u in units})
    if missing:
        raise ApiError(
            "validation_error",
            field="attendee_unit_ids",
            detail=f"这些不是本社区大党委的成员单位：{missing}",
            detail_en=f"Not member units of this community's committee: {missing}",
        )
    return [
        {"unit_id": u.id, "name": u.name, "representative": u.representative}
        for u in sorted(units, key=lambda u: u.id)
    ]


async def create_meeting(
    session: AsyncSession,
    community: Community,
    body: MeetingIn,
    who: Principal,
    request: Request | None,
    now: datetime,
) -> int:
    if body.status == "held" and body.held_at > now:
        raise ApiError(
            "validation_error",
            field="held_at",
            detail="已召开的会议时间不能晚于现在",
            detail_en="A held meeting cannot be in the future",
        )
    for i, t in enumerate(body.topics):
        if t.kind == "other":
            continue
        ok = (
            t.ref_id is not None
            and (
                await session.execute(
                    text(_TOPIC_TABLES[t.kind]), {"id": t.ref_id, "c": community.id}
                )
            ).first()
            is not None
        )
        if not ok:
            raise ApiError(
                "validation_error",
                field=f"topics.{i}.ref_id",
                detail=f"本社区没有该议题来源：{t.kind} {t.ref_id}",
                detail_en=f"No such {t.kind} in this community: {t.ref_id}",
            )
    m = Meeting(
        district_id=community.district_id,
        community_id=community.id,
        title=body.title,
        held_at=body.held_at,
        period=records.quarter(body.held_at),
        place=body.place,
        status=body.status,
        attendees=await _attendees(session, community, body.attendee_unit_ids),
        topics=[t.model_dump() for t in body.topics],
        minutes=body.minutes,
        created_by=who.user_id,
    )
    session.add(m)
    await session.flush()
    detail = body.model_dump(mode="json", exclude={"minutes"})
    await records.step(
        session, community, "meeting", m.id, "created", who, note=m.title, detail=detail
    )
    if body.status == "held":
        await records.step(session, community, "meeting", m.id, "held", who)
    await records.audit(
        session, "community_meeting_created", who, request, "community_meeting", m.id, detail
    )
    await records.emit_community(
        session,
        "community.meeting_" + body.status,
        community.id,
        {"meeting_id": m.id, "period": m.period, "held_at": m.held_at},
    )
    await session.flush()
    return m.id


async def get_meeting(
    session: AsyncSession, communities: list[int], meeting_id: int, lock: bool = False
) -> Meeting:
    m = await session.get(Meeting, meeting_id, with_for_update=lock)
    if m is None or m.community_id not in communities:
        raise not_found("联席会议", "Meeting", meeting_id)
    return m


async def hold(
    session: AsyncSession,
    community: Community,
    meeting_id: int,
    minutes: str,
    attendee_unit_ids: list[int] | None,
    who: Principal,
    request: Request | None,
    now: datetime,
) -> None:
    m = await get_meeting(session, [community.id], meeting_id, lock=True)
    records.check_state("联席会议", "meeting", m.status, "hold", MEETING_MACHINE)
    m.status, m.minutes = "held", minutes
    if m.held_at > now:  # held earlier than planned
        m.held_at, m.period = now, records.quarter(now)
    if attendee_unit_ids is not None:
        m.attendees = await _attendees(session, community, attendee_unit_ids)
    await records.step(session, community, "meeting", m.id, "held", who)
    await records.audit(session, "community_meeting_held", who, request, "community_meeting", m.id)
    await records.emit_community(
        session, "community.meeting_held", community.id, {"meeting_id": m.id, "period": m.period}
    )
    await session.flush()


async def resolve(
    session: AsyncSession,
    community: Community,
    meeting_id: int,
    resolutions: list[TaskIn],
    who: Principal,
    request: Request | None,
    now: datetime,
) -> None:
    """Each resolution (task, responsible unit, deadline) becomes a tracked task; its working-day
    deadline counts from the meeting (or from now, when recorded later)."""
    m = await get_meeting(session, [community.id], meeting_id, lock=True)
    records.check_state("联席会议", "meeting", m.status, "resolve", MEETING_MACHINE)
    await community_units.check_units(
        session, community, [r.unit_id for r in resolutions], "resolutions"
    )
    start = m.held_at
    ids = []
    for r in resolutions:
        t = await tracked.create_task(
            session,
            community,
            who,
            source="meeting",
            ref_id=m.id,
            title=r.title,
            unit_id=r.unit_id,
            due_days=r.due_days,
            start=start,
        )
        ids.append(t.id)
    detail = {"task_ids": ids, "resolutions": [r.model_dump() for r in resolutions]}
    await records.step(session, community, "meeting", m.id, "resolved", who, detail=detail)
    await records.audit(
        session, "community_meeting_resolved", who, request, "community_meeting", m.id, detail
    )
    await session.flush()


# --- 述职 ------------------------------------------------------------------------------------

_PREVIOUS = text(
    """
    SELECT max(held_at) FROM community_meetings
    WHERE community_id = :c AND status = 'held' AND held_at < :t AND id <> :m
    """
)
_REPORT_TASKS = text(
    """
    SELECT t.id, t.unit_id, t.title, t.source, t.meeting_id, t.due_at, t.state, t.progress,
           t.progress_note, t.done_at, t.escalation_level,
           CASE WHEN t.state = 'done' THEN t.done_at > t.due_at
                WHEN t.state = 'open' THEN t.due_at < :until ELSE false END AS overdue
    FROM community_tasks t
    WHERE t.community_id = :c AND t.created_at <= :until AND t.state <> 'cancelled'
      AND (t.state = 'open' OR CAST(:since AS timestamptz) IS NULL
           OR t.done_at > :since OR t.created_at > :since)
    ORDER BY t.due_at, t.id
    """
)
_REPORT_PROJECTS = text(
    """
    SELECT pu.unit_id, p.id, p.title, p.status, p.progress, p.lead_unit_id = pu.unit_id AS lead
    FROM community_project_units pu JOIN community_projects p ON p.id = pu.project_id
    WHERE p.community_id = :c AND (p.status IN ('planned', 'in_progress')
          OR (p.completed_at IS NOT NULL AND (CAST(:since AS timestamptz) IS NULL OR p.completed_at > :since)))
    ORDER BY p.id
    """
)
_REPORT_SERVICE = text(
    """
    SELECT m.unit_id, count(DISTINCT m.id) AS members, coalesce(sum(s.hours), 0) AS hours
    FROM volunteer_services s JOIN party_members m ON m.id = s.member_id
    WHERE m.unit_id IS NOT NULL AND s.community_id = :c AND s.status = 'confirmed'
      AND s.served_on <= CAST(:until AS timestamptz) AT TIME ZONE 'Asia/Shanghai'
      AND (CAST(:since AS timestamptz) IS NULL
           OR s.served_on > CAST(:since AS timestamptz) AT TIME ZONE 'Asia/Shanghai')
    GROUP BY m.unit_id
    """
)
_LAST_RATING = text(
    """
    SELECT DISTINCT ON (unit_id) unit_id, period FROM community_unit_ratings
    WHERE community_id = :c ORDER BY unit_id, period DESC
    """
)


async def report(session: AsyncSession, community_id: int, meeting: Meeting) -> dict[str, Any]:
    """The report each member unit gives at this meeting (述职): its tasks since the previous
    meeting (and any still open), the projects it leads or joins, its members' confirmed service,
    and the result of its latest two-way evaluation."""
    until = meeting.held_at
    since = (
        await session.execute(_PREVIOUS, {"c": community_id, "t": until, "m": meeting.id})
    ).scalar()
    params = {"c": community_id, "since": since, "until": until}
    tasks = list(await session.execute(_REPORT_TASKS, params))
    projects = list(await session.execute(_REPORT_PROJECTS, params))
    service = {r.unit_id: r for r in await session.execute(_REPORT_SERVICE, params)}
    last = {r.unit_id: r.period for r in await session.execute(_LAST_RATING, {"c": community_id})}
    results: dict[int, str | None] = {}
    for period in sorted(set(last.values())):
        s = await summary(session, [community_id], period)
        for u in s["units"]:
            if last.get(u["unit_id"]) == period:
                results[u["unit_id"]] = u["result"]
    units = (
        (
            await session.execute(
                select(Unit)
                .where(Unit.community_id == community_id, Unit.is_member, Unit.active)
                .order_by(Unit.id)
            )
        )
        .scalars()
        .all()
    )
    out = []
    for u in units:
        mine = [dict(t._mapping) for t in tasks if t.unit_id == u.id]
        svc = service.get(u.id)
        out.append(
            {
                "unit_id": u.id,
                "name": u.name,
                "representative": u.representative,
                "duties": u.duties,
                "tasks": mine,
                "assigned": len(mine),
                "done": sum(t["state"] == "done" for t in mine),
                "done_on_time": sum(t["state"] == "done" and not t["overdue"] for t in mine),
                "open_overdue": sum(t["state"] == "open" and t["overdue"] for t in mine),
                "projects": [
                    {
                        "id": p.id,
                        "title": p.title,
                        "status": p.status,
                        "progress": p.progress,
                        "lead": p.lead,
                    }
                    for p in projects
                    if p.unit_id == u.id
                ],
                "service_members": svc.members if svc else 0,
                "service_hours": float(svc.hours) if svc else 0.0,
                "last_rating": results.get(u.id),
            }
        )
    return {"meeting_id": meeting.id, "since": since, "until": until, "units": out}


# --- two-way evaluation ----------------------------------------------------------------------

_RATE = text(
    """
    INSERT INTO community_unit_ratings (district_id, community_id, unit_id, period, rater_level,
                                        rater_name, rating, note, rated_by)
    VALUES (:district, :community, :unit, :period, :level, :name, :rating, :note, :by)
    ON CONFLICT (unit_id, period, rater_level, rater_name)
    DO UPDATE SET rating = EXCLUDED.rating, note = EXCLUDED.note, rated_by = EXCLUDED.rated_by,
                  created_at = EXCLUDED.created_at
    RETURNING id, (xmax <> 0) AS changed
    """
)
LEVELS_BY_ROLE = {
    "street": {"street"},
    "community": {"community", "grid", "resident"},
    "admin": {"street", "community", "grid", "resident"},
}


async def rate(
    session: AsyncSession,
    community: Community,
    body: RatingIn,
    who: Principal,
    request: Request | None,
) -> int:
    """One rater's verdict on a member unit for a period; a rater may change it (the last
    counts). Streets rate as the street; community staff as the community and on behalf of grid
    organisations and resident representatives (paper forms), who must be named."""
    unit = await community_units.get_unit(session, community, body.unit_id)
    if not unit.is_member:
        raise ApiError(
            "validation_error",
            field="unit_id",
            detail="只评议大党委成员单位",
            detail_en="Only member units of the big party committee are rated",
        )
    roles = {p.role for p in who.posts} & set(LEVELS_BY_ROLE)
    may = set().union(*(LEVELS_BY_ROLE[r] for r in roles))
    level = body.rater_level or (
        "street" if "street" in may and "community" not in may else "community"
    )
    if level not in may:
        raise ApiError(
            "forbidden",
            field="rater_level",
            detail=f"您的岗位不能以 {level} 身份评议",
            detail_en=f"Your post cannot rate as {level}",
        )
    if level in ("grid", "resident") and not body.rater_name:
        raise ApiError(
            "validation_error",
            field="rater_name",
            detail="网格党组织和居民代表的评议需注明评议人",
            detail_en="Grid organisations and resident representatives must be named",
        )
    name = body.rater_name or who.display_name
    row = (
        await session.execute(
            _RATE,
            {
                "district": community.district_id,
                "community": community.id,
                "unit": unit.id,
                "period": body.period,
                "level": level,
                "name": name,
                "rating": body.rating,
                "note": body.note,
                "by": who.user_id,
            },
        )
    ).one()
    detail = {**body.model_dump(), "rater_level": level, "rater_name": name}
    await records.step(
        session, community, "unit", unit.id, "rated", who, note=body.rating, detail=detail
    )
    await records.audit(
        session,
        "community_unit_rerated" if row.changed else "community_unit_rated",
        who,
        request,
        "community_unit",
        unit.id,
        detail,
    )
    await session.flush()
    return int(row.id)


_SUMMARY = text(
    """
    SELECT u.id AS unit_id, u.name, u.community_id, r.rater_level, r.rating, count(r.id) AS n
    FROM community_units u
    LEFT JOIN community_unit_ratings r ON r.unit_id = u.id AND r.period = :period
    WHERE u.community_id = ANY(:c) AND u.is_member AND (CAST(:unit AS bigint) IS NULL OR u.id = :unit)
    GROUP BY u.id, u.name, u.community_id, r.rater_level, r.rating
    ORDER BY u.community_id, u.id
    """
)
POINTS = {"excellent": 100, "qualified": 60, "unqualified": 0}


def verdict(exc: int, qual: int, unq: int) -> str | None:
    n = exc + qual + unq
    if n == 0:
        return None
    if 3 * unq > n:
        return "unqualified"
    if 2 * exc >= n:
        return "excellent"
    return "qualified"


async def summary(
    session: AsyncSession, communities: list[int], period: str, unit_id: int | None = None
) -> dict[str, Any]:
    units: dict[int, dict[str, Any]] = {}
    for r in await session.execute(_SUMMARY, {"c": communities, "period": period, "unit": unit_id}):
        u = units.setdefault(
            r.unit_id,
            {
                "unit_id": r.unit_id,
                "name": r.name,
                "community_id": r.community_id,
                "excellent": 0,
                "qualified": 0,
                "unqualified": 0,
                "by_level": {},
            },
        )
        if r.rating is None:
            continue
        u[r.rating] += r.n
        u["by_level"].setdefault(r.rater_level, {}).update({r.rating: r.n})
    totals = {"units": len(units), "rated": 0, "excellent": 0, "qualified": 0, "unqualified": 0}
    for u in units.values():
        n = u["excellent"] + u["qualified"] + u["unqualified"]
        u["ratings"] = n
        u["score"] = round(sum(POINTS[k] * u[k] for k in POINTS) / n, 1) if n else None
        u["result"] = verdict(u["excellent"], u["qualified"], u["unqualified"])
        if u["result"]:
            totals["rated"] += 1
            totals[u["result"]] += 1
    return {"period": period, "units": list(units.values()), "totals": totals}


_COVERAGE = text(
    """
    SELECT c.id AS community_id, c.name,
           (SELECT count(*) FROM community_units u
            WHERE u.community_id = c.id AND u.is_member AND u.active) AS member_units,
           coalesce((SELECT jsonb_object_agg(q.period, q.n) FROM (
               SELECT right(m.period, 2) AS period, count(*) AS n FROM community_meetings m
               WHERE m.community_id = c.id AND m.period LIKE :year || 'Q_' GROUP BY m.period) q),
               '{}') AS meetings
    FROM areas c WHERE c.id = ANY(:c) ORDER BY c.code
    """
)


async def coverage(
    session: AsyncSession, communities: list[int], year: int, today_period: str
) -> dict[str, Any]:
    """Which quarters of a year each community's big party committee met in ("at least
    quarterly"); quarters still to come are never missing."""
    out = []
    for r in await session.execute(_COVERAGE, {"c": communities, "year": str(year)}):
        meetings = {f"Q{q}": int(r.meetings.get(f"Q{q}", 0)) for q in range(1, 5)}
        missing = [
            f"{year}{q}"
            for q, n in meetings.items()
            if n == 0 and r.member_units > 0 and f"{year}{q}" <= today_period
        ]
        out.append(
            {
                "community_id": r.community_id,
                "name": r.name,
                "member_units": r.member_units,
                "meetings": meetings,
                "missing": missing,
            }
        )
    return {"year": year, "communities": out}


# --- as the routes see them -------------------------------------------------------------------


async def list_meetings(session: AsyncSession, area_id: int, period: str | None) -> list[Meeting]:
    return await rows_under(
        session, Meeting, area_id, order_by=(Meeting.held_at.desc(),), period=period
    )


async def meeting_detail(
    session: AsyncSession, communities: list[int], meeting_id: int, now: datetime
) -> dict[str, Any]:
    """A meeting with its resolutions (tracked tasks) and timeline."""
    m = await get_meeting(session, communities, meeting_id)
    await session.refresh(m)
    resolutions = await tracked.list_tasks(
        session, [m.community_id], now, source="meeting", ref_id=m.id
    )
    return {
        **{c.name: getattr(m, c.name) for c in Meeting.__table__.columns},
        "resolutions": [dict(t._mapping) for t in resolutions],
        "timeline": await records.timeline(session, "meeting", m.id),
    }


async def list_ratings(
    session: AsyncSession, area_id: int, period: str | None, unit_id: int | None
) -> list[UnitRating]:
    return await rows_under(
        session, UnitRating, area_id, order_by=(UnitRating.id,), period=period, unit_id=unit_id
    )


async def rate_unit(
    session: AsyncSession, area_id: int, body: RatingIn, who: Principal, request: Request | None
) -> UnitRating:
    c = await community_of(session, area_id)
    rid = await rate(session, c, body, who, request)
    return await row_under(session, UnitRating, c.id, rid, ("评议", "Rating"), fresh=True)
