"""Dual registration: members register, claim volunteer tasks, their service is recorded and
confirmed by the community, and each unit gets a report of its members' service. The grid
support list: departments publish measures, grid workers browse them by case category.

A service: claimed ─record→ recorded ─confirm→ confirmed
              └withdraw→ withdrawn      └reject→ rejected
(a service recorded directly, without a task, starts as recorded)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import Request
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.policy import Principal
from app.community import areas, records
from app.community import service as community_units
from app.community.areas import Community, check_grid, row_under, rows_under
from app.errors import ApiError, not_found
from app.schemas import SHANGHAI
from app.volunteers.models import PartyMember, Service, SupportMeasure, VolunteerTask
from app.volunteers.schemas import (
    MeasureIn,
    MeasureUpdate,
    MemberIn,
    ServiceActionIn,
    ServiceIn,
    VolunteerTaskIn,
)

# The routes resolve their paths through their own service.
communities_under = areas.communities_under
community_of = areas.community_of

SERVICE_MACHINE: dict[str, set[str]] = {
    "record": {"claimed"},
    "confirm": {"recorded"},
    "reject": {"recorded"},
    "withdraw": {"claimed"},
}


async def register_member(
    session: AsyncSession,
    community: Community,
    body: MemberIn,
    who: Principal,
    request: Request | None,
) -> PartyMember:
    await check_grid(session, community, body.grid_id)
    if body.unit_id is not None:
        await community_units.check_units(session, community, [body.unit_id], "unit_id")
    data = body.model_dump(exclude_none=True)
    m = PartyMember(
        district_id=community.district_id, community_id=community.id, created_by=who.user_id, **data
    )
    session.add(m)
    await session.flush()
    detail = {k: v for k, v in data.items() if k != "phone"}
    await records.step(
        session, community, "member", m.id, "registered", who, note=m.name, detail=detail
    )
    await records.audit(
        session, "party_member_registered", who, request, "party_member", m.id, detail
    )
    await session.flush()
    await session.refresh(m)
    return m


async def _member(
    session: AsyncSession, community: Community, member_id: int, field: str
) -> PartyMember:
    m = await session.get(PartyMember, member_id)
    if m is None or m.community_id != community.id or not m.active:
        raise ApiError(
            "validation_error",
            field=field,
            detail="本社区没有该在职党员（或已注销）",
            detail_en="No such active party member in this community",
        )
    return m


async def create_task(
    session: AsyncSession,
    community: Community,
    body: VolunteerTaskIn,
    who: Principal,
    request: Request | None,
) -> int:
    await check_grid(session, community, body.grid_id)
    t = VolunteerTask(
        district_id=community.district_id,
        community_id=community.id,
        created_by=who.user_id,
        **body.model_dump(),
    )
    session.add(t)
    await session.flush()
    detail = body.model_dump(mode="json")
    await records.step(
        session, community, "volunteer_task", t.id, "created", who, note=t.title, detail=detail
    )
    await records.audit(
        session, "volunteer_task_created", who, request, "volunteer_task", t.id, detail
    )
    await records.emit_community(
        session, "community.volunteer_task", community.id, {"volunteer_task_id": t.id}
    )
    await session.flush()
    return t.id


_TASKS = """
    SELECT t.*, (SELECT count(*) FROM volunteer_services s WHERE s.task_id = t.id
                 AND s.status NOT IN ('withdrawn', 'rejected')) AS claimed
    FROM volunteer_tasks t WHERE t.community_id = ANY(:c)
