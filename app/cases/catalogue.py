"""The default case category catalogue (事项清单): what grid workers report and who handles it.

Modelled on the national digital city-management classification (GB/T 30428 数字化城市管理信息系统
部件和事件): event classes 市容环境, 宣传广告, 施工管理, 突发事件, 街面秩序, 扩展事件 and component
classes 公用设施, 道路交通, 市容环境, 园林绿化, 房屋土地, 其他设施; extended with the classes grid
management (网格化管理) adds: disputes, public order, livelihood services, community governance,
ecology, work safety, fire safety, food and drug safety.

Pure data (the types in catalogue_types.py, the rows in catalogue_entries.py): the demo loader (app/demo/accounts.py) copies it into the `categories` tables once, and
administrators edit it there afterwards. Codes are stable: never renumber, only append.

Time limits count working hours / working days of the official calendar (调休 included):
sign-in (签收/报到) 2 / 1 / 0.5 working hours for normal / urgent / critical (一般/紧急/特急);
handling from 2 working hours (critical) to 1–5 working days (normal), 10–15 working days for
matters that need investigation, mediation or enforcement procedure (违建, 纠纷, 违法占地).
"""

from __future__ import annotations

from app.cases.catalogue_entries import ENTRIES
from app.cases.catalogue_types import (
    URGENCIES,
    URGENCY_LABELS,
    WORKING_HOURS_PER_DAY,
    Category,
    CategoryClass,
    HandleUnit,
    Kind,
    Limit,
)

__all__ = [
    "CATEGORIES",
    "CLASSES",
    "URGENCIES",
    "URGENCY_LABELS",
    "WORKING_HOURS_PER_DAY",
    "Category",
    "CategoryClass",
    "HandleUnit",
    "Kind",
    "Limit",
    "by_code",
    "classes_by_code",
]

CLASSES: tuple[CategoryClass, ...] = (
    # Events (事件), GB/T 30428.
    CategoryClass("SR", "市容环境", "City appearance", "event"),
    CategoryClass("GG", "宣传广告", "Advertising", "event"),
    CategoryClass("SG", "施工管理", "Construction", "event"),
    CategoryClass("TF", "突发事件", "Emergencies", "event"),
    CategoryClass("JM", "街面秩序", "Street order", "event"),
    CategoryClass("KZ", "扩展事件", "Other events", "event"),
    # Events added by grid management (网格化管理).
    CategoryClass("MD", "矛盾纠纷", "Disputes", "event"),
    CategoryClass("ZA", "社会治安", "Public order", "event"),
    CategoryClass("MS", "民生服务", "Livelihood services", "event"),
    CategoryClass("SQ", "社区治理", "Community affairs", "event"),
    CategoryClass("ST", "生态环境", "Environment", "event"),
    CategoryClass("AQ", "安全生产", "Work safety", "event"),
    CategoryClass("XF", "消防安全", "Fire safety", "event"),
    CategoryClass("SP", "食品药品安全", "Food and drug safety", "event"),
    # Components (部件), GB/T 30428. The standard's component class 市容环境 is named
    # 市容环境设施 here so that phones can tell it from the event class of the same name.
    CategoryClass("GY", "公用设施", "Public utilities", "component"),
    CategoryClass("DL", "道路交通", "Roads and traffic", "component"),
    CategoryClass("HS", "市容环境设施", "Sanitation facilities", "component"),
    CategoryClass("YL", "园林绿化", "Parks and greenery", "component"),
    CategoryClass("FW", "房屋土地", "Buildings and land", "component"),
    CategoryClass("QT", "其他设施", "Other facilities", "component"),
)

CATEGORIES: tuple[Category, ...] = tuple(sorted(ENTRIES, key=lambda c: c.code))


def by_code() -> dict[str, Category]:
    """The categories by code (a new dict on each call)."""
    return {c.code: c for c in CATEGORIES}


def classes_by_code() -> dict[str, CategoryClass]:
    """The classes by code (a new dict on each call)."""
    return {k.code: k for k in CLASSES}
