"""Demo community, part 3: five-step deliberation (五议工作法) and dual registration (双报到)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import insert

from app.deliberation.models import Matter, Opinion, Rating
from app.demo.accounts import _mobile, _name
from app.demo.community_base import _at, _Base, _ins, _t
from app.volunteers.models import PartyMember, Service, VolunteerTask


class _Residents(_Base):
    """Five-step deliberation matters and dual registration."""

    async def matters(self, u: dict[str, int]) -> None:
        grid = self.grids[0] if self.grids else None

        async def matter(title: str, status: str, channel: str, at: datetime, **kw: Any) -> int:
            mid = await _ins(
                self.conn,
                _t(Matter),
                **self.base(),
                grid_id=grid,
                title=title,
                description=f"{title}（居民提议）",
                proposer=_name(f"{self.code}-{title}"),
                channel=channel,
                status=status,
                created_at=at,
                updated_at=at,
                **kw,
            )
            await self.step(
                "matter",
                mid,
                "proposed",
                at,
                title,
                actor="居民（扫码）" if channel == "qr_form" else f"{self.name}网格员",
            )
            return mid

        async def votes(mid: int, n: int, yes_share: float, at: datetime) -> None:
            for i in range(n):
                vote = (
                    "yes" if self.rng.random() < yes_share else self.rng.choice(("no", "abstain"))
                )
                await self.conn.execute(
                    insert(_t(Opinion)).values(
                        **self.base(),
                        matter_id=mid,
                        participant=f"{1 + i // 6}栋{1 + i % 2}单元{101 + 100 * (i % 6)}",
                        vote=vote,
                        opinion="同意" if vote == "yes" else "再议",
                        channel="meeting" if i % 3 else "online",
                        at=at,
                    )
                )

        async def rates(mid: int, n: int, at: datetime) -> None:
            for i in range(n):
                r = self.rng.choices(("satisfied", "basic", "unsatisfied"), (0.7, 0.25, 0.05))[0]
                await self.conn.execute(
                    insert(_t(Rating)).values(
                        **self.base(),
                        matter_id=mid,
                        participant=f"{1 + i // 6}栋{1 + i % 2}单元{101 + 100 * (i % 6)}",
                        rating=r,
                        at=at,
                    )
                )

        await matter("小区增设智能快递柜", "proposed", "qr_form", _at(2026, 11, 24, 20))
        await matter("清理楼顶违建鸽棚", "accepted", "grid_worker", _at(2026, 11, 10))
        consulting = await matter(
            "小区绿化带改建停车位",
            "consulting",
            "grid_worker",
            _at(2026, 10, 30),
            mode="meeting",
            quorum=15,
        )
        await votes(consulting, 11, 0.6, _at(2026, 11, 18, 19))
        gate = await matter(
            "加装车辆进出道闸",
            "resolved",
            "grid_worker",
            _at(2026, 10, 8),
            mode="meeting",
            quorum=20,
            decision="安装车辆道闸，业主车辆登记通行，外来车辆临时收费用于维护",
            money=Decimal("18000"),
            funding="小区公共收益",
        )
        await votes(gate, 26, 0.85, _at(2026, 10, 20, 19))
        await self.step("matter", gate, "resolve", _at(2026, 10, 21))
        await self.task(
            "matter", gate, "采购并安装车辆道闸", u["property"], 20, _at(2026, 10, 21), None, 70
        )
        dup = await matter(
            "小区门口装道闸", "merged", "qr_form", _at(2026, 10, 9), merged_into_id=gate
        )
        await self.step("matter", dup, "merge", _at(2026, 10, 10), merge_into_id=gate)
        seats = await matter(
            "广场增设休闲座椅",
            "done",
            "grid_worker",
            _at(2026, 9, 1),
            mode="online",
            quorum=10,
            decision="增设 12 张石凳",
            money=Decimal("6000"),
            funding="共建资金",
        )
        await votes(seats, 14, 0.9, _at(2026, 9, 12))
        await self.task("matter", seats, "采购安装石凳", u["property"], 15, _at(2026, 9, 14), 12)
        await rates(seats, 5, _at(2026, 11, 12))
        fit = await matter(
            "更新健身器材",
            "evaluated",
            "grid_worker",
            _at(2026, 7, 6),
            mode="meeting",
            quorum=15,
            decision="更换 8 件健身器材",
            money=Decimal("32000"),
            funding="体彩公益金",
        )
        await votes(fit, 19, 0.95, _at(2026, 7, 16))
        await self.task("matter", fit, "采购更换健身器材", u["school"], 20, _at(2026, 7, 17), 18)
        await rates(fit, 12, _at(2026, 8, 30))
        await matter(
            "小区内开设棋牌室",
            "rejected",
            "qr_form",
            _at(2026, 9, 20),
            reason="涉及噪声扰民且无合适场地，建议使用社区活动室",
        )

    async def volunteers(self, u: dict[str, int]) -> None:
        plan = [
            ("tax", "区税务局", 6),
            ("hospital", "区人民医院", 4),
            ("bank", "中国银行月湖支行", 3),
            (None, "市财政局", 2),
            (None, "区教育体育局", 2),
        ]
        skills_pool = [
            "政策宣传",
            "法律咨询",
            "医疗护理",
            "文艺辅导",
            "电脑维修",
            "心理疏导",
            "驾驶",
        ]
        members = []
        for key, work_unit, n in plan:
            for i in range(n):
                k = f"{self.code}-pm-{work_unit}-{i}"
                mid = await _ins(
                    self.conn,
                    _t(PartyMember),
                    **self.base(),
                    grid_id=self.grids[i % len(self.grids)] if self.grids else None,
                    name=_name(k),
                    unit_id=u[key] if key else None,
                    work_unit=work_unit,
                    skills=self.rng.sample(skills_pool, 2),
                    availability=self.rng.choice(("周末", "工作日晚上", "节假日")),
                    phone=_mobile(k),
                    registered_on=date(2026, 3, 5 + i),
                    created_at=_at(2026, 3, 5 + i),
                )
                members.append(mid)
        tasks = [
            ("敬老院重阳节慰问", _at(2026, 10, 29, 9), Decimal("3"), 6),
            ("防诈骗宣传进小区", _at(2026, 11, 14, 9), Decimal("2.5"), 5),
            ("垃圾分类桶边督导", _at(2026, 11, 25, 7), Decimal("2"), 8),
        ]
        for t_i, (title, at, hours, slots) in enumerate(tasks):
            tid = await _ins(
                self.conn,
                _t(VolunteerTask),
                **self.base(),
                title=title,
                description=f"{self.name}组织在职党员开展{title}",
                place=f"{self.name}辖区",
                starts_at=at,
                hours=hours,
                slots=slots,
                status="closed" if t_i < 2 else "open",
                created_at=at.replace(day=max(1, at.day - 7)),
            )
            for j, mid in enumerate(self.rng.sample(members, slots - (1 if t_i == 2 else 0))):
                status = "confirmed" if t_i < 2 else ("recorded" if j < 3 else "claimed")
                await self.conn.execute(
                    insert(_t(Service)).values(
                        **self.base(),
                        member_id=mid,
                        task_id=tid,
                        what=title,
                        place=f"{self.name}辖区",
                        served_on=at.date(),
                        hours=hours if status != "claimed" else None,
                        status=status,
                        confirmed_at=at.replace(hour=18) if status == "confirmed" else None,
                        created_at=at,
                    )
                )
        for i, mid in enumerate(members[::3]):
            await self.conn.execute(
                insert(_t(Service)).values(
                    **self.base(),
                    member_id=mid,
                    what=self.rng.choice(("帮独居老人代购药品", "楼道义务清扫", "小区夜间巡逻")),
                    place=f"{self.name}{1 + i}号楼",
                    served_on=date(2026, 10, 3 + 3 * i),
                    hours=Decimal("1.5"),
                    status="confirmed",
                    confirmed_at=_at(2026, 10, 4 + 3 * i, 10),
                    created_at=_at(2026, 10, 3 + 3 * i, 20),
                )
            )
