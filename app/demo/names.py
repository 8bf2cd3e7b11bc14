"""Chinese names for the demo district (月湖区, 鹰潭市, 江西省).

Names that appear in the seed article (001_96c85f2d8958f11b.txt) come first in their pools:
交通街道磷肥厂社区 (江南水都小区), 江边街道立新社区 (林东花苑小区),
梅园街道东湖家园社区, 四青街道, 童家镇.
Everything else is invented but plausible. Pools are tuples so their order is fixed.
"""

from __future__ import annotations

CITY_CODE = "360600000000"
CITY_NAME = "鹰潭市"
DISTRICT_CODE = "360602000000"
DISTRICT_NAME = "月湖区"

# key, 12-digit code, name. Urban sub-districts (街道) use 001-099, towns (镇) 100-199 as in
# GB/T 10114; 童家镇 is the one town.
STREETS: tuple[tuple[str, str, str], ...] = (
    ("jiangbian", "360602001000", "江边街道"),
    ("donghu", "360602002000", "东湖街道"),
    ("jiaotong", "360602003000", "交通街道"),
    ("meiyuan", "360602004000", "梅园街道"),
    ("siqing", "360602005000", "四青街道"),
    ("tongjia", "360602100000", "童家镇"),
)

# Residents' committees (社区居委会, codes 001-199) per street, in order of use.
COMMUNITY_NAMES: dict[str, tuple[str, ...]] = {
    "jiangbian": (
        "立新社区",
        "站江社区",
        "沿江社区",
        "滨江社区",
        "胜利社区",
        "建设社区",
        "信江社区",
        "江湾社区",
    ),
    "donghu": (
        "东湖社区",
        "湖西社区",
        "龙岗社区",
        "桂花社区",
        "南门社区",
        "月湖社区",
        "湖滨社区",
        "花园社区",
    ),
    "jiaotong": (
        "磷肥厂社区",
        "站前社区",
        "铁路新村社区",
        "交通社区",
        "车站社区",
        "三川社区",
        "机务段社区",
        "货场社区",
    ),
    "meiyuan": (
        "东湖家园社区",
        "梅园社区",
        "梅华社区",
        "天洁社区",
        "林荫社区",
        "师苑社区",
        "梅岭社区",
        "五湖社区",
    ),
    "siqing": (
        "四青社区",
        "夏埠社区",
        "白露社区",
        "青山社区",
        "光明社区",
        "东风社区",
        "新华社区",
        "友谊社区",
    ),
    "tongjia": ("童家社区", "童家新区社区", "茅岗社区"),
}

# Villagers' committees (村委会, codes 201-399) per street, in order of use.
VILLAGE_NAMES: dict[str, tuple[str, ...]] = {
    "jiangbian": ("江边村", "河潭村", "沙洲村"),
    "donghu": ("湖东村", "湖背村"),
    "jiaotong": ("新田村", "茶园村", "郊区村"),
    "meiyuan": ("梅塘村", "岭背村"),
    "siqing": ("白露村", "夏埠村", "洪家村", "青塘村"),
    "tongjia": (
        "童家村",
        "樟坪村",
        "张家村",
        "前进村",
        "大源村",
        "石港村",
        "罗源村",
        "坊下村",
        "塘湾村",
        "杨溪村",
    ),
}

# Natural villages / villager groups (自然村、村民小组): a rural grid is one of them.
NATURAL_VILLAGES: tuple[str, ...] = (
    "王家",
    "李家",
    "张家",
    "刘家",
    "陈家",
    "杨家",
    "黄家",
    "吴家",
    "周家",
    "徐家",
    "孙家",
    "胡家",
    "朱家",
    "高家",
    "林家",
    "何家",
    "郭家",
    "罗家",
    "汪家",
    "程家",
    "邓家",
    "傅家",
    "余家",
    "上童",
    "下童",
    "新屋",
    "老屋",
    "塘边",
    "港头",
    "山背",
    "坳上",
    "岭下",
    "洲上",
    "畈上",
    "桥头",
    "垄里",
    "樟树下",
    "石门",
    "枫林",
    "竹山",
)

# Residential estates (小区): building names are "<estate><n>栋".
ESTATE_FIRST: tuple[str, ...] = (
    "信江",
    "龙虎",
    "月湖",
    "东湖",
    "梅园",
    "滨江",
    "锦绣",
    "金桂",
    "翠竹",
    "阳光",
    "天洁",
    "书香",
    "丽景",
    "南苑",
    "康乐",
    "盛世",
    "桂花",
    "望江",
    "紫荆",
    "湖畔",
    "新都",
    "铁路",
    "电厂",
    "学府",
    "文化",
    "白露",
    "华府",
    "御景",
    "时代",
    "紫金",
    "汇丰",
    "江南",
    "湖景",
    "林荫",
    "站前",
    "建设",
)
ESTATE_SECOND: tuple[str, ...] = (
    "花园",
    "小区",
    "家园",
    "花苑",
    "新村",
    "公寓",
    "雅苑",
    "名城",
    "嘉园",
    "宿舍区",
    "佳苑",
    "华庭",
)
# First estates of seed-named communities.
ESTATE_OVERRIDES: dict[str, tuple[str, ...]] = {
    "磷肥厂社区": ("江南水都", "磷肥厂宿舍区"),
    "立新社区": ("林东花苑",),
    "东湖家园社区": ("东湖家园",),
    "梅园社区": ("梅园小区",),
}

# Special grids (专属网格): institution, host street key, kind of institution.
SPECIAL_INSTITUTIONS: tuple[tuple[str, str, str], ...] = (
    ("鹰潭市第一中学", "meiyuan", "school"),
    ("鹰潭市人民医院", "donghu", "hospital"),
    ("鹰潭市农产品批发市场", "jiaotong", "market"),
)

# Buildings of special grids: (name suffix, residential?).
SPECIAL_BUILDINGS: dict[str, tuple[tuple[str, bool], ...]] = {
    "school": (
        ("教学楼", False),
        ("实验楼", False),
        ("图书馆", False),
        ("学生宿舍1栋", False),
        ("教职工宿舍1栋", True),
        ("教职工宿舍2栋", True),
    ),
    "hospital": (
        ("门诊楼", False),
        ("住院部", False),
        ("医技楼", False),
        ("职工宿舍1栋", True),
        ("职工宿舍2栋", True),
    ),
    "market": (
        ("交易大厅A区", False),
        ("交易大厅B区", False),
        ("冷链仓库", False),
        ("综合楼", False),
        ("商户宿舍1栋", True),
    ),
}
