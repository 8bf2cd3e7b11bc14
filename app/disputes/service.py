"""Disputes (矛盾纠纷): screening, risk and escalation, mediation sessions, referral to a joint
review meeting, follow-up visits, closure, figures.

- **Risk**: a high-risk dispute goes to the centre at once (`escalated_to = 'centre'`); any other
  is due mediated within `DUE_DAYS[risk]` working days (the official calendar) and goes to the
  centre when that passes (the `disputes` job of the clock).
- **Mediation**: sessions with an outcome; `agreed` needs the agreement text and who signed it,
  and schedules the follow-up visits (`FOLLOW_UP_DAYS`, calendar days after the agreement).
- **Referral**: to a meeting of the dispute's community (会商研判); the dispute waits there.
- **Closure** only after every follow-up was made and held; one that does not hold sends the
  dispute back to mediation.
- **On the case engine**: every dispute is carried by a case of the 矛盾纠纷 class (`CATEGORY_OF`
  by kind; high risk `MD-06` 矛盾纠纷激化风险, urgency by risk) placed in its grid through the case
  intake, so it has a case number, a place on the map (private class: no point outside), the
  timeline with its hash chain and events, the loop's dispatch to departments (协调联动) and the
  evaluation's facts. Every dispute step is a step of that case (`app.loop.service.write_step`):
  `dispute_screened`/`dispute_escalated` (registered: the loop may whistle or dispatch it),
  `dispute_session` (handling while mediated and followed up; a failed mediation back to
  registered, for the loop's referral to departments), `dispute_referred`, `dispute_followup`,
  `dispute_closed` (closed). Never `feedback`: that state is the loop's on-site verification (a
  verification task for the grid's worker), which a dispute does not have.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.policy import RULES, Principal
from app.auth.scope import below_cte, covers, districts_at, object_chain
from app.basedata import links
from app.basedata.schemas import CasePersonIn
from app.cases import intake, managed
from app.cases.schemas import CaseCreate, LocationIn
from app.db import raw_of
from app.disputes.models import Dispute, FollowUp, Party, Session
from app.disputes.schemas import DisputeCreate, FollowUpIn, PartyIn, ScreeningIn, SessionIn
from app.errors import ApiError, not_found
from app.events import outbox
from app.loop.deadlines import calendar
from app.loop.service import write_step
from geo.crs import CRS

DUE_DAYS = {"low": 15, "medium": 10, "high": 5}
CATEGORY_OF = {
    "neighbour": "MD-01",
    "family": "MD-02",
    "land": "MD-03",
    "labour": "MD-04",
    "property": "MD-01",
    "contract": "MD-01",
    "other": "MD-01",
}
"""The category of the dispute's case by kind (contract and other disputes as 邻里纠纷's
mediation); a high-risk dispute is `HIGH_RISK_CATEGORY` whatever its kind."""
HIGH_RISK_CATEGORY = "MD-06"
REMOVED_NAME = "（已清除）"
"""A party's name once the person was reduced to figures or erased (retention)."""
URGENCY_OF = {"low": "normal", "medium": "urgent", "high": "critical"}
LOOP_OWNED = ("whistled", "dispatched", "signed_in", "returned", "suspended")
"""Case states in which departments hold the case (the loop's dispatch): a dispute step is
written on the timeline but leaves the case's state to the loop."""
ACTION_NAMES: dict[str, tuple[str, str]] = {
    "dispute_screened": ("纠纷排查上报", "dispute screened"),
    "dispute_escalated": ("高风险纠纷上报综治中心", "dispute escalated to the centre"),
    "dispute_session": ("纠纷调解", "mediation session"),
    "dispute_referred": ("提交会商研判", "referred to a joint review"),
    "dispute_followup": ("纠纷回访", "follow-up visit"),
    "dispute_closed": ("纠纷化解结案", "dispute closed"),
}
"""Labels of the dispute's case steps (registered in `app.extensions`)."""
FOLLOW_UP_DAYS = {"low": (30,), "medium": (7, 30), "high": (3, 7, 30)}

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "dispute_state": (409, "纠纷当前状态下不能执行该操作", "Not possible in the dispute's state"),
    "followup_pending": (
        409,
        "回访未完成或协议未履行，不能结案",
        "Follow-ups not done or not held",
    ),
    "agreement_required": (
        422,
        "调解成功须填写协议内容和签字人",
        "An agreement needs its text and signers",
    ),
    "dispute_case_action": (
        409,
        "矛盾纠纷事件须按调解、回访流程办理，不能直接执行该操作",
        "A dispute's case follows the dispute's lifecycle; this action is not allowed",
    ),
}
MANAGER = managed.Manager(
    kind="dispute",
    refuses=frozenset({"on_spot", "reject", "evaluate", "reopen", "marked_duplicate"}),
    code="dispute_case_action",
    name=("矛盾纠纷", "dispute"),
    instead=(
        "经调解、会商研判、回访，回访巩固后在纠纷中结案",
        "mediate, refer and follow it up, and close the dispute once the follow-ups hold",
    ),
)
"""The generic actions a dispute's case refuses (registered in `app.extensions`): handled on the
spot (no mediation), rejected, evaluated or marked a duplicate (closed without the follow-ups),
reopened (a closed dispute; a new conflict of the same parties is a new, repeat dispute). Whistle and
dispatch stay: the referral to departments (协调联动) is the loop's."""

