"""The default category catalogue (app/cases/catalogue.py): pure data checks, no database."""

from __future__ import annotations

import re

import pytest

from app.cases.catalogue import (
    CATEGORIES,
    CLASSES,
    URGENCIES,
    URGENCY_LABELS,
    Category,
    by_code,
    classes_by_code,
)

# The departments app/demo/accounts.py seeds; a category may only name these.
DEPARTMENT_CODES = frozenset(
    {
        "CGJ",
        "ZJJ",
        "MZJ",
        "ZFW",
        "GAJ",
        "SCJ",
        "STJ",
        "YJJ",
        "SLJ",
        "JYJ",
        "WJW",
        "RSJ",
        "JTJ",
        "ZRJ",
        "XFJ",
        "GDJ",
    }
)
HOURS_PER_DAY = 8
CODE = re.compile(r"^[A-Z]{2}-\d{2}$")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _hours(value: float, unit: str) -> float:
    return value * HOURS_PER_DAY if unit == "days" else value


def _ids(c: Category) -> str:
    return c.code


def test_size() -> None:
    assert 60 <= len(CATEGORIES) <= 100


def test_codes_unique_well_formed_and_sorted() -> None:
    codes = [c.code for c in CATEGORIES]
    assert len(set(codes)) == len(codes)
    assert all(CODE.match(code) for code in codes), [c for c in codes if not CODE.match(c)]
    assert codes == sorted(codes)


def test_classes_well_formed() -> None:
    codes = [k.code for k in CLASSES]
    assert len(set(codes)) == len(codes)
    assert len({k.name for k in CLASSES}) == len(CLASSES)
    for k in CLASSES:
        assert re.fullmatch(r"[A-Z]{2}", k.code)
        assert k.kind in ("event", "component")
        assert CJK.search(k.name) and k.name_en.strip()
    assert {k.kind for k in CLASSES} == {"event", "component"}


def test_classes_exist_and_all_used() -> None:
    classes = classes_by_code()
    for c in CATEGORIES:
        assert c.class_code in classes, c.code
        assert c.code.split("-")[0] == c.class_code, c.code
    assert {c.class_code for c in CATEGORIES} == set(classes)


def test_gb_t_30428_classes_present() -> None:
    names = {(k.name, k.kind) for k in CLASSES}
    for name in ("市容环境", "宣传广告", "施工管理", "突发事件", "街面秩序", "扩展事件"):
        assert (name, "event") in names
    for name in ("公用设施", "道路交通", "园林绿化", "房屋土地", "其他设施"):
        assert (name, "component") in names


@pytest.mark.parametrize("category", CATEGORIES, ids=_ids)
def test_departments_exist(category: Category) -> None:
    assert category.lead_department in DEPARTMENT_CODES
    assert set(category.co_departments) <= DEPARTMENT_CODES
    assert category.lead_department not in category.co_departments
    assert len(set(category.co_departments)) == len(category.co_departments)


@pytest.mark.parametrize("category", CATEGORIES, ids=_ids)
def test_limits(category: Category) -> None:
    limits = category.limits
    assert tuple(limits) == URGENCIES
    for limit in limits.values():
        assert limit.handle_unit in ("hours", "days")
        assert 0 < limit.sign_in_hours <= 2
        assert limit.handle > 0
        assert limit.sign_in_hours <= _hours(limit.handle, limit.handle_unit)
        assert limit.handle_hours() == _hours(limit.handle, limit.handle_unit)
    normal, urgent, critical = (limits[u] for u in URGENCIES)
    assert critical.sign_in_hours <= urgent.sign_in_hours <= normal.sign_in_hours
    assert (
        _hours(critical.handle, critical.handle_unit)
        <= _hours(urgent.handle, urgent.handle_unit)
        <= _hours(normal.handle, normal.handle_unit)
    )
    assert _hours(critical.handle, critical.handle_unit) >= 2
    assert _hours(normal.handle, normal.handle_unit) <= 15 * HOURS_PER_DAY


@pytest.mark.parametrize("category", CATEGORIES, ids=_ids)
def test_texts(category: Category) -> None:
    assert category.name.strip() and CJK.search(category.name)
    assert category.name_en.strip() and not CJK.search(category.name_en)
    assert category.description.strip() and CJK.search(category.description)
    assert "\n" not in category.description
    assert category.keywords
    assert len(set(category.keywords)) == len(category.keywords)
    assert all(CJK.search(k) for k in category.keywords)


@pytest.mark.parametrize("category", CATEGORIES, ids=_ids)
def test_duplicate_radius(category: Category) -> None:
    assert 10 <= category.duplicate_radius_m <= 1000


def test_names_unique() -> None:
    assert len({c.name for c in CATEGORIES}) == len(CATEGORIES)
    assert len({c.name_en for c in CATEGORIES}) == len(CATEGORIES)


def test_urgency_labels() -> None:
    assert URGENCIES == ("normal", "urgent", "critical")
    assert set(URGENCY_LABELS) == set(URGENCIES)
    assert URGENCY_LABELS["normal"] == ("一般", "normal")
    assert URGENCY_LABELS["urgent"][0] == "紧急"
    assert URGENCY_LABELS["critical"][0] == "特急"


def test_by_code() -> None:
    index = by_code()
    assert list(index) == [c.code for c in CATEGORIES]
    assert all(index[c.code] is c for c in CATEGORIES)


@pytest.mark.parametrize(
    ("name", "lead", "co"),
    [
        ("暴露垃圾", "CGJ", set()),
        ("井盖缺失破损", "CGJ", {"ZJJ"}),
        ("违章搭建", "CGJ", {"ZRJ"}),
        ("楼道堆物", "XFJ", {"CGJ"}),
        ("消防通道堵塞", "XFJ", {"CGJ"}),
        ("电动车违规充电", "XFJ", set()),
        ("邻里纠纷", "ZFW", set()),
        ("家庭暴力", "GAJ", {"MZJ"}),
        ("无证经营", "SCJ", set()),
        ("施工噪声扰民", "STJ", set()),
        ("社会生活噪声扰民", "GAJ", set()),
        ("路灯不亮", "CGJ", set()),
        ("供电故障", "GDJ", set()),
        ("积水内涝", "SLJ", {"CGJ"}),
        ("独居老人帮扶", "MZJ", set()),
        ("物业服务纠纷", "ZJJ", set()),
        ("拖欠农民工工资", "RSJ", set()),
        ("校园周边安全隐患", "JYJ", {"GAJ"}),
        ("传染病疫情线索", "WJW", set()),
        ("危房", "ZJJ", {"YJJ"}),
        ("安全生产隐患", "YJJ", set()),
    ],
)
def test_known_routing(name: str, lead: str, co: set[str]) -> None:
    """Where a district really sends these cases (the lead, and co-departments it must include)."""
    (category,) = [c for c in CATEGORIES if c.name == name]
    assert category.lead_department == lead
    assert co <= set(category.co_departments)


def test_radius_reflects_reach() -> None:
    """Noise and smells are reported from far around; a manhole cover is one spot."""
    index = {c.name: c for c in CATEGORIES}
    assert index["井盖缺失破损"].duplicate_radius_m < 100
    assert index["施工噪声扰民"].duplicate_radius_m > 100
    assert index["社会生活噪声扰民"].duplicate_radius_m > 100
    assert index["废气异味污染"].duplicate_radius_m > 100
