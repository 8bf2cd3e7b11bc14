"""Chinese (default) and English labels of the community mechanisms' categories and states
(used by the response schemas through `app.schemas.Labels`)."""

from __future__ import annotations

NEED_CATEGORY = {
    "elderly": ("养老助老", "elderly care"),
    "children": ("儿童关爱", "children"),
    "disability": ("助残服务", "disability support"),
    "environment": ("环境卫生", "environment"),
    "facilities": ("设施维修", "facilities"),
    "safety": ("平安建设", "safety"),
    "parking": ("停车出行", "parking and transport"),
    "culture": ("文体活动", "culture and sport"),
    "health": ("医疗健康", "health"),
    "employment": ("就业帮扶", "employment"),
    "legal": ("法律服务", "legal services"),
    "other": ("其他", "other"),
}
NEED_STATUS = {
    "open": ("待对接", "open"),
    "matched": ("已立项", "matched"),
    "done": ("已完成", "done"),
    "closed": ("已关闭", "closed"),
}
RESOURCE_KIND = {
    "money": ("资金", "money"),
    "venue": ("场地", "venue"),
    "volunteers": ("志愿者", "volunteers"),
    "skills": ("技能服务", "skills"),
    "equipment": ("设备物资", "equipment"),
}
PROJECT_STATUS = {
    "planned": ("待启动", "planned"),
    "in_progress": ("实施中", "in progress"),
    "done": ("已完成", "done"),
    "cancelled": ("已取消", "cancelled"),
}
TASK_STATE = {
    "open": ("办理中", "open"),
    "done": ("已完成", "done"),
    "cancelled": ("已取消", "cancelled"),
}
MATTER_STATUS = {
    "proposed": ("居民提议", "proposed"),
    "accepted": ("两委已受理", "accepted"),
    "consulting": ("民主商议中", "in consultation"),
    "resolved": ("已协同决议", "resolved"),
    "done": ("已办结待评议", "done, being rated"),
    "evaluated": ("已评议", "evaluated"),
    "rejected": ("不予受理", "rejected"),
    "merged": ("已合并", "merged"),
    "failed": ("表决未通过", "voted down"),
}
STEP = {
    1: ("居民提议", "resident proposal"),
    2: ("两委审议", "review by the two committees"),
    3: ("民主商议", "democratic consultation"),
    4: ("协同决议", "joint resolution"),
    5: ("大众评议", "public evaluation"),
}