_GRID = text(
    "SELECT g.id, g.community_id, s.parent_id AS district_id FROM grids g "
    "JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id "
    "WHERE g.id = :id AND g.deleted_at IS NULL"
)
_PLACE = text(
    """
    SELECT ST_X(p) AS lon, ST_Y(p) AS lat FROM (
        SELECT coalesce(
            (SELECT ST_PointOnSurface(b.geom) FROM residents r
             JOIN households hh ON hh.id = r.household_id AND hh.district_id = r.district_id
             JOIN houses h ON h.id = hh.house_id AND h.district_id = hh.district_id
             JOIN buildings b ON b.id = h.building_id AND b.grid_id = :g
             WHERE r.id = :r AND r.district_id = :d),
            (SELECT ST_PointOnSurface(gb.boundary) FROM grid_boundaries gb
             WHERE gb.grid_id = :g AND gb.valid_to IS NULL LIMIT 1)) AS p) x
    WHERE p IS NOT NULL
    """
)
_CASE = text("SELECT * FROM cases WHERE id = :id AND district_id = :d FOR UPDATE")


async def _case_of(session: AsyncSession, d: Dispute) -> Any:
    if d.case_id is None:
        return None
    return (await session.execute(_CASE, {"id": d.case_id, "d": d.district_id})).first()


