"""The exact definition of every evaluation figure (考评指标), in one place.

Each measure is a SQL condition on a fact row (alias `{t}`): the aggregate queries count the rows
that meet it, and the case list's `indicator=` filter selects the same rows, so every figure
opens into exactly the cases behind it. docs/evaluation.md explains them in words.

Two fact tables (migration 0007, kept exact by triggers):
- `stats_case_facts`: one row per case, duplicates (merged into another case) left out. Areas
  (district, street, community, grid) and grid workers (the reporter) are judged on it; a case's
  sign-in and handling times are those of its current lead department's latest assignment.
- `stats_dept_facts`: one row per case and department it was dispatched to (its latest
  assignment there; withdrawn assignments, i.e. taken back at a re-dispatch, do not count).
Both are counted in the period of the case's report (`reported_at`), like the case list's
`since`/`until`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CASE_MEASURES: dict[str, str] = {
    "received": "true",
    "accepted": "{t}.accepted",
    "rejected": "{t}.status = 'rejected'",
    "dispatched": "{t}.dispatched",
    "returned": "{t}.returned",
    "closed": "{t}.status = 'closed'",
    "resolved": "{t}.status IN ('verified', 'closed')",
    "handed_in": "{t}.handed_in",
    "reworked": "{t}.rework_count > 0",
    "reopened": "{t}.reopen_count > 0",
    "overdue_now": "false",
    "signed_in": "{t}.lead_signed_in_at IS NOT NULL",
    "sign_in_counted": "{t}.lead_signed_in_at IS NOT NULL",
    "signed_in_on_time": "{t}.lead_signed_in_at <= {t}.lead_sign_in_due",
    "handle_counted": "{t}.lead_state IN ('feedback', 'done')",
    "handled_on_time": "({t}.lead_state IN ('feedback', 'done') "
    "AND {t}.lead_feedback_at <= {t}.lead_handle_due)",
    "response_counted": "({t}.on_spot OR {t}.lead_signed_in_at IS NOT NULL)",
    "responded": "({t}.on_spot OR {t}.lead_signed_in_at <= {t}.lead_sign_in_due)",
    "evaluated": "{t}.satisfaction IN ('satisfied', 'basically_satisfied', 'dissatisfied')",
    "satisfied": "{t}.satisfaction IN ('satisfied', 'basically_satisfied')",
    "unreachable": "{t}.satisfaction = 'unreachable'",
}

DEPT_MEASURES: dict[str, str] = {
    "received": "true",
    "accepted": "{t}.state <> 'returned'",
    "rejected": "false",
    "dispatched": "true",
    "returned": "{t}.returned",
    "closed": "({t}.state <> 'returned' AND {t}.case_status = 'closed')",
    "resolved": "({t}.state <> 'returned' AND {t}.case_status IN ('verified', 'closed'))",
    "handed_in": "{t}.feedback_at IS NOT NULL",
    "reworked": "{t}.rework_count > 0",
    "reopened": "false",
    "overdue_now": "false",
    "signed_in": "{t}.signed_in_at IS NOT NULL",
    "sign_in_counted": "{t}.signed_in_at IS NOT NULL",
    "signed_in_on_time": "{t}.signed_in_at <= {t}.sign_in_due",
    "handle_counted": "{t}.state IN ('feedback', 'done')",
    "handled_on_time": "({t}.state IN ('feedback', 'done') AND {t}.feedback_at <= {t}.handle_due)",
    "response_counted": "{t}.signed_in_at IS NOT NULL",
    "responded": "{t}.signed_in_at <= {t}.sign_in_due",
    "evaluated": "({t}.state <> 'returned' AND {t}.satisfaction IN "
    "('satisfied', 'basically_satisfied', 'dissatisfied'))",
    "satisfied": "({t}.state <> 'returned' AND {t}.satisfaction IN "
    "('satisfied', 'basically_satisfied'))",
    "unreachable": "({t}.state <> 'returned' AND {t}.satisfaction = 'unreachable')",
}
# The parts of some measures that depend on the clock: a deadline that has passed with the work
# still open. A measure is (static) OR (dynamic); the static part is kept in the monthly rollups,
# the dynamic part is counted at query time over the few facts with a running deadline
# (`next_due IS NOT NULL`; for departments, an open assignment), and only for rows outside the
# static part, so the two never overlap.
CASE_DYNAMIC: dict[str, str] = {
    "overdue_now": "{t}.next_due < now()",
    "sign_in_counted": "({t}.lead_state = 'dispatched' AND {t}.lead_sign_in_due < now())",
    "handle_counted": "({t}.lead_state IN ('handling', 'rework') AND {t}.lead_handle_due < now())",
    "response_counted": "({t}.lead_state = 'dispatched' AND {t}.lead_sign_in_due < now())",
}
DEPT_DYNAMIC: dict[str, str] = {
    "overdue_now": "(({t}.state = 'dispatched' AND {t}.sign_in_due < now()) OR ({t}.state IN "
    "('handling', 'rework') AND {t}.handle_due < now()))",
    "sign_in_counted": "({t}.state = 'dispatched' AND {t}.sign_in_due < now())",
    "handle_counted": "({t}.state IN ('handling', 'rework') AND {t}.handle_due < now())",
    "response_counted": "({t}.state = 'dispatched' AND {t}.sign_in_due < now())",
}
CASE_OPEN = "{t}.next_due IS NOT NULL"
DEPT_OPEN = "{t}.state IN ('dispatched', 'handling', 'rework')"
MEASURES = tuple(CASE_MEASURES)
DYNAMIC = tuple(CASE_DYNAMIC)
assert set(CASE_MEASURES) == set(DEPT_MEASURES) and set(CASE_DYNAMIC) == set(DEPT_DYNAMIC)

COUNT_LABELS: dict[str, tuple[str, str]] = {
    "received": ("受理数", "received"),
    "accepted": ("立案数", "accepted"),
    "rejected": ("不予立案数", "rejected"),
    "dispatched": ("派遣数", "dispatched"),
    "returned": ("退回数", "returned"),
    "closed": ("结案数", "closed"),
    "resolved": ("解决数", "resolved"),
    "handed_in": ("已反馈数", "handed in"),
    "reworked": ("返工数", "reworked"),
    "reopened": ("重新打开数", "reopened"),
    "overdue_now": ("当前超期数", "overdue now"),
    "signed_in": ("已签收数", "signed in"),
    "sign_in_counted": ("应签收数", "sign-ins due"),
    "signed_in_on_time": ("按时签收数", "signed in on time"),
    "handle_counted": ("应处置数", "handlings due"),
    "handled_on_time": ("按期处置数", "handled on time"),
    "response_counted": ("应响应数", "responses due"),
    "responded": ("及时响应数", "responded on time"),
    "evaluated": ("有效评价数", "evaluated"),
    "satisfied": ("满意数", "satisfied"),
    "unreachable": ("无法联系数", "could not reach"),
}


@dataclass(frozen=True)
class Rate:
    name: str
    numerator: str
    denominator: str
    zh: str
    en: str
    inverse: bool = False
    """Lower is better (rework, returns): the score uses 1 - rate."""


RATES: tuple[Rate, ...] = (
    Rate(
        "sign_in_on_time_rate",
        "signed_in_on_time",
        "sign_in_counted",
        "按时签收率",
        "on-time sign-in",
    ),
    Rate(
        "handled_on_time_rate",
        "handled_on_time",
        "handle_counted",
        "按期处置率",
        "on-time handling",
    ),
    Rate("rework_rate", "reworked", "handed_in", "返工率", "rework rate", inverse=True),
    Rate("closure_rate", "closed", "accepted", "结案率", "closure rate"),
    Rate("return_rate", "returned", "dispatched", "退回率", "return rate", inverse=True),
    Rate("response_rate", "responded", "response_counted", "响应率", "response rate"),
    Rate("resolution_rate", "resolved", "accepted", "解决率", "resolution rate"),
    Rate("satisfaction_rate", "satisfied", "evaluated", "满意率", "satisfaction rate"),
)
RATE_BY_NAME = {r.name: r for r in RATES}


@dataclass(frozen=True)
class Duration:
    name: str
    column: str
    having: str
    """The measure selecting the cases that have this duration (for the drill-down)."""
    zh: str
    en: str


CASE_DURATIONS: tuple[Duration, ...] = (
    Duration(
        "sign_in_hours",
        "sign_in_wh",
        "signed_in",
        "签收用时（工作小时）",
        "time to sign in (working hours)",
    ),
    Duration(
        "close_hours", "close_wh", "closed", "结案用时（工作小时）", "time to close (working hours)"
    ),
)
DEPT_DURATIONS: tuple[Duration, ...] = (
    Duration(
        "sign_in_hours",
        "sign_in_wh",
        "signed_in",
        "签收用时（工作小时）",
        "time to sign in (working hours)",
    ),
    Duration(
        "handle_hours",
        "handle_wh",
        "handed_in",
        "处置用时（工作小时）",
        "time to hand in (working hours)",
    ),
    Duration(
        "close_hours", "close_wh", "closed", "结案用时（工作小时）", "time to close (working hours)"
    ),
)

UNITS = ("district", "street", "community", "grid", "worker", "department")
UNIT_COLUMN = {
    "district": "district_id",
    "street": "street_id",
    "community": "community_id",
    "grid": "grid_id",
    "worker": "reporter_id",
    "department": "department_id",
}
UNIT_LABELS: dict[str, tuple[str, str]] = {
    "district": ("区县", "district"),
    "street": ("街道", "street"),
    "community": ("社区", "community"),
    "grid": ("网格", "grid"),
    "worker": ("网格员", "grid worker"),
    "department": ("部门", "department"),
}
RATING_LABELS: dict[str, tuple[str, str]] = {
    "excellent": ("优秀", "excellent"),
    "qualified": ("合格", "qualified"),
    "unqualified": ("不合格", "unqualified"),
    "not_rated": ("样本不足，不评级", "too few cases to rate"),
}


def static_part(measure: str, alias: str, department: bool) -> str:
    table = DEPT_MEASURES if department else CASE_MEASURES
    return "coalesce(" + table[measure].format(t=alias) + ", false)"


def dynamic_part(measure: str, alias: str, department: bool) -> str | None:
    """Rows outside the static part that the clock has brought in (None: no such part)."""
    table = DEPT_DYNAMIC if department else CASE_DYNAMIC
    if measure not in table:
        return None
    return (
        f"(NOT {static_part(measure, alias, department)} "
        f"AND coalesce({table[measure].format(t=alias)}, false))"
    )


def condition(measure: str, alias: str, department: bool) -> str:
    """The whole measure: its static part or its dynamic part."""
    dyn = dynamic_part(measure, alias, department)
    static = static_part(measure, alias, department)
    return static if dyn is None else f"({static} OR {dyn})"


Indicator = Literal[
    "received",
    "accepted",
    "rejected",
    "dispatched",
    "returned",
    "closed",
    "resolved",
    "handed_in",
    "reworked",
    "reopened",
    "overdue_now",
    "signed_in",
    "sign_in_counted",
    "signed_in_on_time",
    "handle_counted",
    "handled_on_time",
    "response_counted",
    "responded",
    "evaluated",
    "satisfied",
    "unreachable",
]


def indicator_filter(measure: str, department_id: int | None) -> str:
    """The case list's `indicator=` condition on `c` (cases): the case's fact row meets the
    measure; with a department filter, that department's row (bind :department_id)."""
    if department_id is not None:
        return (
            "EXISTS (SELECT 1 FROM stats_dept_facts f WHERE f.id = c.id AND f.district_id = c.district_id "
            f"AND f.department_id = :department_id AND {condition(measure, 'f', True)})"
        )
    return (
        "EXISTS (SELECT 1 FROM stats_case_facts f WHERE f.id = c.id AND f.district_id = c.district_id "
        f"AND {condition(measure, 'f', False)})"
    )
