"""Accounts, posts and the grid staff roster."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import Request
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.areas.models import Area
from app.audit.service import record
from app.auth.passwords import check_password, hash_password
from app.auth.policy import Principal, principal_cache
from app.auth.service import clear_lockouts, revoke_user_sessions
from app.departments.models import Department
from app.errors import ApiError, not_found
from app.grids.models import Grid
from app.i18n import ROLE_LABELS, Lang, label
from app.pii import mask_phone
from app.users.models import Post, PostGrid, User
from app.users.schemas import PostIn, UserCreate, UserUpdate

AREA_LEVEL_OF_ROLE = {
    "community": ("community",),
    "governance": ("community", "street"),
    "street": ("street",),
    "centre": ("district", "city"),
}


async def _validate_post(session: AsyncSession, p: PostIn, index: int) -> None:
    field = f"posts.{index}"

    def bad(zh: str, en: str, sub: str) -> ApiError:
        return ApiError("validation_error", field=f"{field}.{sub}", detail=zh, detail_en=en)

    if p.role in AREA_LEVEL_OF_ROLE:
        if p.area_id is None:
            raise bad("该岗位须指定 area_id", "This post needs area_id", "area_id")
        area = await session.get(Area, p.area_id)
        if area is None or area.level not in AREA_LEVEL_OF_ROLE[p.role]:
            raise bad(
                "area_id 不存在或层级与岗位不符",
                "area_id is unknown or of the wrong level",
                "area_id",
            )
    elif p.area_id is not None:
        raise bad("该岗位不能指定 area_id", "This post takes no area_id", "area_id")
    if p.role == "department":
        if p.department_id is None or await session.get(Department, p.department_id) is None:
            raise bad("department_id 不存在", "Unknown department_id", "department_id")
    elif p.department_id is not None:
        raise bad(
            "该岗位不能指定 department_id", "This post takes no department_id", "department_id"
        )
    if p.role in ("grid_worker", "grid_leader"):
        if not p.grid_ids:
            raise bad("网格员、网格长须指定所服务的网格", "Grid posts need grid_ids", "grid_ids")
        found = (
            await session.execute(
                select(func.count())
                .select_from(Grid)
                .where(Grid.id.in_(p.grid_ids), Grid.deleted_at.is_(None))
            )
        ).scalar_one()
        if found != len(set(p.grid_ids)):
            raise bad("grid_ids 中有不存在的网格", "grid_ids names unknown grids", "grid_ids")
    elif p.grid_ids:
        raise bad("该岗位不能指定网格", "This post takes no grid_ids", "grid_ids")
    if p.worker_type is not None and p.role != "grid_worker":
        raise bad(
            "只有网格员有专职/兼职之分", "Only grid workers have a worker_type", "worker_type"
        )
    if p.starts_on and p.ends_on and p.ends_on < p.starts_on:
        raise bad("结束日期早于开始日期", "ends_on is before starts_on", "ends_on")


async def _insert_post(session: AsyncSession, user_id: int, p: PostIn) -> Post:
    post = Post(
        user_id=user_id,
        role=p.role,
        worker_type=p.worker_type or ("full_time" if p.role == "grid_worker" else None),
        area_id=p.area_id,
        department_id=p.department_id,
        title=p.title,
        work_phone=p.work_phone,
        ends_on=p.ends_on,
    )
    if p.starts_on:
        post.starts_on = p.starts_on
    session.add(post)
    await session.flush()
    for g in sorted(set(p.grid_ids)):
        session.add(PostGrid(post_id=post.id, grid_id=g))
    return post


async def posts_of(
    session: AsyncSession, user_ids: list[int], lang: Lang
) -> dict[int, list[dict[str, Any]]]:
    if not user_ids:
        return {}
    rows = (
        await session.execute(
            select(
                Post,
                Area.code.label("a_code"),
                Area.name.label("a_name"),
                Area.level.label("a_level"),
                Department.code.label("d_code"),
                Department.name.label("d_name"),
            )
            .outerjoin(Area, Area.id == Post.area_id)
            .outerjoin(Department, Department.id == Post.department_id)
            .where(Post.user_id.in_(user_ids))
            .order_by(Post.id)
        )
    ).all()
    post_ids = [r.Post.id for r in rows]
    grids: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if post_ids:
        for g in await session.execute(
            select(PostGrid.post_id, Grid.id, Grid.code, Grid.name)
            .join(Grid, Grid.id == PostGrid.grid_id)
            .where(PostGrid.post_id.in_(post_ids))
            .order_by(Grid.code)
        ):
            grids[g.post_id].append({"id": g.id, "code": g.code, "name": g.name})
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        p: Post = r.Post
        out[p.user_id].append(
            {
                "id": p.id,
                "role": p.role,
                "role_label": label(ROLE_LABELS, p.role, lang),
                "worker_type": p.worker_type,
                "title": p.title,
                "work_phone": p.work_phone,
                "area": {"id": p.area_id, "code": r.a_code, "name": r.a_name, "level": r.a_level}
                if p.area_id
                else None,
                "department": {"id": p.department_id, "code": r.d_code, "name": r.d_name}
                if p.department_id
                else None,
                "grids": grids.get(p.id, []),
                "starts_on": p.starts_on,
                "ends_on": p.ends_on,
            }
        )
    return out


def user_out(u: User, posts: list[dict[str, Any]], reveal: bool = False) -> dict[str, Any]:
    return {
        "id": u.id,
        "username": u.username,
        "display_name": u.display_name,
        "mobile": u.mobile if reveal else mask_phone(u.mobile),
        "is_active": u.is_active,
        "is_demo": u.is_demo,
        "locked_until": u.locked_until,
        "last_login_at": u.last_login_at,
        "created_at": u.created_at,
        "posts": posts,
    }


async def get_user(session: AsyncSession, user_id: int) -> User:
    u = await session.get(User, user_id)
    if u is None:
        raise not_found("用户", "User", user_id)
    return u


async def create_user(
    session: AsyncSession,
    data: UserCreate,
    who: Principal | None,
    request: Request | None,
    *,
    is_demo: bool = False,
) -> User:
    check_password(data.password, data.username)
    exists = (
        await session.execute(
            select(User.id).where(func.lower(User.username) == data.username.lower())
        )
    ).scalar()
    if exists:
        raise ApiError(
            "conflict",
            field="username",
            detail=f"用户名已存在：{data.username}",
            detail_en=f"The user name is taken: {data.username}",
        )
    for i, p in enumerate(data.posts):
        await _validate_post(session, p, i)
    u = User(
        username=data.username,
        display_name=data.display_name,
        password_hash=hash_password(data.password),
        mobile=data.mobile,
        is_demo=is_demo,
    )
    session.add(u)
    await session.flush()
    for p in data.posts:
        await _insert_post(session, u.id, p)
    await record(
        session,
        "user_created",
        actor=who,
        request=request,
        object_type="user",
        object_id=u.id,
        detail={"username": u.username, "posts": [p.model_dump(mode="json") for p in data.posts]},
    )
    await session.flush()
    return u


async def list_users(
    session: AsyncSession,
    *,
    q: str | None,
    role: str | None,
    active: bool | None,
    limit: int,
    offset: int,
) -> tuple[list[User], int]:
    stmt = select(User, func.count().over().label("total"))
    if q:
        stmt = stmt.where(User.username.ilike(f"%{q}%") | User.display_name.ilike(f"%{q}%"))
    if role:
        stmt = stmt.where(User.id.in_(select(Post.user_id).where(Post.role == role)))
    if active is not None:
        stmt = stmt.where(User.is_active.is_(active))
    rows = (await session.execute(stmt.order_by(User.id).limit(limit).offset(offset))).all()
    return [r.User for r in rows], (rows[0].total if rows else 0)


async def update_user(
    session: AsyncSession, user_id: int, data: UserUpdate, who: Principal, request: Request
) -> User:
    u = await get_user(session, user_id)
    fields = data.model_fields_set
    before = {
        "display_name": u.display_name,
        "is_active": u.is_active,
        "mobile": mask_phone(u.mobile),
        "locked_until": str(u.locked_until),
    }
    if "display_name" in fields and data.display_name:
        u.display_name = data.display_name
    if "mobile" in fields:
        u.mobile = data.mobile
    if "is_active" in fields and data.is_active is not None and data.is_active != u.is_active:
        u.is_active = data.is_active
        if not data.is_active:
            await revoke_user_sessions(session, u.id, "disabled")
        await record(
            session,
            "user_disabled" if not data.is_active else "user_enabled",
            actor=who,
            request=request,
            object_type="user",
            object_id=u.id,
        )
    if data.unlock:
        u.locked_until = None
        u.failed_logins = 0
        await clear_lockouts(session, u.username)  # every address's lock of the name
        await record(
            session, "user_unlocked", actor=who, request=request, object_type="user", object_id=u.id
        )
    after = {
        "display_name": u.display_name,
        "is_active": u.is_active,
        "mobile": mask_phone(u.mobile),
        "locked_until": str(u.locked_until),
    }
    if before != after:
        await record(
            session,
            "user_updated",
            actor=who,
            request=request,
            object_type="user",
            object_id=u.id,
            detail={"before": before, "after": after},
        )
    u.updated_at = func.now()
    await session.flush()
    await session.refresh(u)
    return u


async def reset_password(
    session: AsyncSession, user_id: int, password: str, who: Principal, request: Request
) -> None:
    u = await get_user(session, user_id)
    check_password(password, u.username)
    u.password_hash = hash_password(password)
    u.password_changed_at = func.now()
    u.failed_logins = 0
    u.locked_until = None
    await clear_lockouts(session, u.username)
    await revoke_user_sessions(session, u.id, "password_reset")
    await record(
        session, "password_reset", actor=who, request=request, object_type="user", object_id=u.id
    )
    await session.flush()


async def add_post(
    session: AsyncSession, user_id: int, data: PostIn, who: Principal, request: Request
) -> None:
    await get_user(session, user_id)
    await _validate_post(session, data, 0)
    post = await _insert_post(session, user_id, data)
    principal_cache.evict(user_id=user_id)
    await record(
        session,
        "post_assigned",
        actor=who,
        request=request,
        object_type="user",
        object_id=user_id,
        detail={"post_id": post.id, **data.model_dump(mode="json")},
    )
    await session.flush()


async def end_post(
    session: AsyncSession, user_id: int, post_id: int, who: Principal, request: Request
) -> None:
    """A post ends yesterday (kept as history); one that starts today is removed outright."""
    post = (
        await session.execute(select(Post).where(Post.id == post_id, Post.user_id == user_id))
    ).scalar_one_or_none()
    if post is None:
        raise not_found("岗位", "Post", post_id)
    today = (await session.execute(select(func.current_date()))).scalar_one()
    if post.starts_on >= today:
        await session.execute(delete(Post).where(Post.id == post_id))
    else:
        await session.execute(
            update(Post).where(Post.id == post_id).values(ends_on=text("current_date - 1"))
        )
    principal_cache.evict(user_id=user_id)
    await record(
        session,
        "post_ended",
        actor=who,
        request=request,
        object_type="user",
        object_id=user_id,
        detail={"post_id": post_id, "role": post.role},
    )
    await session.flush()


_STAFF = text(
    """
    SELECT pg.grid_id, u.id AS user_id, u.display_name AS name, p.role, p.worker_type, p.title,
           p.work_phone, p.starts_on, p.ends_on
    FROM post_grids pg
    JOIN posts p ON p.id = pg.post_id
    JOIN users u ON u.id = p.user_id AND u.is_active
    WHERE pg.grid_id = ANY(:grids) AND p.starts_on <= current_date
      AND (p.ends_on IS NULL OR p.ends_on >= current_date)
    ORDER BY pg.grid_id, CASE p.role WHEN 'grid_leader' THEN 0 ELSE 1 END,
             CASE p.worker_type WHEN 'full_time' THEN 0 WHEN 'part_time' THEN 1 ELSE 2 END, u.id
    """
)


async def grid_staff(
    session: AsyncSession, grid_ids: list[int], lang: Lang
) -> dict[int, list[dict[str, Any]]]:
    """The roster of each grid: leader first, then full-time, part-time, party-member workers."""
    out: dict[int, list[dict[str, Any]]] = defaultdict(list)
    if not grid_ids:
        return out
    for r in await (await session.connection()).execute(_STAFF, {"grids": grid_ids}):
        out[r.grid_id].append(
            {
                "user_id": r.user_id,
                "name": r.name,
                "role": r.role,
                "role_label": label(ROLE_LABELS, r.role, lang),
                "worker_type": r.worker_type,
                "title": r.title,
                "work_phone": r.work_phone,
                "starts_on": r.starts_on,
                "ends_on": r.ends_on,
            }
        )
    return out
