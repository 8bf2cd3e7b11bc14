"""The shared part of the demo community builder: the community's place, ids, calendar and seeded
choices, and how a timeline step and a tracked task are written."""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.community.models import Step, Task, Unit
from app.loop import deadlines

SH = ZoneInfo("Asia/Shanghai")

STREETS = {"360602001": "江边街道", "360602003": "交通街道", "360602004": "梅园街道"}


def _at(y: int, m: int, d: int, hh: int = 9, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=SH)


def _t(model: Any) -> Table:
    return cast(Table, model.__table__)


async def _ins(conn: AsyncConnection, table: Table, **values: Any) -> int:
    return int(
        (await conn.execute(insert(table).values(**values).returning(table.c.id))).scalar_one()
    )


def _point(lon: float, lat: float) -> Any:
    return func.ST_SetSRID(func.ST_MakePoint(lon, lat), 4326)


class _Base:
    """One community's quarter: what every part of the builder shares."""

    def __init__(self, conn: AsyncConnection, code: str) -> None:
        self.conn = conn
        self.code = code
        self.rng = random.Random(int(hashlib.sha256(code.encode()).hexdigest()[:12], 16))

    async def setup(self) -> bool:
        row = (
            await self.conn.execute(
                text(
                    """
                    SELECT c.id, c.name, s.parent_id AS district_id, s.name AS street,
                           ST_X(ST_PointOnSurface(c.boundary)) AS lon,
                           ST_Y(ST_PointOnSurface(c.boundary)) AS lat
                    FROM areas c JOIN areas s ON s.id = c.parent_id WHERE c.code = :code
                    """
                ),
                {"code": self.code},
            )
        ).first()
        if row is None or row.lon is None:
            return False
        done = (
            await self.conn.execute(
                select(Unit.id).where(_t(Unit).c.community_id == row.id).limit(1)
            )
        ).first()
        if done:
            return False
        self.id, self.name, self.district, self.street = (
            row.id,
            row.name,
            row.district_id,
            row.street,
        )
        self.short = row.name.removesuffix("社区")
        self.lon, self.lat = row.lon, row.lat
        self.grids = list(
            (
                await self.conn.execute(
                    text(
                        "SELECT id FROM grids WHERE community_id = :c AND deleted_at IS NULL ORDER BY code"
                    ),
                    {"c": self.id},
                )
            ).scalars()
        )
        self.depts = {
            r.code: r.id
            for r in await self.conn.execute(
                text("SELECT code, id FROM departments WHERE code IN ('CGJ', 'ZJJ', 'GDJ')")
            )
        }
        self.cal = await deadlines.calendar(self.conn)
        return True

    def near(self) -> Any:
        return _point(
            self.lon + self.rng.uniform(-0.004, 0.004), self.lat + self.rng.uniform(-0.004, 0.004)
        )

    def base(self) -> dict[str, Any]:
        return {"district_id": self.district, "community_id": self.id}

    async def step(
        self,
        kind: str,
        oid: int,
        action: str,
        at: datetime,
        note: str = "",
        actor: str | None = None,
        **detail: Any,
    ) -> None:
        await self.conn.execute(
            insert(_t(Step)).values(
                **self.base(),
                object_type=kind,
                object_id=oid,
                action=action,
                actor=actor or f"{self.name}书记",
                note=note,
                detail=orjson.loads(orjson.dumps(detail, default=str)),
                at=at,
            )
        )

    async def task(
        self,
        source: str,
        ref: int,
        title: str,
        unit: int,
        days: int,
        start: datetime,
        done_after: int | None,
        progress: int = 0,
    ) -> int:
        due = self.cal.deadline(start, days, "days")
        done_at = None
        if done_after is not None:
            done_at = self.cal.deadline(start, done_after, "days").at - timedelta(hours=1)
        tid = await _ins(
            self.conn,
            _t(Task),
            **self.base(),
            source=source,
            **{f"{source}_id": ref},
            title=title,
            unit_id=unit,
            due_days=days,
            starts_at=start,
            due_at=due.at,
            provisional=due.provisional,
            state="done" if done_at else "open",
            progress=100 if done_at else progress,
            done_at=done_at,
            created_at=start,
        )
        await self.step(
            "task", tid, "created", start, title, unit_id=unit, due_at=due.at, due_days=days
        )
        if done_at:
            await self.step("task", tid, "done", done_at, on_time=done_at <= due.at)
        return tid
