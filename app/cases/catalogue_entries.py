"""The rows of the default category catalogue (app/cases/catalogue.py), one `_cat` per category,
with the handling-limit profiles they share. Codes are stable: never renumber, only append."""

from __future__ import annotations

from app.cases.catalogue_types import URGENCIES, Category, HandleUnit, Limit

_SIGN_IN_HOURS: dict[str, float] = {"normal": 2, "urgent": 1, "critical": 0.5}

# Handling limits (normal, urgent, critical): "4h" = 4 working hours, "3d" = 3 working days.
QUICK = ("1d", "4h", "2h")  # cleaning, street order, obstructions
EMERGENCY = ("4h", "2h", "2h")  # gas leaks, fires: never really "normal"
PROMPT = ("2d", "1d", "4h")  # small jobs needing a crew or a vehicle
REPAIR = ("3d", "1d", "4h")  # facility repairs
HAZARD = ("3d", "1d", "2h")  # hazards that can hurt someone
SERVICE = ("5d", "1d", "2h")  # visits, checks, support
FIX = ("5d", "2d", "4h")  # replacements, works needing materials
CASEWORK = ("10d", "3d", "1d")  # applications, assistance, procedures
MEDIATE = ("10d", "3d", "4h")  # disputes needing mediation
ENFORCE = ("15d", "5d", "1d")  # enforcement procedure, investigations, land disputes


def _limit(urgency: str, spec: str) -> Limit:
    unit: HandleUnit = "days" if spec.endswith("d") else "hours"
    n = float(spec[:-1])
    handle = int(n) if n.is_integer() else n  # 3 rather than 3.0 in the stored JSON
    return Limit(sign_in_hours=_SIGN_IN_HOURS[urgency], handle=handle, handle_unit=unit)


def _limits(profile: tuple[str, str, str]) -> dict[str, Limit]:
    return {u: _limit(u, spec) for u, spec in zip(URGENCIES, profile, strict=True)}


def _cat(
    code: str,
    name: str,
    name_en: str,
    lead: str,
    co: tuple[str, ...],
    profile: tuple[str, str, str],
    radius: int,
    keywords: str,
    description: str,
) -> Category:
    return Category(
        code=code,
        class_code=code.split("-")[0],
        name=name,
        name_en=name_en,
        lead_department=lead,
        co_departments=co,
        limits=_limits(profile),
        duplicate_radius_m=radius,
        keywords=tuple(keywords.split()),
        description=description,
    )


