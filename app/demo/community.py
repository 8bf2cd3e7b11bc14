"""A plausible quarter of the community mechanisms for three demo communities, plus the grid
support list (25 departments, 86 measures, as in Yuehu).

Deterministic (fixed dates in the third and fourth quarters of 2026, choices from a seeded
generator) and idempotent: a community that already has its big party committee is skipped, and
measures and departments are inserted by code. Written with plain inserts (no events: this is
history, not live news)."""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.community.models import Step, Task, Unit
from app.deliberation.models import Matter, Opinion, Rating
from app.demo.accounts import DISTRICT, _mobile, _name
from app.lists.models import Need, Project, ProjectResource, ProjectUnit, Resource
from app.loop import deadlines
from app.meetings.models import Meeting, UnitRating
from app.volunteers.models import PartyMember, Service, VolunteerTask

SH = ZoneInfo("Asia/Shanghai")
COMMUNITIES = ("360602001001", "360602003001", "360602004001")  # 立新, 磷肥厂, 东湖家园

# The nine departments a district has besides the sixteen the loop routes cases to.
MORE_DEPARTMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("ZZB", "区委组织部", "Organisation Department", "区委"),
    ("SFJ", "区司法局", "Justice Bureau", "区人民政府"),
    ("CZJ", "区财政局", "Finance Bureau", "区人民政府"),
    ("WLJ", "区文化广电新闻出版旅游局", "Culture and Tourism Bureau", "区人民政府"),
    ("TYJ", "区退役军人事务局", "Veterans Affairs Bureau", "区人民政府"),
    ("NYJ", "区农业农村局", "Agriculture and Rural Affairs Bureau", "区人民政府"),
    ("ZGH", "区总工会", "Federation of Trade Unions", "区委"),
    ("TWQ", "共青团月湖区委", "Communist Youth League District Committee", "区委"),
    ("FLH", "区妇女联合会", "Women's Federation", "区委"),
)

# The grid support list: each department's measures for grids, with the case categories they
# help with (25 departments, 86 measures).
# fmt: off
MEASURES: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "CGJ": (("网格上报的暴露垃圾、道路不洁 4 小时内到场处置", ("SR-01", "SR-02")),
            ("执法队员包片联系网格，每周随网格员巡查一次", ("JM-01", "JM-02", "JM-03")),
            ("井盖、路灯等市政设施故障 1 个工作日内修复", ("GY-01", "GY-02")),
            ("违章搭建网格首报、城管快查快拆联动", ("FW-01",))),
    "ZJJ": (("老旧小区改造项目优先安排网格反映强烈的小区", ("SQ-03",)),
            ("物业服务纠纷由房管所派员参加网格调解", ("SQ-01",)),
            ("危房、外立面隐患网格上报后 2 个工作日内鉴定", ("FW-02", "FW-04")),
            ("瓶装燃气安全隐患联合网格开展入户排查", ("AQ-02",))),
    "MZJ": (("独居、高龄老人网格探视信息与民政救助台账互通", ("MS-01",)),
            ("困难群众救助申请由网格员代办、民政限时审核", ("MS-02",)),
            ("困境儿童关爱由网格员落实定期走访", ("MS-05",)),
            ("社区社会组织孵化向网格治理项目倾斜", ())),
    "ZFW": (("矛盾纠纷网格首调、街道复调、区级会商三级联动", ("MD-01", "MD-06")),
            ("网格员专项培训每年不少于两次", ()),
            ("视频监控设施故障由政法委协调限时修复", ("QT-01",)),
            ("群体性事件苗头网格直报区综治中心", ("ZA-05",))),
    "GAJ": (("社区民警兼任网格指导员，每月参加网格例会", ("ZA-03",)),
            ("机动车乱停放网格上报后交警 2 小时内处置", ("JM-04",)),
            ("高空抛物线索网格员可直接推送派出所", ("ZA-07",)),
            ("黄赌毒线索网格举报奖励", ("ZA-04",))),
    "SCJ": (("无证经营、食品安全隐患网格上报后 1 个工作日内核查", ("SP-01", "SP-02")),
            ("电梯等特种设备隐患网格上报直通维保单位", ("AQ-03",)),
            ("保健品虚假宣传进网格专项宣传", ("SP-04",)),
            ("网格内小餐饮食品安全培训每季度一次", ("SP-02",))),
    "XFJ": (("消防通道堵塞网格上报后消防站 2 小时内响应", ("XF-01",)),
            ("电动车违规充电联合网格入户宣传与整治", ("SQ-02", "XF-05")),
            ("楼道堆物网格发现、消防督促清理", ("XF-02",)),
            ("“三合一”场所网格排查清单季度更新", ("XF-04",))),
    "WJW": (("家庭医生签约团队与网格一一对应", ()),
            ("严重精神障碍患者网格随访信息共享", ("ZA-06",)),
            ("传染病疫情线索网格直报疾控", ("TF-08",)),
            ("网格内老年人健康体检组织到社区", ())),
    "RSJ": (("就业援助对象网格摸排、人社精准推荐岗位", ("MS-06",)),
            ("拖欠农民工工资线索网格直报劳动监察", ("MD-04",)),
            ("职业技能培训名额向网格困难群众倾斜", ("MS-06",)),
            ("社保政策宣传进网格", ())),
    "SFJ": (("一社区一法律顾问，网格预约法律咨询", ()),
            ("人民调解员进驻网格化服务站", ("MD-01", "MD-02")),
            ("社区矫正对象网格协管", ()),
            ("普法宣传资料按网格配送", ())),
    "ZZB": (("在职党员到社区“双报到”服务纳入年度考核", ()),
            ("网格党支部书记培训每年一轮", ()),
            ("社区“大党委”兼职委员履职评议结果报备", ()),
            ("优秀网格员纳入社区后备干部", ())),
    "STJ": (("噪声、油烟、异味污染网格上报后 1 个工作日内监测", ("ST-01", "ST-02", "ST-04")),
            ("违法排污线索网格直报执法支队", ("ST-03",)),
            ("施工噪声扰民夜间值班响应", ("SG-01",))),
    "YJJ": (("安全生产隐患网格排查清单与培训", ("AQ-01",)),
            ("应急物资储备点按网格布设", ()),
            ("汛期网格员应急值守与信息直报", ("TF-05",))),
    "SLJ": (("防汛设施损坏网格上报后 1 个工作日内修复", ("QT-02",)),
            ("溺水安全隐患水域网格巡查", ("AQ-05",)),
            ("河湖“网格+河长”联动巡河", ("SR-03",))),
    "JYJ": (("校园周边安全隐患网格与学校联防", ("ZA-08",)),
            ("公共健身器材损坏网格上报限时维修", ("GY-06",)),
            ("学校场地节假日向社区开放", ())),
    "JTJ": (("公交站亭损坏网格上报后 2 个工作日内修复", ("DL-03",)),
            ("农村公路损坏网格巡查上报", ("DL-05",)),
            ("网格反映的公交线路需求纳入年度调整", ())),
    "ZRJ": (("违法占地网格首报、自然资源快查", ("FW-03",)),
            ("地质灾害隐患点网格员兼任监测员", ("TF-07",)),
            ("土地权属纠纷调处指导", ("MD-03",))),
    "GDJ": (("供电故障网格上报 1 小时内响应", ("TF-04",)),
            ("电力设施安全隐患网格巡查联动", ("GY-05",)),
            ("居民小区电动车充电设施建设技术支持", ("SQ-02",))),
    "CZJ": (("网格化服务管理经费纳入区级预算", ()),
            ("社区“大党委”共建项目资金以奖代补", ()),
            ("网格员补贴按月足额发放", ())),
    "WLJ": (("文化活动进网格，每季度送戏送电影", ()),
            ("社区文体场地建设补助", ()),
            ("非法出版物网格排查", ())),
    "TYJ": (("退役军人服务站与网格化服务站合署办公", ()),
            ("退役军人信访矛盾网格首接", ("MD-06",)),
            ("困难退役军人网格帮扶台账", ("MS-02",))),
    "NYJ": (("农村网格违规饲养家禽家畜整治指导", ("SQ-06",)),
            ("农村人居环境整治网格督导", ("SR-01", "SR-05")),
            ("农技服务进农村网格", ())),
    "ZGH": (("困难职工网格摸排与帮扶", ("MS-02",)),
            ("户外劳动者驿站向网格员开放", ()),
            ("职工法律援助进网格", ("MD-04",))),
    "TWQ": (("青年志愿者结对网格开展服务", ()),
            ("困境青少年网格关爱", ("MS-05",)),
            ("“青年网格员”招募培训", ())),
    "FLH": (("婚姻家庭纠纷网格调解与妇联维权联动", ("MD-02",)),
            ("家庭暴力线索网格直报与庇护", ("ZA-02",)),
            ("“巾帼网格员”志愿服务", ())),
}
# fmt: on

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


