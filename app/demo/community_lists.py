"""Demo community, part 1: co-building units and the three lists (需求、资源、项目清单)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import insert

from app.community.models import Unit
from app.demo.accounts import _mobile, _name
from app.demo.community_base import _at, _Base, _ins, _t
from app.lists.models import Need, Project, ProjectResource, ProjectUnit, Resource


class _Lists(_Base):
    """The big party committee's units and the three lists: needs, resources, projects."""

    async def units(self) -> dict[str, int]:
        specs = [
            (
                "police",
                f"{self.street}派出所",
                "government",
                None,
                True,
                "平安建设、矛盾调解、治安巡逻",
            ),
            ("cgj", "区城市管理局", "government", "CGJ", True, "市容环境、违建整治"),
            ("zjj", "区住房和城乡建设局", "government", "ZJJ", True, "老旧小区改造、物业监管"),
            (
                "hospital",
                "区人民医院党总支",
                "public_institution",
                None,
                True,
                "义诊巡诊、健康讲座",
            ),
            (
                "school",
                f"{self.short}小学",
                "public_institution",
                None,
                True,
                "场地开放、四点半课堂",
            ),
            ("bank", "中国银行月湖支行", "enterprise", None, True, "共建资金、金融知识宣传"),
            ("property", f"{self.short}物业服务公司", "property", None, True, "设施维修、环境保洁"),
            ("power", "国网月湖供电中心", "enterprise", "GDJ", True, "用电安全、充电设施"),
            ("tax", "区税务局机关党支部", "party_org", None, True, "在职党员下沉服务、政策宣传"),
            ("owners", f"{self.short}小区业主委员会", "owners_committee", None, False, None),
            ("shop", f"{self.short}便民超市", "enterprise", None, False, None),
        ]
        out = {}
        for key, name, kind, dept, member, duties in specs:
            uid = await _ins(
                self.conn,
                _t(Unit),
                **self.base(),
                name=name,
                kind=kind,
                department_id=self.depts.get(dept) if dept else None,
                is_member=member,
                representative=_name(f"{self.code}-{key}-rep") if member else None,
                duties=duties,
                contact=_name(f"{self.code}-{key}-contact"),
                phone=_mobile(f"{self.code}-{key}"),
                location=self.near(),
                dual_registered_on=date(2026, 3, 5) if key in ("tax", "hospital", "bank") else None,
                created_at=_at(2026, 3, 1),
            )
            await self.step("unit", uid, "created", _at(2026, 3, 1), name)
            out[key] = uid
        return out

    async def needs(self) -> dict[str, int]:
        # key, title, category, households, urgency, source, case category, status
        specs = [
            (
                "elderly",
                "独居老人需要定期上门探视",
                "elderly",
                18,
                "high",
                "grid_visit",
                None,
                "matched",
            ),
            ("water", "高层二次供水水压不足", "facilities", 120, "high", "meeting", None, "done"),
            ("stairs", "楼道堆物清理难", "safety", 60, "normal", "case", "XF-02", "open"),
            (
                "parking",
                "小区停车位紧张，外来车辆占位",
                "parking",
                200,
                "normal",
                "grid_visit",
                None,
                "open",
            ),
            ("charging", "电动车集中充电桩不足", "safety", 150, "high", "case", "SQ-02", "open"),
            (
                "kids",
                "双职工家庭儿童课后托管",
                "children",
                45,
                "normal",
                "grid_visit",
                None,
                "open",
            ),
            ("fitness", "健身器材老化损坏", "facilities", 300, "low", "case", "GY-06", "open"),
            (
                "jobs",
                "失业人员就业技能培训",
                "employment",
                25,
                "normal",
                "grid_visit",
                None,
                "open",
            ),
            ("wall", "老旧楼栋外墙渗水", "facilities", 36, "high", "proposal", None, "open"),
            ("law", "家门口法律咨询", "legal", 500, "low", "hotline", None, "closed"),
        ]
        out = {}
        for i, (key, title, cat, hh, urg, src, case_cat, status) in enumerate(specs):
            at = _at(2026, 7 + i % 3, 3 + 2 * i)
            grid = self.grids[i % len(self.grids)] if self.grids else None
            nid = await _ins(
                self.conn,
                _t(Need),
                **self.base(),
                grid_id=grid,
                title=title,
                description=f"{self.name}{title}，网格走访中居民多次反映。",
                category=cat,
                households=hh,
                urgency=urg,
                source=src,
                case_category=case_cat,
                case_count=self.rng.randint(4, 12) if case_cat else None,
                location=self.near(),
                status=status,
                created_at=at,
            )
            await self.step("need", nid, "created", at, title, actor=f"{self.name}网格员")
            if status == "closed":
                await self.step(
                    "need", nid, "closed", at.replace(day=28), "已由司法所“法律明白人”常态服务解决"
                )
            out[key] = nid
        return out

    async def resources(self, u: dict[str, int]) -> dict[str, int]:
        specs = [
            ("hospital", "volunteers", "医护志愿者上门巡诊", None, 8, "人", ["elderly", "health"]),
            (
                "bank",
                "money",
                "党建共建资金",
                Decimal("50000"),
                None,
                None,
                ["elderly", "children", "facilities"],
            ),
            (
                "zjj",
                "money",
                "老旧小区改造配套资金",
                Decimal("2000000"),
                None,
                None,
                ["facilities", "parking"],
            ),
            (
                "school",
                "venue",
                "学校操场与教室课后开放",
                None,
                120,
                "平方米",
                ["children", "culture"],
            ),
            ("property", "skills", "水电维修服务队", None, 6, "人", ["facilities", "safety"]),
            (
                "power",
                "skills",
                "电力检修与充电桩安装指导",
                None,
                4,
                "人",
                ["safety", "facilities"],
            ),
            ("police", "skills", "反诈与法治宣传", None, 3, "人", ["safety", "legal"]),
            ("cgj", "equipment", "环卫清运车辆", None, 2, "台", ["environment", "safety"]),
            (
                "tax",
                "volunteers",
                "在职党员志愿服务队",
                None,
                20,
                "人",
                ["elderly", "employment", "culture"],
            ),
        ]
        out = {}
        for key, kind, title, amount, cap, measure, cats in specs:
            rid = await _ins(
                self.conn,
                _t(Resource),
                **self.base(),
                unit_id=u[key],
                kind=kind,
                title=title,
                description=f"{title}（{self.name}共建）",
                amount=amount,
                capacity=cap,
                measure=measure,
                categories=cats,
                contact=_name(f"{self.code}-{key}-contact"),
                phone=_mobile(f"{self.code}-{key}"),
                valid_from=date(2026, 1, 1),
                valid_until=date(2026, 12, 31),
                location=self.near(),
                created_at=_at(2026, 3, 10),
            )
            await self.step("resource", rid, "created", _at(2026, 3, 10), title)
            out[key] = rid
        return out

    async def projects(self, u: dict[str, int], needs: dict[str, int], res: dict[str, int]) -> None:
        start = _at(2026, 8, 10)
        p1 = await _ins(
            self.conn,
            _t(Project),
            **self.base(),
            need_id=needs["elderly"],
            title="银龄关爱上门巡诊",
            lead_unit_id=u["hospital"],
            status="in_progress",
            progress=60,
            due_on=date(2026, 12, 31),
            created_at=start,
        )
        p2 = await _ins(
            self.conn,
            _t(Project),
            **self.base(),
            need_id=needs["water"],
            title="高层二次供水改造",
            lead_unit_id=u["zjj"],
            status="done",
            progress=100,
            due_on=date(2026, 10, 31),
            evaluation="excellent",
            evaluation_note="改造后水压稳定，居民满意",
            completed_at=_at(2026, 10, 28, 16),
            created_at=_at(2026, 7, 20),
        )
        for pid, rids, uids in (
            (p1, ["hospital", "tax"], ["hospital", "bank", "tax"]),
            (p2, ["zjj", "bank"], ["zjj", "bank", "property"]),
        ):
            for k in rids:
                await self.conn.execute(
                    insert(_t(ProjectResource)).values(
                        **self.base(), project_id=pid, resource_id=res[k]
                    )
                )
            for k in uids:
                await self.conn.execute(
                    insert(_t(ProjectUnit)).values(**self.base(), project_id=pid, unit_id=u[k])
                )
        await self.step("project", p1, "created", start, "银龄关爱上门巡诊")
        await self.step("project", p1, "start", start.replace(day=15))
        await self.step("project", p1, "progress", _at(2026, 11, 2), progress=60)
        await self.step("project", p2, "created", _at(2026, 7, 20), "高层二次供水改造")
        await self.step("project", p2, "start", _at(2026, 7, 25))
        await self.step("project", p2, "complete", _at(2026, 10, 28, 16), evaluation="excellent")
        await self.task("project", p1, "建立独居老人探视台账", u["hospital"], 10, start, 8)
        await self.task("project", p1, "每月上门巡诊一次", u["hospital"], 60, start, None, 60)
        await self.task("project", p2, "水泵房设备更换", u["zjj"], 30, _at(2026, 7, 25), 27)
