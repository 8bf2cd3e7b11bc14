"""The grid support list (网格支持清单) of the demo district: the nine departments a district has
besides the sixteen the loop routes cases to, and 86 measures of 25 departments. Inserted by code
(idempotent)."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.demo.accounts import DISTRICT

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


async def load_departments_and_measures(conn: AsyncConnection) -> int:
    await conn.execute(
        text(
            """
            INSERT INTO departments (code, name, name_en, parent_org, district_id, contact, phone)
            SELECT :code, :name, :name_en, :parent_org, a.id, '办公室', :phone
            FROM (SELECT 1) one LEFT JOIN areas a ON a.code = :district
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