async def load_departments_and_measures(conn: AsyncConnection) -> int:
    await conn.execute(
        text(
            """
            INSERT INTO departments (code, name, name_en, parent_org, district_id, contact, phone)
            VALUES (:code, :name, :name_en, :parent_org, (SELECT id FROM areas WHERE code = :district),
                    '办公室', :phone)
            ON CONFLICT (code) DO NOTHING
            """
        ),
        [
            {
                "code": c,
                "name": n,
                "name_en": en,
                "parent_org": p,
                "district": DISTRICT,
                "phone": f"0701-63{i:05d}",
            }
            for i, (c, n, en, p) in enumerate(MORE_DEPARTMENTS, start=1)
        ],
    )
    rows = []
    for n, (dept, measures) in enumerate(MEASURES.items(), start=1):
        for i, (title, cats) in enumerate(measures, start=1):
            rows.append(
                {
                    "code": f"{dept}-{i:02d}",
                    "dept": dept,
                    "title": title,
                    "content": f"{title}。网格员可通过网格管理信息平台或联系本部门网格联络员获得支持。",
                    "cats": list(cats),
                    "phone": f"0701-64{n:03d}{i:02d}",
                }
            )
    result = await conn.execute(
        text(
            """
            INSERT INTO grid_support_measures (district_id, department_id, code, title, content,
                                               category_codes, contact, phone)
            SELECT d.district_id, d.id, :code, :title, :content, CAST(:cats AS varchar[]), '网格联络员',
                   :phone
            FROM departments d WHERE d.code = :dept AND d.district_id IS NOT NULL
            ON CONFLICT (code) DO NOTHING
            """
        ),
        rows,
    )
    return int(result.rowcount or 0)


class _Builder:
    """One community's quarter."""

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

    async def build(self) -> None:
        u = await self.units()
        needs = await self.needs()
        res = await self.resources(u)
        await self.projects(u, needs, res)
        await self.meetings(u, needs)
        await self.ratings(u)
        await self.matters(u)
        await self.volunteers(u)

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


async def load_community(conn: AsyncConnection) -> int:
    """The demo quarter of three communities and the grid support list; returns how many
    communities it filled (0 on a second run). Like the demo accounts, not in production: its
    people, ratings and votes are made up."""
    from app.config import get_settings

    if get_settings().env == "production":
        return 0
    await load_departments_and_measures(conn)
    filled = 0
    for code in COMMUNITIES:
        b = _Builder(conn, code)
        if await b.setup():
            await b.build()
            filled += 1
    return filled
