"""Five-step deliberation (五议工作法): proposals from grid workers, community staff or the public
QR form; the two committees' review, consultation, resolution and evaluation by community staff;
a public board per community (no personal data)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from app.auth.policy import CommunityCollector, CommunityManager, CommunityReader, Public
from app.db import DbSession
from app.deliberation import service
from app.deliberation.schemas import (
    ActionIn,
    Board,
    MatterAction,
    MatterDetail,
    MatterOut,
    MatterStatus,
    OpinionIn,
    ProposalIn,
    ProposalReceipt,
    RatingIn,
)
from app.http import ApiRoute
from app.i18n import request_lang
from app.responses import json_response
from app.schemas import IdPath

router = APIRouter(
    prefix="/api/v1",
    tags=["community deliberation"],
    route_class=ApiRoute,
    dependencies=[Depends(request_lang)],
)


def _now() -> datetime:
    return datetime.now(UTC)


@router.get(
    "/areas/{area_id}/matters", response_model=list[MatterOut], summary="Deliberated matters"
)
async def list_matters(
    area_id: IdPath,
    session: DbSession,
    who: CommunityReader,
    status_: MatterStatus | None = Query(None, alias="status"),
) -> Any:
    return await service.list_matters(session, area_id, status_)


@router.post(
    "/areas/{area_id}/matters",
    response_model=MatterDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Record a resident's proposal (居民提议) received by the community",
)
async def propose(
    area_id: IdPath,
    body: ProposalIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
    response: Response,
) -> Any:
    c = await service.community_of(session, area_id)
    mid = await service.propose(session, c, body, "community", who, request)
    response.headers["Location"] = f"/api/v1/areas/{c.id}/matters/{mid}"
    return await service.detail(session, [c.id], mid, _now())


@router.post(
    "/grids/{grid_id}/proposals",
    response_model=MatterDetail,
    status_code=status.HTTP_201_CREATED,
    summary="A grid worker brings in a resident's proposal",
)
async def grid_proposal(
    grid_id: IdPath,
    body: ProposalIn,
    request: Request,
    session: DbSession,
    who: CommunityCollector,
    response: Response,
) -> Any:
    c = await service.grid_community(session, grid_id)
    body = body.model_copy(update={"grid_id": grid_id})
    mid = await service.propose(session, c, body, "grid_worker", who, request)
    response.headers["Location"] = f"/api/v1/areas/{c.id}/matters/{mid}"
    return await service.detail(session, [c.id], mid, _now())


@router.post(
    "/grids/{grid_id}/matters/{matter_id}/opinions",
    response_model=MatterDetail,
    status_code=status.HTTP_201_CREATED,
    summary="A grid worker records a resident's opinion and vote (online consultation)",
    responses={409: {"description": "Not consulting, or the participant voted already"}},
)
async def grid_opinion(
    grid_id: IdPath,
    matter_id: IdPath,
    body: OpinionIn,
    request: Request,
    session: DbSession,
    who: CommunityCollector,
) -> Any:
    c = await service.grid_community(session, grid_id)
    await service.add_opinion(session, c, matter_id, body, who, request, _now())
    return await service.detail(session, [c.id], matter_id, _now())


@router.post(
    "/grids/{grid_id}/matters/{matter_id}/ratings",
    response_model=MatterDetail,
    status_code=status.HTTP_201_CREATED,
    summary="A grid worker records a resident's rating of the result (大众评议)",
    responses={409: {"description": "Not done yet, or the participant rated already"}},
)
async def grid_rating(
    grid_id: IdPath,
    matter_id: IdPath,
    body: RatingIn,
    request: Request,
    session: DbSession,
    who: CommunityCollector,
) -> Any:
    c = await service.grid_community(session, grid_id)
    await service.add_rating(session, c, matter_id, body, who, request)
    return await service.detail(session, [c.id], matter_id, _now())


@router.get(
    "/areas/{area_id}/matters/{matter_id}",
    response_model=MatterDetail,
    summary="A matter: tally, opinions, tasks, satisfaction, timeline",
)
async def get_matter(
    area_id: IdPath, matter_id: IdPath, session: DbSession, who: CommunityReader
) -> Any:
    return await service.detail(
        session, await service.communities_under(session, area_id), matter_id, _now()
    )


@router.post(
    "/areas/{area_id}/matters/{matter_id}/actions/{action}",
    response_model=MatterDetail,
    summary="Review (accept, merge, reject), open the consultation, resolve, complete, close",
    responses={409: {"description": "Not allowed in the matter's state, or the quorum is not met"}},
)
async def matter_action(
    area_id: IdPath,
    matter_id: IdPath,
    action: MatterAction,
    body: ActionIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await service.community_of(session, area_id)
    await service.act(session, c, matter_id, action, body, who, request, _now())
    return await service.detail(session, [c.id], matter_id, _now())


@router.post(
    "/areas/{area_id}/matters/{matter_id}/opinions",
    response_model=MatterDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Record a participant's opinion and vote (民主商议), one each",
    responses={409: {"description": "Not consulting, or the participant voted already"}},
)
async def add_opinion(
    area_id: IdPath,
    matter_id: IdPath,
    body: OpinionIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await service.community_of(session, area_id)
    await service.add_opinion(session, c, matter_id, body, who, request, _now())
    return await service.detail(session, [c.id], matter_id, _now())


@router.post(
    "/areas/{area_id}/matters/{matter_id}/ratings",
    response_model=MatterDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Record a resident's rating of the result (大众评议), one each",
    responses={409: {"description": "Not done yet, or the participant rated already"}},
)
async def add_rating(
    area_id: IdPath,
    matter_id: IdPath,
    body: RatingIn,
    request: Request,
    session: DbSession,
    who: CommunityManager,
) -> Any:
    c = await service.community_of(session, area_id)
    await service.add_rating(session, c, matter_id, body, who, request)
    return await service.detail(session, [c.id], matter_id, _now())


@router.get(
    "/public/areas/{area_id}/board",
    response_model=Board,
    summary="The community's public deliberation board: matters and where they stand",
)
async def public_board(
    area_id: IdPath,
    session: DbSession,
    who: Public,
    step: int | None = Query(None, ge=1, le=5, description="1 提议 … 5 评议"),
    limit: int = Query(100, ge=1, le=500),
    offset: int = Query(0, ge=0, le=100_000),
) -> Any:
    c = await service.community_of(session, area_id)
    return json_response(Board, await service.board(session, c, step, limit, offset))


@router.post(
    "/public/areas/{area_id}/proposals",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ProposalReceipt,
    summary="A resident's proposal from the community's QR form",
)
async def public_proposal(
    area_id: IdPath, body: ProposalIn, request: Request, session: DbSession, who: Public
) -> Any:
    c = await service.community_of(session, area_id)
    mid = await service.propose(session, c, body, "qr_form", None, request)
    return {"id": mid, "status": "proposed", "board": f"/api/v1/public/areas/{c.id}/board"}