"""


async def list_tasks(
    session: AsyncSession, communities: list[int], task_id: int | None = None
) -> list[Any]:
    sql = _TASKS
    params: dict[str, Any] = {"c": communities}
    if task_id is not None:
        sql += " AND t.id = :id"
        params["id"] = task_id
    return list(
        await session.execute(
            text(sql + " ORDER BY t.starts_at DESC, t.id DESC LIMIT 1000"), params
        )
    )


async def claim(
    session: AsyncSession,
    community: Community,
    task_id: int,
    member_id: int,
    who: Principal,
    request: Request | None,
) -> int:
    t = await session.get(VolunteerTask, task_id, with_for_update=True)
    if t is None or t.community_id != community.id:
        raise not_found("志愿任务", "Volunteer task", task_id)
    m = await _member(session, community, member_id, "member_id")
    rows = await list_tasks(session, [community.id], task_id)
    if t.status != "open" or rows[0].claimed >= t.slots:
        raise ApiError(
            "state_conflict",
            detail="任务已关闭或名额已满",
            detail_en="The task is closed or full",
            extra={"state": t.status, "claimed": rows[0].claimed, "slots": t.slots},
        )
    s = Service(
        district_id=community.district_id,
        community_id=community.id,
        member_id=m.id,
        task_id=t.id,
        what=t.title,
        place=t.place,
        served_on=t.starts_at.astimezone(SHANGHAI).date(),
    )
    name = m.name
    session.add(s)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise ApiError(
            "conflict",
            field="member_id",
            detail=f"{name} 已认领该任务",
            detail_en=f"{name} has claimed this task already",
        ) from None
    await records.step(
        session, community, "service", s.id, "claimed", who, note=m.name, detail={"task_id": t.id}
    )
    await records.audit(
        session,
        "volunteer_claimed",
        who,
        request,
        "volunteer_service",
        s.id,
        {"task_id": t.id, "member_id": m.id},
    )
    await session.flush()
    return s.id


async def record_service(
    session: AsyncSession,
    community: Community,
    body: ServiceIn,
    who: Principal,
    request: Request | None,
) -> int:
    m = await _member(session, community, body.member_id, "member_id")
    s = Service(
        district_id=community.district_id,
        community_id=community.id,
        status="recorded",
        **body.model_dump(),
    )
    session.add(s)
    await session.flush()
    detail = body.model_dump(mode="json")
    await records.step(
        session, community, "service", s.id, "recorded", who, note=m.name, detail=detail
    )
    await records.audit(
        session, "volunteer_service_recorded", who, request, "volunteer_service", s.id, detail
    )
    await session.flush()
    return s.id


async def act(
    session: AsyncSession,
    community: Community,
    service_id: int,
    action: str,
    body: ServiceActionIn,
    who: Principal,
    request: Request | None,
    now: datetime,
) -> None:
    s = await session.get(Service, service_id, with_for_update=True)
    if s is None or s.community_id != community.id:
        raise not_found("服务记录", "Service", service_id)
    records.check_state("服务记录", "service", s.status, action, SERVICE_MACHINE)
    detail: dict[str, Any] = {}
    if action == "record":
        if body.hours is None:
            raise ApiError(
                "validation_error",
                field="hours",
                detail="需填写服务时长",
                detail_en="hours is required",
            )
        served_on = body.served_on or s.served_on
        if served_on is not None and served_on > now.astimezone(SHANGHAI).date():
            raise ApiError(
                "validation_error",
                field="served_on",
                detail=f"服务日期 {served_on} 还没到，不能登记服务时长",
                detail_en=f"The service day {served_on} has not come yet",
            )
        s.status, s.hours, s.served_on = "recorded", body.hours, served_on
        detail = {"hours": body.hours, "served_on": s.served_on}
    elif action == "confirm":
        s.status, s.confirmed_by, s.confirmed_at = "confirmed", who.user_id, now
    elif action == "reject":
        s.status = "rejected"
    else:
        s.status = "withdrawn"
    if body.note:
        s.note = body.note
    await records.step(
        session, community, "service", s.id, action, who, note=body.note, detail=detail
    )
    await records.audit(
        session, f"volunteer_service_{action}", who, request, "volunteer_service", s.id, detail
    )
    await session.flush()


_REPORT = text(
    """
    WITH served AS (
        SELECT s.member_id, count(*) AS services, sum(s.hours) AS hours
        FROM volunteer_services s
        WHERE s.community_id = ANY(:c) AND s.status = 'confirmed'
          AND s.served_on >= :since AND s.served_on <= :until
        GROUP BY s.member_id
    )
    SELECT m.unit_id, coalesce(u.name, m.work_unit) AS unit, m.id AS member_id, m.name,
           coalesce(sv.services, 0) AS services, coalesce(sv.hours, 0) AS hours
    FROM party_members m LEFT JOIN community_units u ON u.id = m.unit_id
    LEFT JOIN served sv ON sv.member_id = m.id
    WHERE m.community_id = ANY(:c) AND m.active AND m.registered_on <= :until
      AND (CAST(:unit AS bigint) IS NULL OR m.unit_id = :unit)
    ORDER BY unit, m.id
    """
)


async def report(
    session: AsyncSession, communities: list[int], since: date, until: date, unit_id: int | None
) -> dict[str, Any]:
    """Each unit's members and their confirmed service in [since, until] (members whose unit did
    not report to the community are grouped by the work unit they gave)."""
    units: dict[tuple[int | None, str], dict[str, Any]] = {}
    for r in await session.execute(
        _REPORT, {"c": communities, "since": since, "until": until, "unit": unit_id}
    ):
        u = units.setdefault(
            (r.unit_id, r.unit),
            {
                "unit_id": r.unit_id,
                "unit": r.unit,
                "members": 0,
                "members_served": 0,
                "services": 0,
                "hours": 0.0,
                "by_member": [],
            },
        )
        u["members"] += 1
        u["members_served"] += r.services > 0
        u["services"] += r.services
        u["hours"] += float(r.hours)
        u["by_member"].append(
            {
                "member_id": r.member_id,
                "name": r.name,
                "services": r.services,
                "hours": float(r.hours),
            }
        )
    out = sorted(units.values(), key=lambda u: (-u["hours"], u["unit"]))
    totals = {
        "units": len(out),
        "members": sum(u["members"] for u in out),
        "services": sum(u["services"] for u in out),
        "hours": sum(u["hours"] for u in out),
    }
    return {"since": since, "until": until, "units": out, "totals": totals}


# --- grid support list ------------------------------------------------------------------------

_MEASURES = """
    SELECT m.*, d.name AS department FROM grid_support_measures m
    JOIN departments d ON d.id = m.department_id WHERE true
