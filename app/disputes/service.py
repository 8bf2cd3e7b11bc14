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
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.policy import Principal
from app.disputes.models import Dispute, FollowUp, Party, Session
from app.disputes.schemas import DisputeCreate, FollowUpIn, SessionIn
from app.errors import ApiError, not_found
from app.loop.deadlines import calendar

DUE_DAYS = {"low": 15, "medium": 10, "high": 5}
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
}

_GRID = text(
    "SELECT g.id, g.community_id, s.parent_id AS district_id FROM grids g "
    "JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id "
    "WHERE g.id = :id AND g.deleted_at IS NULL"
)


async def _party_name(session: AsyncSession, district: int, p: Any, i: int) -> str:
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


async def create(
    session: AsyncSession, grid_id: int, body: DisputeCreate, who: Principal, request: Any
) -> int:
    g = (await session.execute(_GRID, {"id": grid_id})).first()
    if g is None:
        raise not_found("网格", "Grid", grid_id)
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
        reported_by=who.user_id,
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
                name=await _party_name(session, g.district_id, p, i),
            )
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
    return d.id


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


async def refer(session: AsyncSession, d: Dispute, meeting_id: int) -> None:
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
    WITH RECURSIVE below AS (SELECT id FROM areas WHERE id = :area
        UNION ALL SELECT a.id FROM areas a JOIN below ON a.parent_id = below.id),
    d AS (SELECT * FROM disputes WHERE community_id IN (SELECT id FROM below)),
    p AS (SELECT resident_id, count(DISTINCT dispute_id) AS n FROM dispute_parties
          WHERE dispute_id IN (SELECT id FROM d) AND resident_id IS NOT NULL GROUP BY 1)
    SELECT count(*) AS screened,
           count(*) FILTER (WHERE risk = 'high') AS high_risk,
           count(*) FILTER (WHERE escalated_to IS NOT NULL) AS escalated,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM dispute_sessions s
                            WHERE s.dispute_id = d.id AND s.district_id = d.district_id)) AS mediated,
           count(*) FILTER (WHERE agreement IS NOT NULL) AS agreed,
           count(*) FILTER (WHERE status = 'closed') AS closed,
           (SELECT count(*) FROM p WHERE n > 1) AS repeat_parties,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM dispute_parties x JOIN p
                            ON p.resident_id = x.resident_id AND p.n > 1
                            WHERE x.dispute_id = d.id AND x.district_id = d.district_id))
               AS repeat_disputes
    FROM d
    """
)


async def figures(session: AsyncSession, area_id: int) -> dict[str, Any]:
    row = dict((await session.execute(_FIGURES, {"area": area_id})).one()._mapping)
    row["success_rate"] = round(row["closed"] / row["mediated"], 4) if row["mediated"] else None
    return {"area_id": area_id, **row}


async def tick(session: AsyncSession, now: datetime) -> dict[str, Any]:
    """The clock: disputes past their mediation deadline go to the centre."""
    gone = await session.execute(
        text(
            "UPDATE disputes SET escalated_to = 'centre', escalated_at = :now "
            "WHERE status IN ('screened', 'mediating') AND due_at < :now AND escalated_at IS NULL "
            "RETURNING id"
        ),
        {"now": now},
    )
    return {"escalated_disputes": len(gone.all())}
