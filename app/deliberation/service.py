"""Five-step deliberation as a small state machine:

proposed ─accept→ accepted ─consult→ consulting ─resolve→ resolved ─complete→ done ─close→ evaluated
   ├─merge→ merged                         └─resolve (voted down)→ failed
   └─reject→ rejected

Opinions and votes are recorded while consulting (one per participant); `resolve` needs the
quorum of participants and passes when more vote yes than no; the resolution's executors become
tracked tasks; `complete` needs every task done; residents rate the result while done; `close`
fixes the satisfaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import areas, records
from app.community import service as community_units
from app.community import tasks as tracked
from app.community.areas import Community, check_grid, rows_under
from app.deliberation.models import Matter, Opinion, Rating
from app.deliberation.schemas import ActionIn, OpinionIn, ProposalIn, RatingIn
from app.errors import ApiError, not_found
from app.loop.registry import Registry, Transition, transitions

# The routes resolve their paths through their own service.
communities_under = areas.communities_under
community_of = areas.community_of
grid_community = areas.grid_community

STEP = {
    "proposed": 1,
    "accepted": 2,
    "rejected": 2,
    "merged": 2,
    "consulting": 3,
    "failed": 3,
    "resolved": 4,
    "done": 5,
    "evaluated": 5,
}


async def propose(
    session: AsyncSession,
    community: Community,
    body: ProposalIn,
    channel: str,
    who: Principal | None,
    request: Request | None,
) -> int:
    await check_grid(session, community, body.grid_id)
    m = Matter(
        district_id=community.district_id,
        community_id=community.id,
        grid_id=body.grid_id,
        title=body.title,
        description=body.description,
        proposer=body.proposer,
        channel=channel,
        created_by=who.user_id if who else None,
    )
    session.add(m)
    await session.flush()
    await records.step(
        session,
        community,
        "matter",
        m.id,
        "proposed",
        who,
        note=m.title,
        detail={"channel": channel},
    )
    await records.audit(
        session,
        "community_matter_proposed",
        who,
        request,
        "community_matter",
        m.id,
        {"channel": channel},
    )
    await records.emit_community(
        session, "community.matter_proposed", community.id, {"matter_id": m.id, "channel": channel}
    )
    await session.flush()
    return m.id


async def get_matter(
    session: AsyncSession, communities: list[int], matter_id: int, lock: bool = False
) -> Matter:
    m = await session.get(Matter, matter_id, with_for_update=lock)
    if m is None or m.community_id not in communities:
        raise not_found("议事事项", "Matter", matter_id)
    return m


_TALLY = text(
    """
    SELECT count(*) AS participants, count(*) FILTER (WHERE vote = 'yes') AS yes,
           count(*) FILTER (WHERE vote = 'no') AS no, count(*) FILTER (WHERE vote = 'abstain') AS abstain
    FROM community_matter_opinions WHERE matter_id = :m
    """
)
_SATISFACTION = text(
    """
    SELECT count(*) AS ratings, count(*) FILTER (WHERE rating = 'satisfied') AS satisfied,
           count(*) FILTER (WHERE rating = 'basic') AS basic,
           count(*) FILTER (WHERE rating = 'unsatisfied') AS unsatisfied
    FROM community_matter_ratings WHERE matter_id = :m
    """
)


async def tally(session: AsyncSession, m: Matter) -> dict[str, Any]:
    return _tally_of(m, (await session.execute(_TALLY, {"m": m.id})).one())


async def satisfaction(session: AsyncSession, matter_id: int) -> dict[str, Any]:
    return _satisfaction_of((await session.execute(_SATISFACTION, {"m": matter_id})).one())


def _need(value: Any, field: str, zh: str, en: str) -> None:
    if value is None or value == [] or value == "":
        raise ApiError("validation_error", field=field, detail=zh, detail_en=en)


@dataclass
class MatterCtx:
    """What an action handler works on: it changes `matter` and adds to `detail`; `step_action`
    names the timeline step (the action, unless the handler says otherwise)."""

    session: AsyncSession
    community: Community
    matter: Matter
    body: ActionIn
    who: Principal
    now: datetime
    detail: dict[str, Any]
    step_action: str


ACTIONS: Registry[Transition[MatterCtx]] = Registry()
on = transitions(ACTIONS)


@on("accept", {"proposed"}, "The two committees accept the proposal (两委审议)")
async def _accept(ctx: MatterCtx) -> None:
    ctx.matter.status = "accepted"


@on("reject", {"proposed"}, "Not taken up, with the reason")
async def _reject(ctx: MatterCtx) -> None:
    reason = ctx.body.reason
    _need(reason, "reason", "不予受理需说明理由", "A rejection needs its reason")
    ctx.matter.status, ctx.matter.reason = "rejected", reason
    ctx.detail["reason"] = reason


@on("merge", {"proposed"}, "Merged into another live matter of the community")
async def _merge(ctx: MatterCtx) -> None:
    m, body = ctx.matter, ctx.body
    _need(body.merge_into_id, "merge_into_id", "需指明合并到的事项", "merge_into_id is required")
    into = await ctx.session.get(Matter, body.merge_into_id)
    if (
        into is None
        or into.id == m.id
        or into.community_id != ctx.community.id
        or into.status in ("merged", "rejected", "failed")
    ):
        raise ApiError(
            "validation_error",
            field="merge_into_id",
            detail="只能合并到本社区仍在议的其他事项",
            detail_en="A matter merges into another live matter of the same community",
        )
    m.status, m.merged_into_id = "merged", into.id
    ctx.detail["merge_into_id"] = into.id
    await records.step(
        ctx.session,
        ctx.community,
        "matter",
        into.id,
        "absorbed",
        ctx.who,
        note=m.title,
        detail={"matter_id": m.id},
    )


@on("consult", {"accepted"}, "Open the consultation: mode, quorum, closing day (民主商议)")
async def _consult(ctx: MatterCtx) -> None:
    m, body = ctx.matter, ctx.body
    _need(body.mode, "mode", "需指明协商方式（会议或线上）", "mode is required")
    _need(body.quorum, "quorum", "需设定参与人数下限", "quorum is required")
    until = None
    if body.consult_days is not None:
        until, _ = await tracked.workday_deadline(ctx.session, ctx.now, body.consult_days)
    m.status, m.mode, m.quorum, m.consult_until = "consulting", body.mode, body.quorum, until
    ctx.detail.update({"mode": body.mode, "quorum": body.quorum, "consult_until": until})


@on("resolve", {"consulting"}, "Count the votes: a resolution with its executors, or voted down")
async def _resolve(ctx: MatterCtx) -> None:
    m, body = ctx.matter, ctx.body
    t = await tally(ctx.session, m)
    ctx.detail["tally"] = t
    if not t["quorum_met"]:
        raise ApiError(
            "quorum_not_met",
            detail=f"参与 {t['participants']} 人，未达到 {m.quorum} 人",
            detail_en=f"{t['participants']} took part; {m.quorum} are needed",
            extra={"tally": t},
        )
    if not t["passed"]:
        m.status, m.reason = "failed", body.note or "表决未获通过"
        ctx.step_action = "voted_down"
        return
    _need(body.decision, "decision", "需写明决议内容", "decision is required")
    _need(body.executors, "executors", "需指明执行单位与期限", "executors are required")
    await community_units.check_units(
        ctx.session, ctx.community, [e.unit_id for e in body.executors], "executors"
    )
    m.status, m.decision, m.money, m.funding = "resolved", body.decision, body.money, body.funding
    ids = []
    for e in body.executors:
        task = await tracked.create_task(
            ctx.session,
            ctx.community,
            ctx.who,
            source="matter",
            ref_id=m.id,
            title=e.title,
            unit_id=e.unit_id,
            due_days=e.due_days,
            start=ctx.now,
        )
        ids.append(task.id)
    ctx.detail.update({"decision": body.decision, "money": body.money, "task_ids": ids})


@on("complete", {"resolved"}, "Every executor's task is done: open the evaluation")
async def _complete(ctx: MatterCtx) -> None:
    m = ctx.matter
    still_open = await tracked.open_task_ids(ctx.session, "matter", m.id)
    if still_open:
        raise records.state_conflict(
            f"还有 {len(still_open)} 项执行任务未完成",
            f"{len(still_open)} tasks of the resolution are still open",
            m.status,
            allowed(m.status),
            open_tasks=len(still_open),
        )
    m.status = "done"


@on("close", {"done"}, "Fix the residents' satisfaction (大众评议)")
async def _close(ctx: MatterCtx) -> None:
    m = ctx.matter
    s = await satisfaction(ctx.session, m.id)
    if not s["ratings"]:
        raise records.state_conflict(
            "还没有居民评议", "No resident has rated the result yet", m.status, allowed(m.status)
        )
    m.status = "evaluated"
    ctx.detail["satisfaction"] = s


MACHINE: dict[str, set[str]] = {
    **ACTIONS.machine(),
    "opinion": {"consulting"},
    "rate": {"done"},
}
"""Every action on a matter and where it may start: the registered ones, and the opinions and
ratings recorded on their own routes."""


def allowed(status: str) -> list[str]:
    return sorted(a for a, states in MACHINE.items() if status in states)


async def act(
    session: AsyncSession,
    community: Community,
    matter_id: int,
    action: str,
    body: ActionIn,
    who: Principal,
    request: Request | None,
    now: datetime,
) -> None:
    """Run one registered action on a matter: its state, its handler, then the step, the audit
    entry and the event every action leaves."""
    m = await get_matter(session, [community.id], matter_id, lock=True)
    records.check_state("议事事项", "matter", m.status, action, MACHINE)
    ctx = MatterCtx(session, community, m, body, who, now, {}, action)
    await ACTIONS[action].handler(ctx)
    done, detail = ctx.step_action, ctx.detail
    await records.step(session, community, "matter", m.id, done, who, note=body.note, detail=detail)
    await records.audit(
        session, f"community_matter_{done}", who, request, "community_matter", m.id, detail
    )
    await records.emit_community(
        session, "community.matter_" + done, community.id, {"matter_id": m.id, "status": m.status}
    )
    await session.flush()


async def add_opinion(
    session: AsyncSession,
    community: Community,
    matter_id: int,
    body: OpinionIn,
    who: Principal,
    request: Request | None,
    now: datetime,
) -> None:
    m = await get_matter(session, [community.id], matter_id, lock=True)
    records.check_state("议事事项", "matter", m.status, "opinion", MACHINE)
    if m.consult_until is not None and now > m.consult_until:
        raise ApiError(
            "state_conflict",
            detail="民主商议已截止，不再收集意见",
            detail_en="The consultation has closed",
            extra={
                "state": m.status,
                "allowed_actions": ["resolve"],
                "consult_until": m.consult_until.isoformat(),
            },
        )
    o = Opinion(
        district_id=community.district_id,
        community_id=community.id,
        matter_id=m.id,
        recorded_by=who.user_id,
        **body.model_dump(),
    )
    session.add(o)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ApiError(
            "conflict",
            field="participant",
            detail=f"{body.participant} 已经表达过意见（每人一票）",
            detail_en=f"{body.participant} has voted already (one vote each)",
        ) from None
    await records.step(
        session,
        community,
        "matter",
        m.id,
        "opinion",
        who,
        detail={"vote": body.vote, "channel": body.channel},
    )
    await records.audit(
        session,
        "community_matter_opinion",
        who,
        request,
        "community_matter",
        m.id,
        {"vote": body.vote},
    )
    await session.flush()


async def add_rating(
    session: AsyncSession,
    community: Community,
    matter_id: int,
    body: RatingIn,
    who: Principal,
    request: Request | None,
) -> None:
    m = await get_matter(session, [community.id], matter_id, lock=True)
    records.check_state("议事事项", "matter", m.status, "rate", MACHINE)
    session.add(
        Rating(
            district_id=community.district_id,
            community_id=community.id,
            matter_id=m.id,
            recorded_by=who.user_id,
            **body.model_dump(),
        )
    )
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ApiError(
            "conflict",
            field="participant",
            detail=f"{body.participant} 已经评议过",
            detail_en=f"{body.participant} has rated already",
        ) from None
    await records.step(
        session, community, "matter", m.id, "rated", who, detail={"rating": body.rating}
    )
    await records.audit(
        session,
        "community_matter_rated",
        who,
        request,
        "community_matter",
        m.id,
        {"rating": body.rating},
    )
    await session.flush()


def out(m: Matter) -> dict[str, Any]:
    return {
        **{c.name: getattr(m, c.name) for c in Matter.__table__.columns},
        "step": STEP[m.status],
    }


async def detail(
    session: AsyncSession, communities: list[int], matter_id: int, now: datetime
) -> dict[str, Any]:
    m = await get_matter(session, communities, matter_id)
    await session.refresh(m)
    opinions = (
        (
            await session.execute(
                select(Opinion).where(Opinion.matter_id == m.id).order_by(Opinion.id)
            )
        )
        .scalars()
        .all()
    )
    tasks = await tracked.list_tasks(session, [m.community_id], now, source="matter", ref_id=m.id)
    return {
        **out(m),
        "tally": await tally(session, m),
        "satisfaction": await satisfaction(session, m.id),
        "opinions": opinions,
        "tasks": [dict(t._mapping) for t in tasks],
        "timeline": await records.timeline(session, "matter", m.id),
        "allowed_actions": allowed(m.status),
    }


_BOARD_TASKS = text(
    """
    SELECT matter_id, count(*) AS tasks, count(*) FILTER (WHERE state = 'done') AS done,
           max(due_at) AS due_at
    FROM community_tasks WHERE matter_id = ANY(:ids) AND state <> 'cancelled'
    GROUP BY matter_id
    """
)


_BOARD_VOTES = text(
    """
    SELECT matter_id, count(*) AS participants, count(*) FILTER (WHERE vote = 'yes') AS yes,
           count(*) FILTER (WHERE vote = 'no') AS no, count(*) FILTER (WHERE vote = 'abstain') AS abstain
    FROM community_matter_opinions WHERE matter_id = ANY(:ids) GROUP BY matter_id
    """
)
_BOARD_RATINGS = text(
    """
    SELECT matter_id, count(*) AS ratings, count(*) FILTER (WHERE rating = 'satisfied') AS satisfied,
           count(*) FILTER (WHERE rating = 'basic') AS basic,
           count(*) FILTER (WHERE rating = 'unsatisfied') AS unsatisfied
    FROM community_matter_ratings WHERE matter_id = ANY(:ids) GROUP BY matter_id
    """
)


def _tally_of(m: Matter, t: Any) -> dict[str, Any]:
    n, yes, no, abstain = (t.participants, t.yes, t.no, t.abstain) if t else (0, 0, 0, 0)
    return {
        "participants": n,
        "yes": yes,
        "no": no,
        "abstain": abstain,
        "quorum": m.quorum,
        "quorum_met": m.quorum is not None and n >= m.quorum,
        "passed": yes > no,
    }


def _satisfaction_of(s: Any) -> dict[str, Any]:
    if s is None:
        return {"ratings": 0, "satisfied": 0, "basic": 0, "unsatisfied": 0, "rate": None}
    return {
        "ratings": s.ratings,
        "satisfied": s.satisfied,
        "basic": s.basic,
        "unsatisfied": s.unsatisfied,
        "rate": round((s.satisfied + s.basic) / s.ratings, 4) if s.ratings else None,
    }


async def board(
    session: AsyncSession,
    community: Community,
    step: int | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """The public board: the matters and where they stand, latest first, no personal data;
    `total` counts every matter at the `step` asked for (all steps when none), not only a page."""
    shown = [k for k, v in STEP.items() if k != "merged" and (step is None or v == step)]
    stmt = select(Matter).where(Matter.community_id == community.id, Matter.status.in_(shown))
    matters = (
        (
            await session.execute(
                stmt.order_by(Matter.updated_at.desc(), Matter.id.desc())
                .limit(limit)
                .offset(offset)
            )
        )
        .scalars()
        .all()
    )
    counts = {
        r.status: r.n
        for r in await session.execute(
            text(
                "SELECT status, count(*) AS n FROM community_matters WHERE community_id = :c "
                "AND status <> 'merged' GROUP BY status"
            ),
            {"c": community.id},
        )
    }
    c = {"ids": [m.id for m in matters]}
    tasks = {r.matter_id: r for r in await session.execute(_BOARD_TASKS, c)}
    votes = {r.matter_id: r for r in await session.execute(_BOARD_VOTES, c)}
    rates = {r.matter_id: r for r in await session.execute(_BOARD_RATINGS, c)}
    items = []
    for m in matters:
        t = tasks.get(m.id)
        at = STEP[m.status]
        items.append(
            {
                "id": m.id,
                "title": m.title,
                "status": m.status,
                "step": at,
                "proposed_at": m.created_at,
                "updated_at": m.updated_at,
                "tally": _tally_of(m, votes.get(m.id)) if at >= 3 else None,
                "consult_until": m.consult_until,
                "decision": m.decision,
                "money": m.money,
                "due_at": t.due_at if t else None,
                "tasks": t.tasks if t else 0,
                "tasks_done": t.done if t else 0,
                "satisfaction": _satisfaction_of(rates.get(m.id)) if at == 5 else None,
            }
        )
    return {
        "community_id": community.id,
        "community": community.name,
        "matters": items,
        "counts": counts,
        "total": sum(counts.get(k, 0) for k in shown),
        "limit": limit,
        "offset": offset,
    }


# --- lists as the routes see them -------------------------------------------------------------


async def list_matters(session: AsyncSession, area_id: int, status: str | None) -> list[Any]:
    rows = await rows_under(
        session, Matter, area_id, order_by=(Matter.id.desc(),), limit=2000, status=status
    )
    return [out(m) for m in rows]