async def step(
    session: AsyncSession,
    d: Dispute,
    name: str,
    who: Principal | None,
    to_status: str | None,
    note: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """A dispute step on its case's timeline; `to_status` None keeps the case's state, as does a
    case the loop has with departments (`LOOP_OWNED`), unless the dispute closes."""
    case = await _case_of(session, d)
    if case is None:
        return
    if to_status is None or (case.status in LOOP_OWNED and to_status != "closed"):
        to_status = case.status
    sets = None
    if to_status == "closed" and case.status != "closed":
        sets = {"closed_at": (await session.execute(text("SELECT now()"))).scalar_one()}
    await write_step(
        session,
        case,
        name,
        who,
        to_status=to_status,
        note=note,
        detail={"dispute_id": d.id, "dispute_status": d.status, **(detail or {})},
        sets=sets,
        permission="disputes:work" if who is not None else None,
        keep=("dispute_id", "dispute_status", "risk", "outcome", "holds", "meeting_id"),
    )


async def _open_case(
    session: AsyncSession, d: Dispute, body: DisputeCreate, who: Principal
) -> int | None:
    """The dispute's case, placed at the first named person's building in the grid or on the
    grid's boundary; None for a grid without a boundary (nowhere to place it)."""
    first = next((p.resident_id for p in body.parties if p.resident_id is not None), None)
    at = (await session.execute(_PLACE, {"g": d.grid_id, "r": first, "d": d.district_id})).first()
    if at is None:
        return None
    data = CaseCreate(
        category=HIGH_RISK_CATEGORY if d.risk == "high" else CATEGORY_OF[d.kind],
        title=d.title,
        description=d.summary or "",
        location=LocationIn(lon=at.lon, lat=at.lat, crs=CRS.WGS84),
        urgency=URGENCY_OF[d.risk],  # type: ignore[arg-type]
    )
    channel = "hotline" if d.source == "hotline" else "app"
    async with raw_of(await session.connection()) as raw:
        case, _ = await intake.insert_case(raw, data, who.user_id, channel)
    outbox.queued(session)
    await managed.mark(session, case, MANAGER.kind)
    return int(case.id)


async def _party_name(session: AsyncSession, district: int, p: Any, i: int, who: Principal) -> str:
    """The party's name at the time: a person or organisation the caller reaches (need-to-know:
    `basedata:read` over it, as reading it would need), or the free name."""
    for kind in ("resident_id", "organisation_id"):
        oid = getattr(p, kind)
        if oid is None:
            continue
        found, chain, grid, _, _ = await object_chain(session, kind, oid)
        if not found or not covers(who, RULES["basedata:read"], chain, grid):
            raise ApiError(
                "validation_error",
                field=f"parties[{i}].{kind}",
                detail="当事人不存在或不在您的网格内",
                detail_en="No such person or organisation in your grids",
            )
    if p.resident_id is not None:
        name = (
            await session.execute(
                text("SELECT name FROM residents WHERE id = :i AND district_id = :d"),
                {"i": p.resident_id, "d": district},
            )
        ).scalar()
    elif p.organisation_id is not None:
        name = (
            await session.execute(
                text("SELECT name FROM organisations WHERE id = :i AND district_id = :d"),
                {"i": p.organisation_id, "d": district},
            )
        ).scalar()
    else:
        name = p.name
    if not name:
        raise ApiError(
            "validation_error",
            field=f"parties[{i}]",
            detail="当事人须为本区的人员、单位或给出姓名",
            detail_en="A party is a person or organisation of the district, or a name",
        )
    return str(name)


async def _check_link(
    session: AsyncSession, table: str, field: str, value: int | None, g: Any
) -> None:
    """A visit or patrol named by a screening report is one of the dispute's grid."""
    if value is None:
        return
    ok = (
        await session.execute(
            text(f"SELECT 1 FROM {table} WHERE id = :i AND district_id = :d AND grid_id = :g"),
            {"i": value, "d": g.district_id, "g": g.id},
        )
    ).scalar()
    if not ok:
        raise ApiError(
            "validation_error",
            field=field,
            detail="走访或巡查不存在或不在该网格",
            detail_en="No such visit or patrol in this grid",
        )


_SOURCE = {
    "visit": text("SELECT id, grid_id, resident_id FROM visits WHERE id = :i"),
    "patrol": text("SELECT id, grid_id, NULL::bigint AS resident_id FROM patrols WHERE id = :i"),
}


async def screen(
    session: AsyncSession,
    source: str,
    source_id: int,
    body: ScreeningIn,
    who: Principal,
    request: Any,
) -> tuple[int, bool]:
    """A screening report raised on a visit or a patrol (排查上报): a dispute of its grid, its
    source and link set; without parties, the person the visit names."""
    row = (await session.execute(_SOURCE[source], {"i": source_id})).first()
    if row is None:
        raise not_found("走访" if source == "visit" else "巡查", source.title(), source_id)
    parties = list(body.parties)
    if not parties and row.resident_id is not None:
        parties = [PartyIn(resident_id=row.resident_id)]
    if not parties:
        raise ApiError(
            "validation_error",
            field="parties",
            detail="须列出当事人（走访未记录人员）",
            detail_en="Name the parties (the visit names no person)",
        )
    data = DisputeCreate(
        title=body.title,
        summary=body.summary,
        kind=body.kind,
        risk=body.risk,
        source=source,  # type: ignore[arg-type]
        visit_id=source_id if source == "visit" else None,
        patrol_id=source_id if source == "patrol" else None,
        parties=parties,
        client_id=body.client_id,
    )
    return await create(session, int(row.grid_id), data, who, request)


async def create(
    session: AsyncSession, grid_id: int, body: DisputeCreate, who: Principal, request: Any
) -> tuple[int, bool]:
    """(the dispute, whether it was stored now: a resend with the same `client_id` answers the
    one stored the first time)."""
    g = (await session.execute(_GRID, {"id": grid_id})).first()
    if g is None:
        raise not_found("网格", "Grid", grid_id)
    if body.client_id is not None:
        old = (
            await session.execute(
                text(
                    "SELECT id FROM disputes WHERE district_id = :d AND reported_by = :w "
                    "AND client_id = :c"
                ),
                {"d": g.district_id, "w": who.user_id, "c": body.client_id},
            )
        ).scalar()
        if old is not None:
            return int(old), False
    await _check_link(session, "visits", "visit_id", body.visit_id, g)
    await _check_link(session, "patrols", "patrol_id", body.patrol_id, g)
    now = (await session.execute(text("SELECT now()"))).scalar_one()
    due = (await calendar(session)).add_working_days(now, DUE_DAYS[body.risk]).at
    d = Dispute(
        district_id=g.district_id,
        community_id=g.community_id,
        grid_id=grid_id,
        title=body.title,
        summary=body.summary,
        kind=body.kind,
        risk=body.risk,
        source=body.source,
        visit_id=body.visit_id,
        patrol_id=body.patrol_id,
        reported_by=who.user_id,
        client_id=body.client_id,
        due_at=due,
    )
    if body.risk == "high":
        d.escalated_to, d.escalated_at = "centre", now
    session.add(d)
    await session.flush()
    for i, p in enumerate(body.parties):
        session.add(
            Party(
                district_id=g.district_id,
                dispute_id=d.id,
                resident_id=p.resident_id,
                organisation_id=p.organisation_id,
                name=await _party_name(session, g.district_id, p, i, who),
            )
        )
    d.case_id = await _open_case(session, d, body, who)
    await session.flush()
    if d.case_id is not None:  # the persons the case names: a department it goes to sees them
        for rid in dict.fromkeys(p.resident_id for p in body.parties if p.resident_id):
            await links.name_in_case(session, d.case_id, CasePersonIn(resident_id=rid), who)
    await step(
        session,
        d,
        "dispute_escalated" if body.risk == "high" else "dispute_screened",
        who,
        "registered",
        note=body.summary or "",
        detail={"risk": body.risk, "kind": body.kind, "escalated_to": d.escalated_to},
    )
    await record(
        session,
        "dispute_escalated" if body.risk == "high" else "dispute_screened",
        actor=who,
        request=request,
        object_type="dispute",
        object_id=d.id,
        detail={"risk": body.risk, "kind": body.kind, "escalated_to": d.escalated_to},
    )
    return d.id, True


async def get(session: AsyncSession, dispute_id: int) -> Dispute:
    d = await session.scalar(select(Dispute).where(Dispute.id == dispute_id))
    if d is None:
        raise not_found("纠纷", "Dispute", dispute_id)
    return d


async def detail(session: AsyncSession, d: Dispute) -> dict[str, Any]:
    def rows(model: Any, order: Any) -> Any:
        return (
            select(model)
            .where(model.district_id == d.district_id, model.dispute_id == d.id)
            .order_by(order)
        )

    out = {c.name: getattr(d, c.name) for c in Dispute.__table__.columns}
    out["case_number"] = (
        (
            await session.execute(
                text("SELECT number FROM cases WHERE id = :c AND district_id = :d"),
                {"c": d.case_id, "d": d.district_id},
            )
        ).scalar()
        if d.case_id is not None
        else None
    )
    out["parties"] = list((await session.execute(rows(Party, Party.id))).scalars())
    out["sessions"] = list((await session.execute(rows(Session, Session.at))).scalars())
    out["followups"] = list((await session.execute(rows(FollowUp, FollowUp.n))).scalars())
    return out


async def mediate(session: AsyncSession, d: Dispute, body: SessionIn, who: Principal) -> None:
    if d.status not in ("screened", "mediating", "referred"):
        raise ApiError("dispute_state", field="outcome")
    if body.outcome == "agreed" and not (body.agreement and body.signed_by):
        raise ApiError(
            "agreement_required", field="agreement" if not body.agreement else "signed_by"
        )
    s = Session(
        district_id=d.district_id, dispute_id=d.id, mediator_id=who.user_id, **body.model_dump()
    )
    session.add(s)
    await session.flush()
    if body.outcome == "agreed":
        d.status, d.agreement = "follow_up", body.agreement
        at = (await session.execute(text("SELECT now()"))).scalar_one()
        for n, days in enumerate(FOLLOW_UP_DAYS[d.risk], start=1):
            session.add(
                FollowUp(
                    district_id=d.district_id,
                    dispute_id=d.id,
                    n=n,
                    due_at=at + timedelta(days=days),
                )
            )
    elif body.outcome == "failed":
        d.status = "failed"
    else:
        d.status = "mediating"
    await step(
        session,
        d,
        "dispute_session",
        who,
        "registered" if body.outcome == "failed" else "handling",
        note=body.note or "",
        detail={"outcome": body.outcome, "session_id": s.id},
    )


async def refer(
    session: AsyncSession, d: Dispute, meeting_id: int, who: Principal | None = None
) -> None:
    if d.status not in ("screened", "mediating", "failed"):
        raise ApiError("dispute_state", field="meeting_id")
    ok = (
        await session.execute(
            text("SELECT 1 FROM community_meetings WHERE id = :m AND community_id = :c"),
            {"m": meeting_id, "c": d.community_id},
        )
    ).scalar()
    if not ok:
        raise ApiError(
            "validation_error",
            field="meeting_id",
            detail="会议不存在或不属于本社区",
            detail_en="No such meeting in the dispute's community",
        )
    d.meeting_id, d.status = meeting_id, "referred"
    await step(session, d, "dispute_referred", who, None, detail={"meeting_id": meeting_id})


async def follow_up(session: AsyncSession, d: Dispute, body: FollowUpIn, who: Principal) -> None:
    f = await session.scalar(
        select(FollowUp).where(
            FollowUp.district_id == d.district_id, FollowUp.dispute_id == d.id, FollowUp.n == body.n
        )
    )
    if f is None or d.status != "follow_up":
        raise ApiError("dispute_state", field="n")
    f.done_at = func.now()  # type: ignore[assignment]
    f.holds, f.note, f.worker_id = body.holds, body.note, who.user_id
    if not body.holds:
        d.status = "mediating"  # the agreement did not hold: back to mediation
    await step(
        session,
        d,
        "dispute_followup",
        who,
        None if body.holds else "handling",
        note=body.note or "",
        detail={"n": body.n, "holds": body.holds},
    )


async def close(session: AsyncSession, d: Dispute, who: Principal, request: Any) -> None:
    fs = list(
        (
            await session.execute(
                select(FollowUp).where(
                    FollowUp.district_id == d.district_id, FollowUp.dispute_id == d.id
                )
            )
        ).scalars()
    )
    if d.status != "follow_up" or not fs or not all(f.done_at and f.holds for f in fs):
        raise ApiError("followup_pending")
    d.status, d.closed_at = "closed", func.now()  # type: ignore[assignment]
    await step(session, d, "dispute_closed", who, "closed")
    await record(
        session, "dispute_closed", actor=who, request=request, object_type="dispute", object_id=d.id
    )


async def list_grid(session: AsyncSession, grid_id: int) -> list[Dispute]:
    g = (await session.execute(_GRID, {"id": grid_id})).first()
    if g is None:
        return []
    return list(
        (
            await session.execute(
                select(Dispute)
                .where(Dispute.district_id == g.district_id, Dispute.grid_id == grid_id)
                .order_by(Dispute.reported_at.desc(), Dispute.id.desc())
                .limit(500)
            )
        ).scalars()
    )


_FIGURES = text(
    """
    WITH """
    + below_cte()
    + """,
    d AS MATERIALIZED (
        SELECT id, risk, escalated_to, agreement, status FROM disputes
        WHERE district_id = ANY(CAST(:districts AS bigint[]))
          AND community_id IN (SELECT id FROM below)),
    m AS MATERIALIZED (
        SELECT DISTINCT dispute_id FROM dispute_sessions
        WHERE district_id = ANY(CAST(:districts AS bigint[])) AND dispute_id IN (SELECT id FROM d)),
    x AS MATERIALIZED (
        SELECT DISTINCT dispute_id, resident_id FROM dispute_parties
        WHERE district_id = ANY(CAST(:districts AS bigint[])) AND dispute_id IN (SELECT id FROM d)
          AND resident_id IS NOT NULL),
    r AS (SELECT resident_id FROM x GROUP BY resident_id HAVING count(*) > 1)
    SELECT count(*) AS screened,
           count(*) FILTER (WHERE risk = 'high') AS high_risk,
           count(*) FILTER (WHERE escalated_to IS NOT NULL) AS escalated,
           count(*) FILTER (WHERE id IN (SELECT dispute_id FROM m)) AS mediated,
           count(*) FILTER (WHERE agreement IS NOT NULL) AS agreed,
           count(*) FILTER (WHERE status = 'closed') AS closed,
           (SELECT count(*) FROM r) AS repeat_parties,
           count(*) FILTER (WHERE id IN (SELECT dispute_id FROM x
                                         WHERE resident_id IN (SELECT resident_id FROM r)))
               AS repeat_disputes
    FROM d
    """
)
"""The case side is read in the area's districts (`districts_at`) into results of their own
(`MATERIALIZED`: on Citus each is one distributed statement, the rest runs on the coordinator;
a subquery correlated to the disputes would be a join Citus cannot plan)."""


async def figures(session: AsyncSession, area_id: int) -> dict[str, Any]:
    districts = await districts_at(session, area_id)
    row = dict(
        (await session.execute(_FIGURES, {"area": area_id, "districts": districts})).one()._mapping
    )
    row["success_rate"] = round(row["closed"] / row["mediated"], 4) if row["mediated"] else None
    return {"area_id": area_id, **row}


_DISTRICTS = text("SELECT id FROM areas WHERE level = 'district' ORDER BY id")


async def tick(session: AsyncSession, now: datetime) -> dict[str, Any]:
    """The clock: disputes past their mediation deadline go to the centre. District by
    district: `SKIP LOCKED` works within one shard (Citus refuses it across shards)."""
    gone: list[Dispute] = []
    for district in (await session.execute(_DISTRICTS)).scalars().all():
        gone += (
            await session.execute(
                select(Dispute)
                .where(
                    Dispute.district_id == district,
                    Dispute.status.in_(("screened", "mediating")),
                    Dispute.due_at < now,
                    Dispute.escalated_at.is_(None),
                )
                .order_by(Dispute.due_at)
                .limit(500)
                .with_for_update(skip_locked=True)
            )
        ).scalars()
    for d in gone:
        d.escalated_to, d.escalated_at = "centre", now
        await step(session, d, "dispute_escalated", None, None, detail={"overdue": True})
    return {"escalated_disputes": len(gone)}
