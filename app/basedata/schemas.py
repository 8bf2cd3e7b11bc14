from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas import Id, LocalTime, RequestModel, ResponseModel

Use = Literal["residential", "shop", "office", "vacant"]
Tenure = Literal["owned", "rented", "public", "other"]
Relation = Literal["head", "spouse", "child", "parent", "grandchild", "sibling", "tenant", "other"]
OrgKind = Literal["shop", "company", "school", "social", "government", "other"]
Revealable = Literal["name", "id_number", "phone"]
TagCode = str


class HouseCreate(RequestModel):
    unit: str = Field("", max_length=20, description="单元 (empty when the building has none)")
    floor: int = Field(ge=-5, le=200)
    room: str = Field(min_length=1, max_length=20)
    use: Use = "residential"
    tenure: Tenure = "owned"
    area_m2: float | None = Field(None, gt=0, le=100_000)


class HouseUpdate(RequestModel):
    use: Use | None = None
    tenure: Tenure | None = None
    area_m2: float | None = Field(None, gt=0, le=100_000)


class HouseOut(ResponseModel):
    id: int
    building_id: int
    grid_id: int
    unit: str
    floor: int
    room: str
    use: Use
    tenure: Tenure
    area_m2: float | None
    households: int = Field(description="Households living in it now")
    created_at: LocalTime
    updated_at: LocalTime


class HousePage(ResponseModel):
    items: list[HouseOut]
    total: int
    limit: int
    offset: int


class HouseholdCreate(RequestModel):
    number: str | None = Field(None, max_length=32, description="户号 (household register number)")


class ResidentCreate(RequestModel):
    name: str = Field(min_length=1, max_length=50)
    id_number: str | None = Field(
        None, max_length=24, description="18-character resident ID (check digit verified)"
    )
    phone: str | None = Field(None, max_length=24, description="Mobile or landline with area code")
    gender: Literal["M", "F"] | None = Field(None, description="Read from the ID number if omitted")
    birth_year: int | None = Field(None, ge=1900, le=2100)
    relation: Relation = "other"
    registered: bool = Field(True, description="户籍: the household register is here")
    living: bool = Field(True, description="实有: actually lives here")
    tags: list[TagCode] = Field(default_factory=list, max_length=20)


class ResidentUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=50)
    id_number: str | None = Field(None, max_length=24)
    phone: str | None = Field(None, max_length=24)
    relation: Relation | None = None
    registered: bool | None = None
    living: bool | None = None
    tags: list[TagCode] | None = Field(None, max_length=20)
    status: Literal["active", "moved_away", "deceased"] | None = None


class ResidentOut(ResponseModel):
    id: int
    household_id: int | None
    house_id: int | None
    grid_id: int | None
    name: str | None = Field(description="Clear for grid and area staff, masked for the centre")
    name_masked: bool
    id_number: str | None = Field(description="Masked (360602********123X); reveal to see it")
    phone: str | None = Field(description="Masked (138****5678); reveal to see it")
    gender: str | None
    birth_year: int | None
    relation: Relation
    registered: bool
    living: bool
    tags: list[str] = Field(description="Sensitive tags only for basedata:sensitive")
    status: str
    moved_at: LocalTime | None
    demo: bool
    created_at: LocalTime
    updated_at: LocalTime


class ResidentPage(ResponseModel):
    items: list[ResidentOut]
    total: int
    limit: int
    offset: int


class HouseholdOut(ResponseModel):
    id: int
    house_id: int
    building_id: int
    grid_id: int
    number: str | None
    ended_at: LocalTime | None
    members: list[ResidentOut]
    created_at: LocalTime


class MoveIn(RequestModel):
    household_id: Id = Field(description="The household the person moves to (any of your grids)")
    relation: Relation = "other"


class RevealIn(RequestModel):
    fields: list[Revealable] = Field(min_length=1, max_length=3)
    purpose: str = Field(min_length=4, max_length=200, description="Why (audited)")


class RevealOut(ResponseModel):
    id: int
    name: str | None = None
    id_number: str | None = None
    phone: str | None = None
    purpose: str


class EraseIn(RequestModel):
    reason: str = Field(min_length=4, max_length=500, description="The deletion request (audited)")


class TombstoneOut(ResponseModel):
    id: int
    resident_id: int
    grid_id: int | None
    reason: str
    deleted_at: LocalTime


class OrganisationCreate(RequestModel):
    name: str = Field(min_length=1, max_length=100)
    kind: OrgKind
    house_id: Id | None = None
    credit_code: str | None = Field(None, pattern=r"^[0-9A-HJ-NPQRTUWXY]{18}$")
    contact_name: str | None = Field(None, max_length=50)
    phone: str | None = Field(None, max_length=24)


class OrganisationOut(ResponseModel):
    id: int
    building_id: int
    house_id: int | None
    grid_id: int
    name: str
    kind: OrgKind
    credit_code: str | None
    contact_name: str | None
    phone: str | None = Field(description="Masked")
    created_at: LocalTime


class OrganisationPage(ResponseModel):
    items: list[OrganisationOut]
    total: int
    limit: int
    offset: int


class TagCreate(RequestModel):
    code: str = Field(pattern=r"^[a-z][a-z0-9_]{1,31}$")
    name: str = Field(min_length=1, max_length=50)
    name_en: str = Field(min_length=1, max_length=80)
    sensitive: bool = False
    visit_every_days: int | None = Field(None, ge=1, le=366)


class TagOut(ResponseModel):
    id: int
    district_id: int
    code: str
    name: str
    name_en: str
    sensitive: bool
    visit_every_days: int | None
    active: bool


class ChangeOut(ResponseModel):
    id: int
    object_type: str
    object_id: int
    action: str
    actor_id: int | None
    at: LocalTime
    fields: dict[str, object]


class MembershipOut(ResponseModel):
    household_id: int
    relation: str
    from_at: LocalTime
    to_at: LocalTime | None


class HistoryOut(ResponseModel):
    changes: list[ChangeOut]
    households: list[MembershipOut]


class Figures(ResponseModel):
    grid_id: int | None = None
    area_id: int | None = None
    houses: int
    households: int
    population: int = Field(description="Active residents living here (实有)")
    registered: int = Field(description="Active residents registered here (户籍)")
    organisations: int
    by_tag: dict[str, int] = Field(
        description="Residents per tag (sensitive tags only with the right)"
    )


class CasePersonIn(RequestModel):
    resident_id: Id | None = None
    household_id: Id | None = None


class CasePersonOut(ResponseModel):
    id: int
    case_id: int
    resident_id: int | None
    household_id: int | None


class PlanItem(ResponseModel):
    household_id: int
    house: str
    building_id: int
    grid_id: int
    tags: list[str]
    every_days: int
    last_visit_at: LocalTime | None
    due: bool


class VisitPlan(ResponseModel):
    items: list[PlanItem]


class ImportOut(ResponseModel):
    dry_run: bool
    rows: int
    houses_created: int
    households: int
    residents: int
    seconds: float
