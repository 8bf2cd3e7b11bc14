"""/api/v1 — the base data (基础信息): houses of buildings, households, residents (masked; a
reveal needs a purpose and is audited), organisations, the tag catalogue, the figures."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BeforeValidator
from sqlalchemy import text

from app.auth.basedata_scope import list_view
from app.auth.policy import (
    BasedataCatalogue,
    BasedataEraser,
    BasedataReader,
    BasedataWriter,
    Principal,
    RegistryReader,
    area_or_404,
)
from app.auth.scope import object_chain
from app.basedata import links, residents, service
from app.basedata.schemas import (
    CasePersonIn,
    CasePersonOut,
    EraseIn,
    Figures,
    HistoryOut,
    HouseCreate,
    HouseholdCreate,
    HouseholdOut,
    HouseOut,
    HousePage,
    HouseUpdate,
    MoveIn,
    OrganisationCreate,
    OrganisationOut,
    OrganisationPage,
    ResidentCreate,
    ResidentOut,
    ResidentPage,
    ResidentUpdate,
    RevealIn,
    RevealOut,
    TagCreate,
    TagOut,
    TombstoneOut,
    VisitPlan,
)
from app.db import DbSession
from app.errors import ApiError
from app.http import ApiRoute
from app.schemas import MAX_ID, IdPath, LimitQuery, OffsetQuery, page_limit, strict_integer

AreaQuery = Annotated[int, Query(ge=1, le=MAX_ID), BeforeValidator(strict_integer)]

router = APIRouter(prefix="/api/v1", tags=["base data"], route_class=ApiRoute)


# --- houses -------------------------------------------------------------------------------------


@router.get("/buildings/{building_id}/houses", response_model=HousePage, summary="Houses")
async def list_houses(
    building_id: IdPath,
    session: DbSession,
    who: BasedataReader,
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    limit = page_limit(limit)
    rows, total = await service.list_houses(session, building_id, limit, offset)
    return {
        "items": [service.house_out(r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post(
    "/buildings/{building_id}/houses",
    response_model=HouseOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a house (unit, floor, room) to a building",
)
async def create_house(
    building_id: IdPath,
    body: HouseCreate,
    request: Request,
    session: DbSession,
    who: BasedataWriter,
    response: Response,
) -> dict[str, Any]:
    house_id = await service.create_house(session, building_id, body, who, request)
    response.headers["Location"] = f"/api/v1/houses/{house_id}"
    return service.house_out(await service.get_house(session, house_id))


@router.get("/houses/{house_id}", response_model=HouseOut, summary="A house")
async def get_house(house_id: IdPath, session: DbSession, who: BasedataReader) -> dict[str, Any]:
    return service.house_out(await service.get_house(session, house_id))


@router.patch("/houses/{house_id}", response_model=HouseOut, summary="Change a house")
async def update_house(
    house_id: IdPath, body: HouseUpdate, session: DbSession, who: BasedataWriter
) -> dict[str, Any]:
    await service.update_house(session, house_id, body, who)
    return service.house_out(await service.get_house(session, house_id))


# --- households ---------------------------------------------------------------------------------


async def _household_out(
    session: DbSession, who: Principal, household_id: IdPath
) -> dict[str, Any]:
    hh = await service.get_household(session, household_id)
    members = await residents.household_members(session, household_id)
    hidden = await residents.sensitive_codes(session, hh.district_id)
    _, chain, grid, _, depts = await object_chain(session, "household_id", household_id)
    view = residents.person_view(who, chain, grid, depts)
    return {
        "id": hh.id,
        "house_id": hh.house_id,
        "building_id": hh.building_id,
        "grid_id": hh.grid_id,
        "number": hh.number,
        "ended_at": hh.ended_at,
        "members": [residents.resident_out(m, view, hidden) for m in members],
        "created_at": hh.created_at,
    }


@router.post(
    "/houses/{house_id}/households",
    response_model=HouseholdOut,
    status_code=status.HTTP_201_CREATED,
    summary="Register a household living in a house",
)
async def create_household(
    house_id: IdPath,
    body: HouseholdCreate,
    session: DbSession,
    who: BasedataWriter,
    response: Response,
) -> dict[str, Any]:
    hh = await service.create_household(session, house_id, body.number, who)
    response.headers["Location"] = f"/api/v1/households/{hh}"
    return await _household_out(session, who, hh)


@router.get("/households/{household_id}", response_model=HouseholdOut, summary="A household")
async def get_household(
    household_id: IdPath, session: DbSession, who: BasedataReader
) -> dict[str, Any]:
    return await _household_out(session, who, household_id)


# --- residents ----------------------------------------------------------------------------------


async def _resident_out(session: DbSession, who: Principal, resident_id: IdPath) -> dict[str, Any]:
    row = await residents.get_row(session, resident_id)
    view = await residents.view_of(session, who, resident_id)
    hidden = await residents.sensitive_codes(session, row.district_id)
    return residents.resident_out(row, view, hidden)


@router.post(
    "/households/{household_id}/residents",
    response_model=ResidentOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a person to a household (ID number and phone encrypted at rest)",
)
async def create_resident(
    household_id: IdPath,
    body: ResidentCreate,
    session: DbSession,
    who: BasedataWriter,
    response: Response,
) -> dict[str, Any]:
    rid = await residents.create_resident(session, household_id, body, who)
    response.headers["Location"] = f"/api/v1/residents/{rid}"
    return await _resident_out(session, who, rid)


@router.get(
    "/grids/{grid_id}/residents",
    response_model=ResidentPage,
    summary="A grid's residents, masked (exact search by ID number or phone via the keyed hash)",
)
async def list_residents(
    grid_id: IdPath,
    session: DbSession,
    who: BasedataReader,
    q: Annotated[str | None, Query(max_length=50, description="Name contains")] = None,
    tag: Annotated[str | None, Query(max_length=32)] = None,
    id_number: Annotated[str | None, Query(max_length=24)] = None,
    phone: Annotated[str | None, Query(max_length=24)] = None,
    status_: Annotated[
        str, Query(alias="status", pattern="^(active|moved_away|deceased)$")
    ] = "active",
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    limit = page_limit(limit)
    _, chain, _, _, _ = await object_chain(session, "grid_id", grid_id)
    district = await service.district_of_area(session, chain[0]) if chain else 0
    view = list_view(who, chain, grid_id)
    hidden = await residents.sensitive_codes(session, district)
    if tag in hidden and not view.sensitive_tags:
        raise ApiError("sensitive_tag_forbidden", field="tag")
    rows, total = await residents.list_grid(
        session,
        grid_id,
        district,
        q=q,
        tag=tag,
        id_number=id_number,
        phone=phone,
        status=status_,
        limit=limit,
        offset=offset,
    )
    items = [residents.resident_out(r, view, hidden) for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/residents/{resident_id}", response_model=ResidentOut, summary="A person, masked")
async def get_resident(
    resident_id: IdPath, session: DbSession, who: BasedataReader
) -> dict[str, Any]:
    return await _resident_out(session, who, resident_id)


@router.patch("/residents/{resident_id}", response_model=ResidentOut, summary="Change a person")
async def update_resident(
    resident_id: IdPath, body: ResidentUpdate, session: DbSession, who: BasedataWriter
) -> dict[str, Any]:
    await residents.update_resident(session, resident_id, body, who)
    return await _resident_out(session, who, resident_id)


@router.post(
    "/residents/{resident_id}/move",
    response_model=ResidentOut,
    summary="Move a person to another household (the history keeps both)",
)
async def move_resident(
    resident_id: IdPath, body: MoveIn, session: DbSession, who: BasedataWriter
) -> dict[str, Any]:
    await residents.move(session, resident_id, body.household_id, body.relation, who)
    return await _resident_out(session, who, resident_id)


@router.post(
    "/residents/{resident_id}/reveal",
    response_model=RevealOut,
    summary="Reveal a person's name, ID number or phone, with a purpose (audited)",
)
async def reveal_resident(
    resident_id: IdPath, body: RevealIn, request: Request, session: DbSession, who: BasedataReader
) -> dict[str, Any]:
    return await residents.reveal(session, resident_id, body.fields, body.purpose, who, request)


@router.get(
    "/residents/{resident_id}/history",
    response_model=HistoryOut,
    summary="Who changed what, when; the households the person lived in",
)
async def resident_history(
    resident_id: IdPath, session: DbSession, who: BasedataReader
) -> dict[str, Any]:
    return await residents.history(session, resident_id)


@router.post(
    "/residents/{resident_id}/erase",
    response_model=TombstoneOut,
    summary="Carry out a deletion request: the person's data removed, a tombstone left",
)
async def erase_resident(
    resident_id: IdPath, body: EraseIn, request: Request, session: DbSession, who: BasedataEraser
) -> Any:
    return await residents.erase(session, resident_id, body.reason, who, request)


# --- organisations ------------------------------------------------------------------------------


@router.get(
    "/buildings/{building_id}/organisations",
    response_model=OrganisationPage,
    summary="Organisations at a building",
)
async def list_organisations(
    building_id: IdPath,
    session: DbSession,
    who: BasedataReader,
    limit: LimitQuery = None,
    offset: OffsetQuery = 0,
) -> dict[str, Any]:
    limit = page_limit(limit)
    rows, total = await service.list_organisations(session, building_id, limit, offset)
    return {
        "items": [service.organisation_out(r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post(
    "/buildings/{building_id}/organisations",
    response_model=OrganisationOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add an organisation (shop, company, school…) at a building",
)
async def create_organisation(
    building_id: IdPath,
    body: OrganisationCreate,
    session: DbSession,
    who: BasedataWriter,
    response: Response,
) -> dict[str, Any]:
    oid = await service.create_organisation(session, building_id, body, who)
    response.headers["Location"] = f"/api/v1/organisations/{oid}"
    return service.organisation_out(await service.get_organisation(session, oid))


@router.get(
    "/organisations/{organisation_id}", response_model=OrganisationOut, summary="An organisation"
)
async def get_organisation(
    organisation_id: IdPath, session: DbSession, who: BasedataReader
) -> dict[str, Any]:
    return service.organisation_out(await service.get_organisation(session, organisation_id))


# --- the tag catalogue and the figures ----------------------------------------------------------


@router.get(
    "/areas/{area_id}/resident-tags",
    response_model=list[TagOut],
    summary="The district's catalogue of care and attention tags",
)
async def list_tags(area_id: IdPath, session: DbSession, who: RegistryReader) -> Any:
    return await service.tags_of(session, await service.district_of_area(session, area_id))


@router.post(
    "/areas/{area_id}/resident-tags",
    response_model=TagOut,
    status_code=status.HTTP_201_CREATED,
    summary="Add a tag to the district's catalogue",
)
async def create_tag(
    area_id: IdPath, body: TagCreate, request: Request, session: DbSession, who: BasedataCatalogue
) -> Any:
    return await service.create_tag(session, area_id, body, who, request)


async def _figures(session: DbSession, who: Principal, grids: list[int], chain: list[int]) -> Any:
    district = await service.district_of_area(session, chain[0]) if chain else 0
    view = list_view(who, chain, grids[0] if len(grids) == 1 else 0)
    hidden = set() if view.sensitive_tags else await residents.sensitive_codes(session, district)
    return await service.figures(session, grids, hidden)


@router.get(
    "/grids/{grid_id}/basedata/figures",
    response_model=Figures,
    summary="A grid's houses, households, population and tags (figures, no names)",
)
async def grid_figures(grid_id: IdPath, session: DbSession, who: BasedataReader) -> Any:
    _, chain, _, _, _ = await object_chain(session, "grid_id", grid_id)
    return {"grid_id": grid_id, **await _figures(session, who, [grid_id], chain)}


@router.get(
    "/basedata/figures",
    response_model=Figures,
    summary="An area's houses, households, population and tags (figures, no names)",
)
async def area_figures(session: DbSession, who: BasedataReader, area_id: AreaQuery) -> Any:
    chain = await area_or_404(session, who, "basedata:read", area_id)
    grids = await service.grids_below(session, area_id)
    return {"area_id": area_id, **await _figures(session, who, grids, chain)}


# --- cases and visits ---------------------------------------------------------------------------


@router.post(
    "/cases/{case_id}/persons",
    response_model=CasePersonOut,
    status_code=status.HTTP_201_CREATED,
    summary="Name a household or person of the base data in a case",
)
async def name_in_case(
    case_id: IdPath, body: CasePersonIn, session: DbSession, who: BasedataWriter
) -> Any:
    return await links.name_in_case(session, case_id, body, who)


@router.get(
    "/cases/{case_id}/persons",
    response_model=list[CasePersonOut],
    summary="The households and persons a case names",
)
async def case_persons(case_id: IdPath, session: DbSession, who: BasedataReader) -> Any:
    return await links.case_persons(session, case_id)


@router.get(
    "/me/visit-plan",
    response_model=VisitPlan,
    summary="Households of one's grids due a visit by their residents' tags (独居老人 weekly…)",
)
async def visit_plan(session: DbSession, who: BasedataReader) -> Any:
    now = (await session.execute(text("SELECT now()"))).scalar_one()
    return {"items": await links.visit_plan(session, who, now)}