# Rows: code, name, English name, lead department, co-departments, limit profile,
# duplicate radius (m) / keywords (space-separated) / description. Kept as a table on purpose.
# fmt: off
ENTRIES: tuple[Category, ...] = (
    # ── 市容环境 (events) ──
    _cat(
        "SR-01", "暴露垃圾", "Exposed rubbish", "CGJ", (), QUICK, 50,
        "垃圾 垃圾堆 乱扔垃圾 垃圾满溢 积存垃圾 大件垃圾 旧家具",
        "公共区域裸露堆放的生活垃圾、丢弃的旧家具家电等大件垃圾，或垃圾容器满溢",
    ),
    _cat(
        "SR-02", "道路不洁", "Dirty road", "CGJ", (), QUICK, 100,
        "路面脏 污渍 油污 清扫 保洁 泥土",
        "道路、人行道、广场保洁不到位，有明显污物、油渍或泥土",
    ),
    _cat(
        "SR-03", "水域不洁", "Dirty waterway", "SLJ", ("CGJ",), REPAIR, 200,
        "河道 漂浮物 水面垃圾 池塘 沟渠 水葫芦",
        "河道、湖塘、沟渠水面有漂浮垃圾、水生植物疯长或岸坡垃圾",
    ),
    _cat(
        "SR-04", "废弃车辆", "Abandoned vehicle", "GAJ", ("CGJ",), FIX, 30,
        "僵尸车 废弃汽车 长期停放 报废车 无牌车",
        "长期停放在道路或公共场所、无人使用的废弃机动车（僵尸车）",
    ),
    _cat(
        "SR-05", "露天焚烧", "Open burning", "CGJ", ("STJ",), QUICK, 300,
        "焚烧垃圾 烧树叶 烧秸秆 烟雾 冒烟 烧纸",
        "露天焚烧垃圾、落叶、秸秆等产生烟尘",
    ),
    _cat(
        "SR-06", "道路破损", "Damaged road surface", "CGJ", ("ZJJ", "JTJ"), FIX, 50,
        "坑洼 坑槽 路面开裂 人行道板 路沿石 盲道",
        "车行道、人行道路面破损、坑洼、松动，影响通行安全",
    ),
    # ── 宣传广告 ──
    _cat(
        "GG-01", "非法小广告", "Illegal flyers and graffiti", "CGJ", (), QUICK, 50,
        "牛皮癣 小广告 乱张贴 乱涂写 喷涂号码 办证",
        "墙面、电杆、设施上乱张贴、乱涂写、乱刻画的小广告",
    ),
    _cat(
        "GG-02", "违规户外广告", "Unauthorised outdoor advertising", "CGJ", (), FIX, 50,
        "户外广告 广告牌 横幅 条幅 灯箱 立式广告牌 未经审批",
        "未经审批或超期设置的户外广告、横幅、占道立式广告牌",
    ),
    # ── 施工管理 ──
    _cat(
        "SG-01", "施工噪声扰民", "Construction noise", "STJ", ("ZJJ", "CGJ"), QUICK, 500,
        "夜间施工 工地噪音 打桩 机械噪声 施工扰民",
        "建筑施工噪声超标或未经许可夜间施工，影响周边居民休息",
    ),
    _cat(
        "SG-02", "建筑垃圾乱倒", "Illegal dumping of construction waste", "CGJ", (), PROMPT, 100,
        "渣土 建筑垃圾 装修垃圾 偷倒 抛洒 渣土车",
        "随意倾倒建筑垃圾、装修垃圾，或渣土车运输抛洒滴漏",
    ),
    _cat(
        "SG-03", "占道挖掘施工", "Unauthorised roadworks", "CGJ", ("GAJ", "ZJJ"), REPAIR, 100,
        "挖路 破路 占道施工 掘路 未恢复路面",
        "未经许可挖掘、占用道路施工，或施工后未按期恢复路面",
    ),
    _cat(
        "SG-04", "工地扬尘", "Construction-site dust", "ZJJ", ("STJ", "CGJ"), QUICK, 300,
        "扬尘 未覆盖 裸土 车辆带泥 洒水 围挡",
        "施工工地裸土未覆盖、未洒水降尘、围挡缺失或车辆带泥上路",
    ),
    # ── 突发事件 ──
    _cat(
        "TF-01", "路面塌陷", "Road collapse", "CGJ", ("ZJJ", "YJJ"), QUICK, 50,
        "塌陷 地面下沉 路面坍塌 空洞",
        "道路或公共场地突然塌陷、下沉，危及人员车辆安全",
    ),
    _cat(
        "TF-02", "燃气泄漏", "Gas leak", "ZJJ", ("XFJ", "YJJ"), EMERGENCY, 100,
        "燃气 煤气 天然气 漏气 燃气味",
        "管道燃气或燃气设施泄漏，闻到明显燃气味",
    ),
    _cat(
        "TF-03", "供水管道爆裂", "Burst water main", "ZJJ", ("CGJ",), QUICK, 200,
        "爆管 水管破裂 自来水 冒水 停水",
        "供水管道爆裂、大量冒水或大面积停水",
    ),
    _cat(
        "TF-04", "供电故障", "Power outage", "GDJ", (), QUICK, 300,
        "停电 断电 跳闸 电压不稳 供电",
        "片区停电、断电或电压异常",
    ),
    _cat(
        "TF-05", "积水内涝", "Waterlogging", "SLJ", ("CGJ",), QUICK, 300,
        "积水 内涝 淹水 排水不畅 暴雨 倒灌",
        "降雨后道路、小区、地下空间积水内涝",
    ),
    _cat(
        "TF-06", "火灾", "Fire", "XFJ", ("YJJ",), EMERGENCY, 300,
        "着火 起火 冒烟 火情 失火",
        "建筑、车辆、山林等发生火情（先拨打119）",
    ),
    _cat(
        "TF-07", "地质灾害隐患", "Geological hazard", "ZRJ", ("YJJ",), HAZARD, 500,
        "山体滑坡 崩塌 泥石流 地面沉降 地裂缝 边坡",
        "山体滑坡、崩塌、地面沉降、地裂缝等地质灾害隐患或险情",
    ),
    _cat(
        "TF-08", "传染病疫情线索", "Possible infectious disease outbreak", "WJW", (), QUICK, 500,
        "疫情 传染病 发热 聚集性 腹泻 登革热",
        "发现聚集性发热、腹泻等疑似传染病疫情线索",
    ),
    # ── 街面秩序 ──
    _cat(
        "JM-01", "店外经营", "Business spilling onto the pavement", "CGJ", (), QUICK, 50,
        "出店经营 跨门营业 门前摆放 占道经营",
        "沿街门店超出门窗外墙摆放商品、经营作业",
    ),
    _cat(
        "JM-02", "流动摊贩", "Street hawkers", "CGJ", (), QUICK, 200,
        "摆摊 游商 小贩 占道摆卖 夜市",
        "在道路、广场、桥下等处无照流动摆摊经营",
    ),
    _cat(
        "JM-03", "占道堆物", "Goods stored on the road", "CGJ", (), QUICK, 50,
        "乱堆物料 堆放杂物 占用人行道 堆料",
        "在道路、人行道上堆放物料、杂物，影响通行",
    ),
    _cat(
        "JM-04", "机动车乱停放", "Illegally parked cars", "GAJ", ("CGJ",), QUICK, 50,
        "乱停车 违停 占道停车 堵路 人行道停车",
        "机动车在道路、人行道、路口违规停放",
    ),
    _cat(
        "JM-05", "非机动车乱停放", "Disorderly parked bikes and e-bikes", "CGJ", ("GAJ",),
        QUICK, 50,
        "电动车乱停 自行车 三轮车 占用盲道",
        "电动自行车、自行车、三轮车在人行道、盲道、出入口乱停乱放",
    ),
    _cat(
        "JM-06", "露天烧烤", "Open-air barbecue", "CGJ", ("STJ",), QUICK, 100,
        "烧烤 夜宵摊 油烟 占道烧烤",
        "在道路、广场等露天场所设摊烧烤",
    ),
    # ── 扩展事件 ──
    _cat(
        "KZ-01", "共享单车乱停放", "Disorderly shared bikes", "CGJ", ("JTJ",), QUICK, 100,
        "共享单车 共享电单车 单车堆积 乱停",
        "共享单车、共享电单车在禁停区停放或大量堆积",
    ),
    _cat(
        "KZ-02", "其他城市管理问题", "Other city-management issue", "CGJ", (), REPAIR, 100,
        "其他 城市管理",
        "无法归入其他类别的城市管理问题，由区综治中心研判后分派",
    ),
    # ── 矛盾纠纷 (mediated under the 政法委's 综治 system; 司法所 is not a district department
    #    of its own here) ──
    _cat(
        "MD-01", "邻里纠纷", "Neighbour dispute", "ZFW", (), MEDIATE, 30,
        "邻居 漏水 吵架 占用公共空间 采光 噪音矛盾",
        "邻里之间因漏水、噪音、公共空间、采光等引发的矛盾纠纷",
    ),
    _cat(
        "MD-02", "婚姻家庭纠纷", "Marriage or family dispute", "ZFW", ("MZJ",), MEDIATE, 30,
        "家庭矛盾 离婚 赡养 抚养 继承 婆媳",
        "婚姻、赡养、抚养、继承等家庭内部矛盾纠纷",
    ),
    _cat(
        "MD-03", "土地权属纠纷", "Land ownership dispute", "ZRJ", ("ZFW",), ENFORCE, 200,
        "宅基地 山林 地界 承包地 确权",
        "宅基地、山林、地界等土地权属争议",
    ),
    _cat(
        "MD-04", "拖欠农民工工资", "Unpaid migrant workers' wages", "RSJ", ("ZJJ", "ZFW"),
        MEDIATE, 200,
        "欠薪 讨薪 工资拖欠 劳资纠纷 包工头",
        "用人单位或工程项目拖欠农民工工资等劳资纠纷",
    ),
    _cat(
        "MD-05", "征地拆迁纠纷", "Land acquisition or demolition dispute", "ZJJ", ("ZRJ", "ZFW"),
        ENFORCE, 300,
        "征收 拆迁 补偿 安置 征地",
        "房屋征收、征地拆迁中的补偿安置争议",
    ),
    _cat(
        "MD-06", "矛盾纠纷激化风险", "Dispute at risk of escalating", "ZFW", ("GAJ",), HAZARD, 200,
        "扬言 极端 民转刑 持械 激化 报复",
        "当事人情绪激动、扬言报复等可能引发“民转刑”或极端事件的矛盾纠纷",
    ),
    # ── 社会治安 ──
    _cat(
        "ZA-01", "社会生活噪声扰民", "Neighbourhood noise", "GAJ", ("CGJ",), QUICK, 300,
        "噪音 广场舞 高音喇叭 装修噪音 商铺音响 宠物叫",
        "广场舞、商铺音响、室内活动等社会生活噪声持续扰民",
    ),
    _cat(
        "ZA-02", "家庭暴力", "Domestic violence", "GAJ", ("MZJ",), QUICK, 30,
        "家暴 殴打 虐待 人身安全保护令",
        "家庭成员之间的殴打、虐待等家庭暴力行为或线索",
    ),
    _cat(
        "ZA-03", "治安隐患", "Public-order hazard", "GAJ", (), QUICK, 200,
        "可疑人员 可疑物品 打架 盗窃 无人看管",
        "可疑人员、可疑物品、打架斗殴、盗窃等治安隐患",
    ),
    _cat(
        "ZA-04", "黄赌毒线索", "Vice, gambling or drugs tip-off", "GAJ", (), REPAIR, 100,
        "赌博 赌场 吸毒 贩毒 卖淫 种植罂粟",
        "涉黄、涉赌、涉毒违法犯罪线索",
    ),
    _cat(
        "ZA-05", "群体性事件苗头", "Risk of a mass incident", "ZFW", ("GAJ",), QUICK, 500,
        "聚集 上访 维权 拉横幅 围堵",
        "可能引发群体性聚集、上访、围堵的苗头性问题",
    ),
    _cat(
        "ZA-06", "严重精神障碍患者肇事肇祸风险", "Person with severe mental illness at risk",
        "WJW", ("GAJ", "ZFW", "MZJ"), QUICK, 100,
        "精神病 精神障碍 病情不稳 停药 肇事肇祸",
        "严重精神障碍患者病情不稳、停药或有肇事肇祸倾向",
    ),
    _cat(
        "ZA-07", "高空抛物", "Objects thrown from height", "GAJ", ("ZJJ",), REPAIR, 50,
        "高空坠物 抛物 楼上扔东西",
        "从建筑物中抛掷物品或建筑物上物品坠落",
    ),
    _cat(
        "ZA-08", "校园周边安全隐患", "Safety hazard around a school", "JYJ", ("GAJ",), HAZARD, 300,
        "学校 幼儿园 校门口 上下学 校园周边",
        "学校、幼儿园周边交通、治安、经营等安全隐患",
    ),
    # ── 民生服务 ──
    _cat(
        "MS-01", "独居老人帮扶", "Support for an elderly person living alone", "MZJ", (),
        SERVICE, 50,
        "空巢老人 独居 高龄 失能 送餐 探访",
        "独居、空巢、高龄、失能老人需要探访、照料或紧急帮助",
    ),
    _cat(
        "MS-02", "困难群众救助", "Social assistance", "MZJ", (), CASEWORK, 100,
        "低保 特困 临时救助 生活困难 因病致贫",
        "生活困难群众申请低保、特困供养或临时救助",
    ),
    _cat(
        "MS-03", "残疾人帮扶", "Support for a person with disability", "MZJ", (), CASEWORK, 100,
        "残疾人 两项补贴 辅具 无障碍 残疾证",
        "残疾人补贴申领、辅具适配、无障碍改造等帮扶需求",
    ),
    _cat(
        "MS-04", "流浪乞讨人员救助", "Homeless or begging person", "MZJ", ("GAJ", "CGJ"),
        QUICK, 500,
        "流浪 乞讨 露宿 走失 救助站",
        "发现流浪乞讨、露宿街头或走失人员，需要救助",
    ),
    _cat(
        "MS-05", "困境儿童关爱", "Child in difficulty", "MZJ", ("JYJ",), SERVICE, 100,
        "留守儿童 孤儿 事实无人抚养 监护缺失 辍学",
        "留守、孤儿、事实无人抚养、失学辍学等困境儿童需要关爱帮扶",
    ),
    _cat(
        "MS-06", "就业援助", "Employment assistance", "RSJ", (), CASEWORK, 200,
        "找工作 失业 就业困难 技能培训 公益性岗位",
        "失业人员、就业困难人员需要就业指导、培训或岗位援助",
    ),
    # ── 社区治理 ──
    _cat(
        "SQ-01", "物业服务纠纷", "Property-management dispute", "ZJJ", ("ZFW",), MEDIATE, 100,
        "物业 物业费 业委会 服务不到位 公共收益",
        "业主与物业服务企业、业委会之间的服务、收费、公共收益等纠纷",
    ),
    _cat(
        "SQ-02", "电动车违规充电", "Unsafe e-bike charging", "XFJ", ("ZJJ",), QUICK, 30,
        "飞线充电 楼道充电 电瓶车 电动车进楼 电梯",
        "电动自行车进楼入户、楼道停放充电或私拉电线“飞线”充电",
    ),
    _cat(
        "SQ-03", "小区公共设施损坏", "Damaged shared facilities in an estate", "ZJJ", ("CGJ",),
        FIX, 50,
        "老旧小区 单元门 楼道灯 屋面漏水 电动车棚 二次供水",
        "住宅小区单元门、楼道灯、屋面、车棚等共用部位和设施损坏",
    ),
    _cat(
        "SQ-04", "违规装修", "Unauthorised renovation work", "ZJJ", ("CGJ",), SERVICE, 30,
        "拆承重墙 破坏结构 改变房屋结构 装修",
        "装修中拆改承重结构、擅自改变房屋结构或外观",
    ),
    _cat(
        "SQ-05", "群租房", "Overcrowded rental flat", "ZJJ", ("GAJ", "XFJ"), CASEWORK, 30,
        "群租 隔断房 出租屋 人员混杂",
        "出租房屋分隔群租、人员密集，存在治安和消防隐患",
    ),
    _cat(
        "SQ-06", "违规饲养家禽家畜", "Poultry or livestock kept in town", "CGJ", (), FIX, 50,
        "养鸡 养鸭 养猪 鸽子 异味",
        "城市建成区内违规饲养家禽家畜，影响环境卫生",
    ),
    # ── 生态环境 ──
    _cat(
        "ST-01", "工业噪声", "Industrial noise", "STJ", (), REPAIR, 500,
        "工厂噪音 机器轰鸣 风机 厂区",
        "工业企业生产设备噪声超标扰民",
    ),
    _cat(
        "ST-02", "餐饮油烟污染", "Restaurant cooking fumes", "CGJ", ("STJ",), FIX, 100,
        "油烟 排烟 饭店 油烟净化器",
        "餐饮门店未安装或未正常使用油烟净化设施，油烟扰民",
    ),
    _cat(
        "ST-03", "违法排污", "Illegal discharge of wastewater", "STJ", ("SLJ",), REPAIR, 300,
        "偷排 污水 排污口 工业废水 水体变色 死鱼",
        "企业或个人向河道、沟渠、雨水管网偷排污水、废液",
    ),
    _cat(
        "ST-04", "废气异味污染", "Air pollution or odour", "STJ", (), REPAIR, 1000,
        "废气 臭味 异味 烟尘 刺鼻",
        "企业排放废气、烟尘或产生刺激性异味",
    ),
    _cat(
        "ST-05", "非法采砂", "Illegal sand dredging", "SLJ", ("ZRJ", "GAJ"), FIX, 1000,
        "采砂 挖沙 河道 采砂船 洗砂",
        "在河道、湖泊非法采砂、洗砂或乱堆砂石",
    ),
    # ── 安全生产 ──
    _cat(
        "AQ-01", "安全生产隐患", "Workplace safety hazard", "YJJ", (), SERVICE, 100,
        "隐患 危险化学品 违规作业 有限空间 粉尘 企业",
        "生产经营单位违规作业、危险化学品管理不当等安全生产隐患",
    ),
    _cat(
        "AQ-02", "瓶装燃气安全隐患", "Bottled gas hazard", "ZJJ", ("XFJ", "SCJ"), HAZARD, 50,
        "液化气 煤气罐 钢瓶 餐饮燃气 报警器",
        "餐饮场所、居民使用瓶装液化气不规范，未装报警器或钢瓶过期",
    ),
    _cat(
        "AQ-03", "特种设备安全隐患", "Lift or other special equipment hazard", "SCJ", ("XFJ",),
        HAZARD, 50,
        "电梯 困人 锅炉 压力容器 起重机械",
        "电梯、锅炉、压力容器等特种设备故障或安全隐患",
    ),
    _cat(
        "AQ-04", "建筑施工安全隐患", "Building-site safety hazard", "ZJJ", ("YJJ",), HAZARD, 100,
        "塔吊 脚手架 深基坑 高处作业 安全帽",
        "建筑工地塔吊、脚手架、基坑、高处作业等安全隐患",
    ),
    _cat(
        "AQ-05", "溺水安全隐患", "Drowning hazard", "SLJ", ("JYJ", "YJJ"), HAZARD, 500,
        "防溺水 野泳 水塘 警示牌 危险水域",
        "危险水域缺少警示标志、防护设施，或有人野泳",
    ),
    # ── 消防安全 ──
    _cat(
        "XF-01", "消防通道堵塞", "Blocked fire lane", "XFJ", ("CGJ",), QUICK, 50,
        "消防通道 生命通道 占用 停车堵塞",
        "消防车通道被车辆、杂物占用或堵塞",
    ),
    _cat(
        "XF-02", "楼道堆物", "Items stored in stairwells", "XFJ", ("CGJ",), QUICK, 30,
        "楼道杂物 堆放 疏散通道 安全出口",
        "楼道、疏散通道、安全出口堆放杂物",
    ),
    _cat(
        "XF-03", "消防设施损坏", "Damaged fire-fighting equipment", "XFJ", ("ZJJ",), REPAIR, 50,
        "灭火器 消火栓箱 应急灯 疏散指示 喷淋 烟感",
        "建筑内灭火器、消火栓箱、应急照明、疏散指示等消防设施缺失损坏",
    ),
    _cat(
        "XF-04", "“三合一”场所", "Premises used for living, work and storage", "XFJ",
        ("YJJ", "SCJ"), SERVICE, 50,
        "三合一 住人 仓库住人 小作坊 九小场所",
        "住宿与生产、经营、储存场所设置在同一空间内",
    ),
    _cat(
        "XF-05", "私拉乱接电线", "Unsafe wiring", "XFJ", ("GDJ",), HAZARD, 30,
        "私拉电线 乱接电线 老化线路 违规用电 大功率",
        "私拉乱接电线、线路老化或违规使用大功率电器",
    ),
    # ── 食品药品安全 ──
    _cat(
        "SP-01", "无证经营", "Unlicensed business", "SCJ", ("CGJ",), FIX, 50,
        "无照 无证 营业执照 食品经营许可 黑作坊",
        "未取得营业执照或食品经营许可等证照从事经营",
    ),
    _cat(
        "SP-02", "食品安全隐患", "Food safety hazard", "SCJ", ("WJW",), HAZARD, 100,
        "过期食品 变质 卫生 餐馆 食物中毒",
        "销售过期变质食品、餐饮场所卫生差或疑似食物中毒",
    ),
    _cat(
        "SP-03", "药品医疗器械安全", "Drug or medical-device safety", "SCJ", ("WJW",), FIX, 100,
        "假药 过期药品 药店 医疗器械 处方药",
        "销售假劣、过期药品或医疗器械，违规销售处方药",
    ),
    _cat(
        "SP-04", "保健品虚假宣传", "Misleading health-product sales", "SCJ", ("GAJ",), FIX, 200,
        "保健品 会销 老年人 虚假宣传 免费体验",
        "以讲座、会销、免费体验等方式向老年人虚假宣传推销保健品",
    ),
    # ── 公用设施 (components) ──
    _cat(
        "GY-01", "井盖缺失破损", "Missing or broken manhole cover", "CGJ", ("ZJJ",), QUICK, 20,
        "井盖 雨水箅子 窨井 下水道盖 井圈",
        "道路及公共场地井盖、雨水箅子缺失、破损、移位或下沉",
    ),
    _cat(
        "GY-02", "路灯不亮", "Street light out", "CGJ", (), REPAIR, 50,
        "路灯 灯不亮 灯杆 照明 路灯损坏",
        "路灯、景观灯不亮、损坏或灯杆倾斜",
    ),
    _cat(
        "GY-03", "排水管道堵塞", "Blocked drain or sewer", "CGJ", ("ZJJ",), PROMPT, 50,
        "下水道堵塞 污水外溢 冒水 雨水口 化粪池",
        "市政排水管道、雨水口堵塞，污水外溢",
    ),
    _cat(
        "GY-04", "市政消火栓损坏", "Damaged street fire hydrant", "XFJ", ("ZJJ",), REPAIR, 20,
        "消防栓 消火栓 漏水 缺损",
        "道路旁市政消火栓缺损、漏水或被圈占",
    ),
    _cat(
        "GY-05", "电力设施安全隐患", "Power-line or transformer hazard", "GDJ", (), HAZARD, 50,
        "电线杆 电线低垂 变压器 电缆 配电箱",
        "电杆倾斜、电线低垂断落、变压器或配电箱损坏",
    ),
    _cat(
        "GY-06", "公共健身器材损坏", "Damaged public fitness equipment", "JYJ", (), FIX, 30,
        "健身器材 健身路径 篮球架 体育设施",
        "公园、广场、小区公共健身器材损坏，存在安全隐患",
    ),
    # ── 道路交通 ──
    _cat(
        "DL-01", "交通信号灯故障", "Traffic light fault", "GAJ", (), QUICK, 50,
        "红绿灯 信号灯 不亮 黄闪 倒计时",
        "路口交通信号灯不亮、常亮或显示异常",
    ),
    _cat(
        "DL-02", "交通标志标线缺损", "Damaged traffic signs or markings", "GAJ", ("JTJ",), FIX, 50,
        "交通标志 标线 斑马线 减速带 警示牌",
        "交通标志牌、道路标线、减速带缺失、损坏或不清",
    ),
    _cat(
        "DL-03", "公交站亭损坏", "Damaged bus shelter", "JTJ", (), FIX, 50,
        "公交站 候车亭 站牌 公交",
        "公交候车亭、站牌损坏或缺失",
    ),
    _cat(
        "DL-04", "路名牌缺损", "Damaged street-name sign", "MZJ", ("CGJ",), CASEWORK, 50,
        "路牌 路名牌 门牌 地名标志",
        "路名牌、门牌等地名标志缺失、损坏或错误",
    ),
    _cat(
        "DL-05", "农村公路损坏", "Damaged rural road", "JTJ", (), CASEWORK, 200,
        "村道 乡道 农村公路 塌方 坑洼 桥梁",
        "乡道、村道及其桥涵损坏、塌方，影响通行",
    ),
    # ── 市容环境设施 ──
    _cat(
        "HS-01", "公共厕所问题", "Public toilet problem", "CGJ", (), QUICK, 50,
        "公厕 厕所 堵塞 脏乱 未开放",
        "公共厕所脏乱、设施损坏、堵塞或未按时开放",
    ),
    _cat(
        "HS-02", "垃圾桶破损缺失", "Damaged or missing bin", "CGJ", (), REPAIR, 30,
        "垃圾桶 果皮箱 分类桶 垃圾箱",
        "道路、小区垃圾桶、果皮箱破损、缺失或位置不当",
    ),
    _cat(
        "HS-03", "广告牌匾安全隐患", "Loose shop sign or billboard", "CGJ", (), HAZARD, 30,
        "店招 招牌 松动 脱落 大型广告牌",
        "店招牌匾、户外广告设施松动、破损，有坠落危险",
    ),
    # ── 园林绿化 ──
    _cat(
        "YL-01", "树木倒伏断枝", "Fallen tree or branch", "CGJ", (), QUICK, 50,
        "倒树 断枝 树倒 枯枝 行道树",
        "行道树、绿地树木倒伏、断枝或枯枝悬挂",
    ),
    _cat(
        "YL-02", "绿地毁损", "Damaged or encroached green space", "CGJ", (), FIX, 100,
        "绿化带 草坪 踩踏 苗木 缺株 毁绿种菜 侵占绿地",
        "绿化带、草坪被踩踏碾压、苗木缺株死亡，或绿地被毁绿种菜、圈占",
    ),
    _cat(
        "YL-03", "树木遮挡需修剪", "Tree needs pruning", "CGJ", ("GDJ",), FIX, 50,
        "树枝遮挡 挡光 碰电线 遮挡路灯 遮挡信号灯",
        "树枝遮挡采光、路灯、交通信号灯或触碰电线，需要修剪",
    ),
    # ── 房屋土地 ──
    _cat(
        "FW-01", "违章搭建", "Illegal construction", "CGJ", ("ZRJ",), ENFORCE, 50,
        "违建 私搭乱建 加层 阳光房 彩钢棚",
        "未经规划许可搭建、加层、扩建的建筑物、构筑物",
    ),
    _cat(
        "FW-02", "危房", "Dangerous building", "ZJJ", ("YJJ",), SERVICE, 50,
        "房屋开裂 倾斜 危险房屋 墙体裂缝 老旧房屋",
        "房屋墙体开裂、倾斜、沉降等，存在倒塌危险",
    ),
    _cat(
        "FW-03", "违法占地", "Illegal land occupation", "ZRJ", ("CGJ",), ENFORCE, 200,
        "占用耕地 乱占耕地 违法建房 非法用地 挖田",
        "未经批准占用土地、乱占耕地建房或挖土取土",
    ),
    _cat(
        "FW-04", "外立面坠落隐患", "Loose facade elements", "ZJJ", ("CGJ",), HAZARD, 30,
        "外墙脱落 瓷砖 空调外机 雨棚 坠落",
        "建筑外墙饰面、空调外机、雨棚等松动，有坠落危险",
    ),
    # ── 其他设施 ──
    _cat(
        "QT-01", "视频监控设施损坏", "Damaged CCTV camera", "ZFW", ("GAJ",), FIX, 50,
        "监控 摄像头 雪亮工程 天网",
        "公共区域视频监控（雪亮工程）设施损坏、离线或被遮挡",
    ),
    _cat(
        "QT-02", "防汛设施损坏", "Damaged flood-control facility", "SLJ", (), SERVICE, 500,
        "堤防 泵站 闸门 排涝站 防洪墙",
        "堤防、泵站、闸门等防汛排涝设施损坏或故障",
    ),
)
# fmt: on
