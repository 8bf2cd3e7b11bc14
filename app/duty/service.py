"""Duty rosters (排班) and the one question others ask of them: who is on duty in this grid now
(`on_duty`), and when does this person's next duty start (`deliver_from`, the quiet hours of
push notifications).

A slot covers one grid, or (grid None) every grid of its community. The person is a worker's
account (its post's `worker_type`: full-time, part-time) or an in-service party member of the
community (双报到). A person has no two overlapping slots."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.auth.policy import Principal
from app.community.areas import Community
from app.duty.models import DutySlot
from app.duty.schemas import DutySlotIn
from app.errors import ApiError, FieldError, not_found

ERROR_CODES: dict[str, tuple[int, str, str]] = {
    "duty_overlap": (409, "排班时间与已有排班重叠", "The slot overlaps another of the same person"),
    "invalid_duty": (422, "排班内容不合规", "The duty slot is not valid"),
}
"""This module's error codes (registered in `app.extensions`)."""

TYPE_ORDER = {"full_time": 0, "part_time": 1, "party_member": 2}
LOOKAHEAD = timedelta(days=7)
"""Quiet hours: a message waits for a duty that starts within this long, else goes at once."""


@dataclass(frozen=True)
class OnDuty:
    slot_id: int
    user_id: int | None
    party_member_id: int | None
    worker_type: str
    name: str
    grid_id: int | None
    starts_at: datetime
    ends_at: datetime


_ON_DUTY = text(
    """
    SELECT s.id AS slot_id, s.user_id, s.party_member_id, s.worker_type, s.grid_id, s.starts_at,
           s.ends_at, coalesce(u.display_name, m.name) AS name
    FROM duty_slots s
    JOIN grids g ON g.id = :grid AND g.community_id = s.community_id
    LEFT JOIN users u ON u.id = s.user_id
    LEFT JOIN party_members m ON m.id = s.party_member_id
    WHERE s.district_id = :district AND (s.grid_id IS NULL OR s.grid_id = :grid)
      AND s.starts_at <= :at AND s.ends_at > :at
    ORDER BY s.grid_id IS NULL, s.id
    """
)


async def on_duty(
    session: AsyncSession, district_id: int, grid_id: int, at: datetime
) -> list[OnDuty]:
    """Who is on duty in this grid at `at`: the grid's own slots first, then the community's;
    full-time workers before part-time ones before party members."""
    rows = list(
        await session.execute(_ON_DUTY, {"district": district_id, "grid": grid_id, "at": at})
    )
    people = [OnDuty(**r._mapping) for r in rows]
    return sorted(people, key=lambda p: (TYPE_ORDER[p.worker_type], p.grid_id is None, p.slot_id))


async def duty_worker(
    session: AsyncSession, district_id: int, grid_id: int, at: datetime
) -> int | None:
    """The account on duty in this grid at `at` (a worker before a party member), or None."""
    return next(
        (p.user_id for p in await on_duty(session, district_id, grid_id, at) if p.user_id), None
    )


_NEXT = text(
    """
    SELECT bool_or(starts_at <= :at AND ends_at > :at) AS now_on,
           min(starts_at) FILTER (WHERE starts_at > :at AND starts_at <= :until) AS next_start
    FROM duty_slots
    WHERE district_id = :district AND user_id = :user AND ends_at > :at AND starts_at <= :until
    """
)


async def deliver_from(
    session: AsyncSession, district_id: int, user_id: int, at: datetime
) -> datetime:
    """When a message for this person may be delivered: `at` during a duty (or when no duty of
    theirs starts within `LOOKAHEAD`: no roster, no quiet hours), else when the next one starts."""
    row = (
        await session.execute(
            _NEXT, {"district": district_id, "user": user_id, "at": at, "until": at + LOOKAHEAD}
        )
    ).one()
    if row.now_on or row.next_start is None:
        return at
    return row.next_start  # type: ignore[no-any-return]


