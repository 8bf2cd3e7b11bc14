from __future__ import annotations

from datetime import date
from typing import Literal, get_args

from pydantic import Field

from app.auth.rules import ROLES
from app.schemas import Id, LocalTime, RequestModel, ResponseModel

Role = Literal[
    "grid_worker",
    "grid_leader",
    "community",
    "governance",
    "street",
    "department",
    "centre",
    "admin",
]
assert get_args(Role) == ROLES, "Role must list app.auth.rules.ROLES, in order"
WorkerType = Literal["full_time", "part_time", "party_member"]
USERNAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{1,63}$"
MOBILE = r"^1[3-9][0-9]{9}$"


class PostIn(RequestModel):
    role: Role
    worker_type: WorkerType | None = Field(
        None,
        description="grid workers: full_time, part_time "
        "or party_member (in-service member registered here)",
    )
    area_id: Id | None = Field(None, description="community, street and centre posts")
    department_id: Id | None = Field(None, description="department posts")
    grid_ids: list[Id] = Field(
        default_factory=list, max_length=200, description="grid worker and grid leader posts"
    )
    title: str | None = Field(None, max_length=100)
    work_phone: str | None = Field(None, max_length=40, description="public on the service card")
    starts_on: date | None = None
    ends_on: date | None = None


class UserCreate(RequestModel):
    username: str = Field(pattern=USERNAME)
    display_name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=256)
    mobile: str | None = Field(None, pattern=MOBILE)
    posts: list[PostIn] = Field(default_factory=list, max_length=20)


class UserUpdate(RequestModel):
    display_name: str | None = Field(None, min_length=1, max_length=100)
    mobile: str | None = Field(None, pattern=MOBILE)
    is_active: bool | None = Field(None, description="false disables the account at once")
    unlock: bool | None = Field(None, description="true clears a login lockout")


class PasswordReset(RequestModel):
    password: str = Field(min_length=1, max_length=256)


class PlaceRef(ResponseModel):
    id: int
    code: str
    name: str
    level: str | None = None


class PostOut(ResponseModel):
    id: int
    role: Role
    role_label: str
    worker_type: WorkerType | None
    title: str | None
    work_phone: str | None
    area: PlaceRef | None
    department: PlaceRef | None
    grids: list[PlaceRef]
    starts_on: date
    ends_on: date | None


class UserOut(ResponseModel):
    id: int
    username: str
    display_name: str
    mobile: str | None = Field(description="Masked (138****1234) unless revealed by an admin")
    is_active: bool
    is_demo: bool
    locked_until: LocalTime | None
    last_login_at: LocalTime | None
    created_at: LocalTime
    posts: list[PostOut]


class UserPage(ResponseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class StaffMember(ResponseModel):
    user_id: int
    name: str
    role: Role
    role_label: str
    worker_type: WorkerType | None
    title: str | None
    work_phone: str | None
    starts_on: date
    ends_on: date | None