"""


async def list_measures(
    session: AsyncSession,
    *,
    department_id: int | None = None,
    category: str | None = None,
    q: str | None = None,
    active: bool | None = True,
    measure_id: int | None = None,
) -> list[Any]:
    sql = _MEASURES
    params: dict[str, Any] = {}
    if measure_id is not None:
        sql += " AND m.id = :id"
        params["id"] = measure_id
    if department_id is not None:
        sql += " AND m.department_id = :dept"
        params["dept"] = department_id
    if category:
        # A class code (SQ) matches its categories (SQ-02) too.
        sql += " AND EXISTS (SELECT 1 FROM unnest(m.category_codes) k WHERE k = :cat OR k LIKE :cat || '-%')"
        params["cat"] = category
    if q:
        sql += " AND (m.title ILIKE :q OR m.content ILIKE :q)"
        params["q"] = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    if active is not None:
        sql += " AND m.active = :active"
        params["active"] = active
    return list(await session.execute(text(sql + " ORDER BY m.code LIMIT 1000"), params))


async def _check_categories(session: AsyncSession, codes: list[str]) -> None:
    if not codes:
        return
    found = set(
        (
            await session.execute(
                text("SELECT code FROM categories WHERE code = ANY(:c)"), {"c": codes}
            )
        ).scalars()
    )
    missing = sorted(set(codes) - found)
    if missing:
        raise ApiError(
            "validation_error",
            field="category_codes",
            detail=f"没有这些事件类别：{missing}",
            detail_en=f"No such case categories: {missing}",
        )


def _own_department(who: Principal, wanted: int | None) -> int:
    """Departments publish for their own department; administrators name one."""
    mine = [p.department_id for p in who.posts if p.role == "department" and p.department_id]
    if who.is_admin:
        if wanted is None:
            raise ApiError(
                "validation_error",
                field="department_id",
                detail="需指明部门",
                detail_en="department_id is required",
            )
        return wanted
    if wanted is not None and wanted not in mine:
        raise ApiError(
            "forbidden",
            field="department_id",
            detail="只能发布本部门的支持举措",
            detail_en="A department publishes its own measures only",
        )
    return wanted if wanted is not None else mine[0]


async def publish(
    session: AsyncSession, body: MeasureIn, who: Principal, request: Request | None
) -> int:
    dept_id = _own_department(who, body.department_id)
    dept = (
        await session.execute(
            text("SELECT id, code, district_id FROM departments WHERE id = :d"), {"d": dept_id}
        )
    ).first()
    if dept is None or dept.district_id is None:
        raise ApiError(
            "validation_error",
            field="department_id",
            detail="部门不存在或未归属区县",
            detail_en="Unknown department, or it serves no district",
        )
    await _check_categories(session, body.category_codes)
    n = (
        await session.execute(select(func.count()).where(SupportMeasure.department_id == dept.id))
    ).scalar_one()
    code = f"{dept.code}-{n + 1:02d}"
    while (
        await session.execute(select(SupportMeasure.id).where(SupportMeasure.code == code))
    ).first():
        n += 1
        code = f"{dept.code}-{n + 1:02d}"
    m = SupportMeasure(
        district_id=dept.district_id,
        department_id=dept.id,
        code=code,
        created_by=who.user_id,
        **body.model_dump(exclude={"department_id"}),
    )
    session.add(m)
    await session.flush()
    await records.audit(
        session,
        "support_measure_published",
        who,
        request,
        "support_measure",
        m.id,
        body.model_dump(),
    )
    await session.flush()
    return m.id


async def update_measure(
    session: AsyncSession,
    measure_id: int,
    body: MeasureUpdate,
    who: Principal,
    request: Request | None,
) -> None:
    m = await session.get(SupportMeasure, measure_id, with_for_update=True)
    if m is None:
        raise not_found("支持举措", "Measure", measure_id)
    if not who.is_admin and m.department_id not in {p.department_id for p in who.posts}:
        raise not_found("支持举措", "Measure", measure_id)
    changes = body.model_dump(exclude_unset=True)
    if "category_codes" in changes:
        await _check_categories(session, changes["category_codes"] or [])
    for k, v in changes.items():
        if v is None and k in ("title", "content", "category_codes", "active"):
            raise ApiError(
                "validation_error", field=k, detail=f"{k} 不能为空", detail_en=f"{k} cannot be null"
            )
        setattr(m, k, v)
    await records.audit(
        session, "support_measure_updated", who, request, "support_measure", m.id, changes
    )
    await session.flush()


# --- lists and rows as the routes see them ----------------------------------------------------

_SERVICE = ("服务记录", "Service")


async def list_members(
    session: AsyncSession, area_id: int, unit_id: int | None
) -> list[PartyMember]:
    return await rows_under(
        session, PartyMember, area_id, order_by=(PartyMember.id,), unit_id=unit_id
    )


async def list_services(
    session: AsyncSession, area_id: int, status: str | None, member_id: int | None
) -> list[Service]:
    return await rows_under(
        session,
        Service,
        area_id,
        order_by=(Service.id.desc(),),
        limit=2000,
        status=status,
        member_id=member_id,
    )


async def get_service(session: AsyncSession, community: Community, service_id: int) -> Service:
    """A service record as it stands now (reloaded after a change in this session)."""
    return await row_under(session, Service, community.id, service_id, _SERVICE, fresh=True)
