"""Demo community, part 2: joint meetings (联席会议) and two-way evaluation (双向评议)."""

from __future__ import annotations

from sqlalchemy import insert, select

from app.community.models import Unit
from app.demo.accounts import _name
from app.demo.community_base import _at, _Base, _ins, _t
from app.meetings.models import Meeting, UnitRating


class _Meetings(_Base):
    """Joint meetings with resolutions, and the two-way evaluation of member units."""

    async def meetings(self, u: dict[str, int], needs: dict[str, int]) -> None:
        members = [k for k in u if k not in ("owners", "shop")]
        attendees = [{"unit_id": u[k], "name": k, "representative": None} for k in members]
        names = {
            r.id: (r.name, r.representative)
            for r in await self.conn.execute(
                select(_t(Unit).c.id, _t(Unit).c.name, _t(Unit).c.representative).where(
                    _t(Unit).c.community_id == self.id
                )
            )
        }
        for a in attendees:
            a["name"], a["representative"] = names[a["unit_id"]]
        q3 = _at(2026, 9, 18, 9, 30)
        q4 = _at(2026, 11, 20, 15)
        m3 = await _ins(
            self.conn,
            _t(Meeting),
            **self.base(),
            title=f"{self.name}大党委2026年第三季度联席会议",
            held_at=q3,
            period="2026Q3",
            place=f"{self.name}党群服务中心",
            status="held",
            attendees=attendees,
            topics=[
                {"kind": "need", "ref_id": needs["water"], "title": "高层二次供水水压不足"},
                {"kind": "need", "ref_id": needs["parking"], "title": "小区停车位紧张"},
                {"kind": "other", "ref_id": None, "title": "国庆期间安全稳定工作"},
            ],
            minutes="会议听取了各成员单位认领事项推进情况，议定：二次供水改造由区住建局牵头、物业配合；"
            "停车位挖潜由物业牵头；节前楼道堆物联合整治由派出所牵头。",
            created_at=q3,
        )
        await self.step("meeting", m3, "created", q3)
        await self.step("meeting", m3, "held", q3)
        await self.step("meeting", m3, "resolved", q3.replace(hour=11))
        await self.task("meeting", m3, "制定二次供水改造施工方案", u["zjj"], 10, q3, 7)
        await self.task("meeting", m3, "小区停车位挖潜，施划临时车位", u["property"], 15, q3, 19)
        await self.task("meeting", m3, "节前楼道堆物联合整治", u["police"], 5, q3, 4)
        m4 = await _ins(
            self.conn,
            _t(Meeting),
            **self.base(),
            title=f"{self.name}大党委2026年第四季度联席会议",
            held_at=q4,
            period="2026Q4",
            place=f"{self.name}党群服务中心",
            status="held",
            attendees=attendees[:-1],
            topics=[
                {"kind": "need", "ref_id": needs["charging"], "title": "电动车集中充电桩不足"},
                {"kind": "need", "ref_id": needs["kids"], "title": "双职工家庭儿童课后托管"},
                {"kind": "need", "ref_id": needs["stairs"], "title": "楼道堆物清理难"},
            ],
            minutes="各成员单位述职；议定：充电桩选址由供电中心提出方案；课后托管场地由小学提供；"
            "物业对楼道堆物开展复查。",
            created_at=q4,
        )
        await self.step("meeting", m4, "created", q4)
        await self.step("meeting", m4, "held", q4)
        await self.step("meeting", m4, "resolved", q4.replace(hour=17))
        await self.task("meeting", m4, "提出电动车集中充电桩选址方案", u["power"], 10, q4, None, 40)
        await self.task("meeting", m4, "开放教室开展四点半课堂", u["school"], 15, q4, None, 20)
        await self.task("meeting", m4, "楼道堆物复查", u["property"], 3, q4, None, 50)

    async def ratings(self, u: dict[str, int]) -> None:
        raters = [
            ("street", self.street),
            ("community", f"{self.name}党委"),
            ("grid", "第一网格党支部"),
            ("grid", "第二网格党支部"),
        ]
        raters += [("resident", f"居民代表{_name(f'{self.code}-rep{i}')}") for i in range(3)]
        for key, uid in u.items():
            if key in ("owners", "shop"):
                continue
            weights = (0.2, 0.7, 0.1) if key == "property" else (0.55, 0.42, 0.03)
            for level, name in raters:
                rating = self.rng.choices(("excellent", "qualified", "unqualified"), weights)[0]
                await self.conn.execute(
                    insert(_t(UnitRating)).values(
                        **self.base(),
                        unit_id=uid,
                        period="2026Q3",
                        rater_level=level,
                        rater_name=name,
                        rating=rating,
                        created_at=_at(2026, 10, 12),
                    )
                )
