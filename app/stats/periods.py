"""Evaluation periods: a day, an ISO week, a month, a quarter, a year (Asia/Shanghai), or custom."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from app.errors import ApiError
from app.schemas import SHANGHAI

PERIODS = ("day", "week", "month", "quarter", "year", "custom")
MAX_CUSTOM_DAYS = 1100


@dataclass(frozen=True)
class Period:
    kind: str
    start: datetime
    end: datetime
    label: str

    def out(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "label": self.label,
            "since": self.start.isoformat(),
            "until": self.end.isoformat(),
        }


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=SHANGHAI)


def _add_months(d: date, n: int) -> date:
    m = d.year * 12 + d.month - 1 + n
    return date(m // 12, m % 12 + 1, 1)


def _local(t: datetime) -> datetime:
    return t.replace(tzinfo=SHANGHAI) if t.tzinfo is None else t.astimezone(SHANGHAI)


def period_of(kind: str, at: date) -> Period:
    """The calendar period of `kind` that contains the day `at`."""
    if kind == "day":
        return Period(kind, _midnight(at), _midnight(at + timedelta(days=1)), at.isoformat())
    if kind == "week":
        first = at - timedelta(days=at.weekday())
        y, w, _ = first.isocalendar()
        return Period(kind, _midnight(first), _midnight(first + timedelta(days=7)), f"{y}-W{w:02d}")
    if kind == "month":
        first = at.replace(day=1)
        return Period(
            kind, _midnight(first), _midnight(_add_months(first, 1)), f"{at.year}-{at.month:02d}"
        )
    if kind == "quarter":
        q = (at.month - 1) // 3
        first = date(at.year, q * 3 + 1, 1)
        return Period(
            kind, _midnight(first), _midnight(_add_months(first, 3)), f"{at.year}-Q{q + 1}"
        )
    if kind == "year":
        return Period(
            kind, _midnight(date(at.year, 1, 1)), _midnight(date(at.year + 1, 1, 1)), str(at.year)
        )
    raise ValueError(kind)


def resolve(
    kind: str, at: date | None, since: datetime | None, until: datetime | None, today: date
) -> Period:
    """The period a request names: `period` + `at` (any day in it; default today), or
    `period=custom` with `since` and `until` (Asia/Shanghai when they carry no offset)."""
    if kind not in PERIODS:
        raise ApiError(
            "validation_error",
            field="period",
            detail=f"period 应为 {', '.join(PERIODS)}",
            detail_en=f"period must be one of {', '.join(PERIODS)}",
        )
    if kind != "custom":
        return period_of(kind, at or today)
    if since is None or until is None:
        raise ApiError(
            "validation_error",
            field="since" if since is None else "until",
            detail="自定义期间需要 since 和 until",
            detail_en="A custom period needs since and until",
        )
    start, end = _local(since), _local(until)
    if end <= start:
        raise ApiError(
            "validation_error",
            field="until",
            detail="until 应晚于 since",
            detail_en="until must be after since",
        )
    if end - start > timedelta(days=MAX_CUSTOM_DAYS):
        raise ApiError(
            "validation_error",
            field="until",
            detail=f"自定义期间最长 {MAX_CUSTOM_DAYS} 天",
            detail_en=f"A custom period spans at most {MAX_CUSTOM_DAYS} days",
        )
    return Period("custom", start, end, f"{start.isoformat()}/{end.isoformat()}")


def previous(p: Period) -> Period:
    """The period just before `p`, of the same kind (custom: the same length)."""
    if p.kind == "custom":
        span = p.end - p.start
        return Period(
            "custom",
            p.start - span,
            p.start,
            f"{(p.start - span).isoformat()}/{p.start.isoformat()}",
        )
    return period_of(p.kind, (p.start - timedelta(days=1)).date())