_DUTY_DAYS = text(
    """
    SELECT DISTINCT user_id, (starts_at AT TIME ZONE 'Asia/Shanghai')::date AS day
    FROM duty_slots
    WHERE district_id = :district AND user_id = ANY(CAST(:users AS bigint[]))
      AND starts_at >= :since AND starts_at < :until
    """
)


async def duty_days(
    session: AsyncSession | AsyncConnection,
    district_id: int,
    user_ids: list[int],
    since: datetime,
    until: datetime,
) -> dict[int, set[date]]:
    """Per person, the Shanghai dates in [since, until) on which one of their duties starts (the
    days the patrol standard applies to when they are on a roster)."""
    out: dict[int, set[date]] = {}
    if not user_ids:
        return out
    for r in await session.execute(
        _DUTY_DAYS, {"district": district_id, "users": user_ids, "since": since, "until": until}
    ):
        out.setdefault(int(r.user_id), set()).add(r.day)
    return out


_ON_DUTY_NOW = text(
    """
    SELECT DISTINCT ON (user_id) user_id, ends_at FROM duty_slots
    WHERE district_id = :district AND user_id = ANY(CAST(:users AS bigint[]))
      AND starts_at <= :at AND ends_at > :at
    ORDER BY user_id, ends_at DESC
    """
)


async def duty_until(
    session: AsyncSession | AsyncConnection,
    district_id: int,
    user_ids: list[int],
    at: datetime,
) -> dict[int, datetime]:
    """Per person on duty at `at` (any slot of theirs in the district), when that duty ends; a
    person not on duty is absent (their whereabouts are not for the centre then)."""
    if not user_ids:
        return {}
    rows = await session.execute(
        _ON_DUTY_NOW, {"district": district_id, "users": sorted(set(user_ids)), "at": at}
    )
    return {int(r.user_id): r.ends_at for r in rows}


# --- keeping the roster ---------------------------------------------------------------------

_WORKER = text(
    """
    SELECT p.worker_type FROM posts p
    WHERE p.user_id = :user AND p.role IN ('grid_worker', 'grid_leader')
      AND p.starts_on <= current_date AND (p.ends_on IS NULL OR p.ends_on >= current_date)
      AND EXISTS (SELECT 1 FROM post_grids pg JOIN grids g ON g.id = pg.grid_id
                  WHERE pg.post_id = p.id AND g.community_id = :community)
    ORDER BY p.id LIMIT 1
    """
)
_MEMBER = text(
    "SELECT id FROM party_members WHERE id = :id AND community_id = :community AND active"
)
_GRID = text("SELECT 1 FROM grids WHERE id = :id AND community_id = :community")
_OVERLAP = text(
    """
    SELECT id FROM duty_slots
    WHERE district_id = :district
      AND (user_id = CAST(:user AS bigint) OR party_member_id = CAST(:member AS bigint))
      AND starts_at < :ends AND ends_at > :starts
    LIMIT 1
    """
)


def _bad(i: int, field: str, zh: str, en: str) -> ApiError:
    name = f"slots[{i}].{field}"
    return ApiError(
        "invalid_duty",
        detail=zh,
        detail_en=en,
        field=name,
        errors=[FieldError(name, "invalid_duty", zh, en)],
    )


