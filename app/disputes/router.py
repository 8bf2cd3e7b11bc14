"""/api/v1 — disputes (矛盾纠纷排查化解): screening in a grid, mediation, referral, follow-up,
closure, figures. Party names are masked for the centre (figures, not names)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BeforeValidator
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.basedata_scope import mask_name, person_view
from app.auth.policy import DisputeReader, DisputeWorker, Principal, area_or_404
from app.auth.scope import object_chain
from app.db import DbSession
from app.disputes import followups, service
from app.disputes.schemas import (
    DisputeCreate,
    DisputeFigures,
    DisputeOut,
    DisputePage,
    FollowUpIn,
    FollowUpQueue,
    ReferIn,
    ScreeningIn,
    SessionIn,
)
from app.http import ApiRoute
from app.schemas import MAX_ID, IdPath, strict_integer

AreaQuery = Annotated[int, Query(ge=1, le=MAX_ID), BeforeValidator(strict_integer)]

router = APIRouter(prefix="/api/v1", tags=["disputes"], route_class=ApiRoute)


async def _out(session: DbSession, who: Principal, dispute_id: IdPath) -> dict[str, Any]:
    d = await service.get(session, dispute_id)
    out = await service.detail(session, d)
    _, chain, grid, _, _ = await object_chain(session, "dispute_id", dispute_id)
    if not person_view(who, chain, grid, []).name_clear:
        out["parties"] = [
            {
                "id": p.id,
                "resident_id": p.resident_id,
                "organisation_id": p.organisation_id,
                "name": mask_name(p.name) if p.organisation_id is None else p.name,
            }
            for p in out["parties"]
        ]
    return out


def _answer(response: Response, did: int, new: bool) -> None:
    """201 with its Location; 200 for a resend with the same `client_id` (nothing added)."""
    response.headers["Location"] = f"/api/v1/disputes/{did}"
    if not new:
        response.status_code = status.HTTP_200_OK


_RESENT: dict[int | str, dict[str, Any]] = {
    200: {"description": "Already stored (the same `client_id`): nothing added"}
}


@router.post(
    "/grids/{grid_id}/disputes",
    response_model=DisputeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Report a dispute screened in a grid (high risk goes to the centre at once)",
    responses=_RESENT,
)
async def create_dispute(
    grid_id: IdPath,
    body: DisputeCreate,
    request: Request,
    session: DbSession,
    who: DisputeWorker,
    response: Response,
) -> Any:
    did, new = await service.create(session, grid_id, body, who, request)
    _answer(response, did, new)
    return await _out(session, who, did)


async def _screened(
    session: AsyncSession,
    source: str,
    source_id: int,
    body: ScreeningIn,
    who: Principal,
    request: Request,
    response: Response,
) -> Any:
    """A screening report raised on a visit or a patrol: the dispute, at its Location."""
    did, new = await service.screen(session, source, source_id, body, who, request)
    _answer(response, did, new)
    return await _out(session, who, did)


@router.post(
    "/visits/{visit_id}/disputes",
    response_model=DisputeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Raise a dispute screening report on a visit (矛盾排查: the visit's grid and person)",
    responses=_RESENT,
)
async def screen_on_visit(
    visit_id: IdPath,
    body: ScreeningIn,
    request: Request,
    session: DbSession,
    who: DisputeWorker,
    response: Response,
) -> Any:
    return await _screened(session, "visit", visit_id, body, who, request, response)


@router.post(
    "/patrols/{patrol_id}/disputes",
    response_model=DisputeOut,
    status_code=status.HTTP_201_CREATED,
    summary="Raise a dispute screening report on a patrol (the patrol's grid)",
    responses=_RESENT,
)
async def screen_on_patrol(
    patrol_id: IdPath,
    body: ScreeningIn,
    request: Request,
    session: DbSession,
    who: DisputeWorker,
    response: Response,
) -> Any:
    return await _screened(session, "patrol", patrol_id, body, who, request, response)


@router.get(
    "/me/dispute-followups",
    response_model=FollowUpQueue,
    summary="The follow-up visits (回访) one answers for, earliest first",
    description="Grid staff: their grids' disputes; the community's mediators: the community's; "
    "the street and the centre: the disputes of their areas escalated to the centre or referred "
    "to a joint review (会商研判). Each item says why (`reason`).",
)
async def followup_queue(session: DbSession, who: DisputeReader) -> Any:
    return {"items": await followups.queue(session, who)}


@router.get("/grids/{grid_id}/disputes", response_model=DisputePage, summary="A grid's disputes")
async def list_disputes(grid_id: IdPath, session: DbSession, who: DisputeReader) -> Any:
    items = [await service.detail(session, d) for d in await service.list_grid(session, grid_id)]
    _, chain, _, _, _ = await object_chain(session, "grid_id", grid_id)
    if not person_view(who, chain, grid_id, []).name_clear:
        for it in items:
            it["parties"] = [
                {
                    "id": p.id,
                    "resident_id": p.resident_id,
                    "organisation_id": p.organisation_id,
                    "name": mask_name(p.name),
                }
                for p in it["parties"]
            ]
    return {"items": items, "total": len(items)}


@router.get("/disputes/{dispute_id}", response_model=DisputeOut, summary="A dispute")
async def get_dispute(dispute_id: IdPath, session: DbSession, who: DisputeReader) -> Any:
    return await _out(session, who, dispute_id)


@router.post(
    "/disputes/{dispute_id}/sessions",
    response_model=DisputeOut,
    summary="Record a mediation session (agreed: the agreement, its signers, follow-ups planned)",
)
async def mediate(
    dispute_id: IdPath, body: SessionIn, session: DbSession, who: DisputeWorker
) -> Any:
    await service.mediate(session, await service.get(session, dispute_id), body, who)
    return await _out(session, who, dispute_id)


@router.post(
    "/disputes/{dispute_id}/refer",
    response_model=DisputeOut,
    summary="Refer to a joint review meeting of the community (会商研判)",
)
async def refer(dispute_id: IdPath, body: ReferIn, session: DbSession, who: DisputeWorker) -> Any:
    await service.refer(session, await service.get(session, dispute_id), body.meeting_id, who)
    return await _out(session, who, dispute_id)


@router.post(
    "/disputes/{dispute_id}/followups",
    response_model=DisputeOut,
    summary="Record a follow-up visit (回访): does the agreement hold?",
)
async def follow_up(
    dispute_id: IdPath, body: FollowUpIn, session: DbSession, who: DisputeWorker
) -> Any:
    await service.follow_up(session, await service.get(session, dispute_id), body, who)
    return await _out(session, who, dispute_id)


@router.post(
    "/disputes/{dispute_id}/close",
    response_model=DisputeOut,
    summary="Close a dispute (only after every follow-up held)",
)
async def close(
    dispute_id: IdPath, request: Request, session: DbSession, who: DisputeWorker
) -> Any:
    await service.close(session, await service.get(session, dispute_id), who, request)
    return await _out(session, who, dispute_id)


@router.get(
    "/dispute-figures",
    response_model=DisputeFigures,
    summary="Disputes screened, mediated, closed, success rate, repeat parties in an area",
)
async def dispute_figures(session: DbSession, who: DisputeReader, area_id: AreaQuery) -> Any:
    await area_or_404(session, who, "disputes:read", area_id)
    return await service.figures(session, area_id)