async def add_slots(
    session: AsyncSession, community: Community, who: Principal, slots: list[DutySlotIn]
) -> list[int]:
    """Add slots to the community's roster (all or none); their ids."""
    ids: list[int] = []
    for i, s in enumerate(slots):
        if (s.user_id is None) == (s.party_member_id is None):
            raise _bad(
                i, "user_id", "须指定网格员账号或在职党员之一", "Name one user or one party member"
            )
        if s.ends_at <= s.starts_at:
            raise _bad(i, "ends_at", "结束时间须晚于开始时间", "ends_at must be after starts_at")
        if s.ends_at - s.starts_at > timedelta(hours=24):
            raise _bad(i, "ends_at", "一个班次不能超过 24 小时", "A slot lasts at most 24 hours")
        params = {"community": community.id}
        if (
            s.grid_id is not None
            and (await session.execute(_GRID, {"id": s.grid_id, **params})).first() is None
        ):
            raise _bad(
                i, "grid_id", f"网格 {s.grid_id} 不属于本社区", f"Grid {s.grid_id} is not here"
            )
        if s.user_id is not None:
            post = (await session.execute(_WORKER, {"user": s.user_id, **params})).first()
            if post is None:
                raise _bad(
                    i,
                    "user_id",
                    f"用户 {s.user_id} 不是本社区的网格员",
                    f"User {s.user_id} is not a grid worker of this community",
                )
            worker_type = post.worker_type or "full_time"
        else:
            if (
                await session.execute(_MEMBER, {"id": s.party_member_id, **params})
            ).first() is None:
                raise _bad(
                    i,
                    "party_member_id",
                    f"党员 {s.party_member_id} 未在本社区报到",
                    f"Party member {s.party_member_id} is not registered here",
                )
            worker_type = "party_member"
        clash = (
            await session.execute(
                _OVERLAP,
                {
                    "district": community.district_id,
                    "user": s.user_id,
                    "member": s.party_member_id,
                    "starts": s.starts_at,
                    "ends": s.ends_at,
                },
            )
        ).scalar()
        if clash is not None:
            raise ApiError(
                "duty_overlap",
                detail=f"第 {i + 1} 个班次与已有排班 {clash} 重叠",
                detail_en=f"Slot {i + 1} overlaps slot {clash}",
                field=f"slots[{i}].starts_at",
                extra={"slot_id": clash},
            )
        slot = DutySlot(
            district_id=community.district_id,
            community_id=community.id,
            grid_id=s.grid_id,
            user_id=s.user_id,
            party_member_id=s.party_member_id,
            worker_type=worker_type,
            starts_at=s.starts_at,
            ends_at=s.ends_at,
            note=s.note,
            created_by=who.user_id,
        )
        session.add(slot)
        await session.flush()  # the next slot's overlap check sees this one
        ids.append(slot.id)
    return ids


_SLOTS = """
    SELECT s.*, coalesce(u.display_name, m.name) AS name
    FROM duty_slots s
    LEFT JOIN users u ON u.id = s.user_id
    LEFT JOIN party_members m ON m.id = s.party_member_id
    WHERE s.district_id = :district
"""


async def list_slots(
    session: AsyncSession,
    district_id: int,
    *,
    community_id: int | None = None,
    user_id: int | None = None,
    grid_id: int | None = None,
    ids: list[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 1000,
) -> list[Any]:
    sql = _SLOTS
    params: dict[str, Any] = {"district": district_id, "limit": limit}
    if community_id is not None:
        sql += " AND s.community_id = :community"
        params["community"] = community_id
    if user_id is not None:
        sql += " AND s.user_id = :user"
        params["user"] = user_id
    if grid_id is not None:
        sql += " AND (s.grid_id = :grid OR s.grid_id IS NULL)"
        params["grid"] = grid_id
    if ids is not None:
        sql += " AND s.id = ANY(:ids)"
        params["ids"] = ids
    if since is not None:
        sql += " AND s.ends_at > :since"
        params["since"] = since
    if until is not None:
        sql += " AND s.starts_at < :until"
        params["until"] = until
    sql += " ORDER BY s.starts_at, s.id LIMIT :limit"
    return list(await session.execute(text(sql), params))


async def delete_slot(session: AsyncSession, community: Community, slot_id: int) -> None:
    gone = (
        await session.execute(
            text(
                "DELETE FROM duty_slots WHERE id = :id AND district_id = :district "
                "AND community_id = :community RETURNING id"
            ),
            {"id": slot_id, "district": community.district_id, "community": community.id},
        )
    ).scalar()
    if gone is None:
        raise not_found("排班", "Duty slot", slot_id)


GRID_DISTRICT = text(
    """
    SELECT s.parent_id AS district_id, g.community_id FROM grids g
    JOIN areas c ON c.id = g.community_id JOIN areas s ON s.id = c.parent_id
    WHERE g.id = :id AND g.deleted_at IS NULL
    """
)
"""A grid's district and community."""
