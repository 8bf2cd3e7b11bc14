"""Working time of the official Chinese calendar: deadlines in working hours and working days.

Case time limits (签收 sign-in, 处置 handling; see app/cases/catalogue.py) are counted in working
time of the official calendar, which the State Council publishes each year (国务院办公厅关于 某年
部分节假日安排的通知): public holidays, and the weekend days moved to make them longer (调休), which
become working days (调休上班). This module is pure: no database, no web framework.

Schedules
    A `YearSchedule` is one year of that notice: `holidays` (days off; the weekdays among them are
    what matters, weekend days of a holiday block may be listed too, for their names) and `workdays`
    (make-up working days on Saturdays or Sundays). Every other Monday–Friday is a working day, every
    other Saturday and Sunday is not. `builtin_schedule` reads a year from the `chinesecalendar`
    package (which ships the official schedules up to 2026); the service stores schedules uploaded
    by administrators (JSON, see `YearSchedule.from_json`) and passes them to `default_calendar`,
    where they take precedence over the built-in ones.

    A year without a schedule falls back to plain weekends (Monday–Friday working): every result
    that touches such a year is marked *provisional*, to be recomputed once its schedule is known.

Office hours
    `OfficeHours` are 08:30–12:00 and 14:30–17:30 by default (6.5 working hours a day), in the
    calendar's time zone (Asia/Shanghai by default); configurable.

Counting rules
    - All datetimes are timezone-aware, in and out (naive input raises ValueError); results are in
      the calendar's time zone.
    - Counting begins at the first office instant at or after the start: a case reported on a
      Saturday evening starts counting on Monday 08:30, or at 08:30 that Sunday if it is a make-up
      working day; one reported during the lunch break starts at 14:30. Office periods are
      half-open: a start at exactly 12:00 or 17:30 counts from the next period.
    - **Working hours** count office time only: the deadline of a limit of h working hours is the
      earliest instant by which h hours of office time have passed since the start (so a limit that
      uses up a period exactly ends at its close, e.g. 12:00, not at 14:30). Zero hours: the start.
    - **Working days** count whole working days: a limit of N working days ends at the close of the
      N-th working day after the day on which counting begins (that day itself does not count, as
      in 开始的当日不计入), e.g. a case dispatched on Tuesday 16:00 with 1 working day is due on
      Wednesday 17:30, and the same for a case dispatched on Tuesday 08:00; a case dispatched on
      Tuesday after 17:30 begins counting on Wednesday and is due on Thursday 17:30. Zero days: the
      close of the day on which counting begins (当日办结).
    - A working day is therefore *not* the same as `hours_per_day` working hours: 1 working day
      gives between one and two days' worth of office time depending on the hour of dispatch.
      (`app.cases.catalogue.WORKING_HOURS_PER_DAY` = 8 only serves to compare limits given in
      different units; it is not used here.)
    - `working_hours_between(a, b)` is the office time between two instants, negative if b < a: the
      "time left" until a deadline, or the "overdue by" after it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from functools import cache
from importlib import metadata
from types import MappingProxyType
from typing import Any, Literal
from zoneinfo import ZoneInfo

import chinese_calendar

SHANGHAI = ZoneInfo("Asia/Shanghai")

Unit = Literal["hours", "days"]

_ONE_DAY = timedelta(days=1)
_US_PER_HOUR = 3_600_000_000
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MIN_YEAR, _MAX_YEAR = 1900, 2200
_JSON_KEYS = frozenset({"year", "holidays", "workdays", "source"})

# chinesecalendar names holidays in English; the Chinese names come with its Holiday enum.
_CHINESE_NAMES: dict[str, str] = {h.value: h.chinese for h in chinese_calendar.Holiday}


# ── Year schedules ─────────────────────────────────────────────────────────────────────────────


def _schedule_problems(
    year: object, holidays: Iterable[object], workdays: Iterable[object], names: Mapping[Any, Any]
) -> list[str]:
    """What is wrong with a schedule: contradictions and dates outside its year."""
    problems: list[str] = []
    year_ok = (
        isinstance(year, int) and not isinstance(year, bool) and _MIN_YEAR <= year <= _MAX_YEAR
    )
    if not year_ok:
        problems.append(f"year must be an integer between {_MIN_YEAR} and {_MAX_YEAR}: {year!r}")
    hol: set[date] = set()
    for kind, days, into in (("holiday", holidays, hol), ("make-up working day", workdays, None)):
        for d in days:
            if not isinstance(d, date) or isinstance(d, datetime):
                problems.append(f"{kind} is not a date: {d!r}")
                continue
            if year_ok and d.year != year:
                problems.append(f"{kind} {d.isoformat()} is not in {year}")
            if into is not None:
                into.add(d)
            else:
                if d in hol:
                    problems.append(f"{d.isoformat()} is both a holiday and a make-up working day")
                if d.weekday() < 5:
                    problems.append(
                        f"make-up working day {d.isoformat()} is a {d:%A}: "
                        "make-up working days fall on Saturdays or Sundays"
                    )
    for d, name in names.items():
        if d not in hol:
            problems.append(f"name {name!r} is given for {d!r}, which is not a holiday")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"the name of holiday {d!r} must be a non-empty string: {name!r}")
    return problems


def _invalid(year: object, problems: list[str]) -> ValueError:
    return ValueError(f"invalid holiday schedule for {year!r}: " + "; ".join(problems))


@dataclass(frozen=True)
class YearSchedule:
    """One year's official holiday schedule (放假调休安排).

    holidays: days off (放假). Weekdays among them are days off that would otherwise be working
        days (the weekday holidays of Spring Festival, Golden Week …); weekend days of a holiday
        block may be listed as well (they are off anyway) so that they carry the holiday's name.
    workdays: make-up working days (调休上班) on Saturdays or Sundays.
    names: holiday names by date (optional, for display; only for dates in `holidays`).
    source: where the schedule comes from (e.g. the notice's number 国办发明电〔2025〕7号), optional.

    Construction validates: dates must lie in `year`, no date may be both a holiday and a make-up
    working day, make-up working days must be on weekends. Violations raise ValueError listing
    every problem.
    """

    year: int
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    names: dict[date, str] = field(default_factory=dict, hash=False)
    source: str = ""

    def __post_init__(self) -> None:
        # Accept any iterables of dates; store them immutable.
        object.__setattr__(self, "holidays", frozenset(self.holidays))
        object.__setattr__(self, "workdays", frozenset(self.workdays))
        object.__setattr__(self, "names", dict(self.names))
        problems = _schedule_problems(self.year, self.holidays, self.workdays, self.names)
        if problems:
            raise _invalid(self.year, problems)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> YearSchedule:
        """Read a schedule from its JSON form (as stored in the database or uploaded)::

            {
              "year": 2027,
              "source": "国办发明电〔2026〕…号",                     (optional)
              "holidays": [{"date": "2027-01-01", "name": "元旦"},   (name optional;
                           "2027-02-08", …],                          a bare date string is fine)
              "workdays": ["2027-02-20", …]                           (make-up working days)
            }

        Dates are ISO (YYYY-MM-DD). Unknown keys, malformed or duplicate dates and the
        contradictions checked by the constructor raise one ValueError listing every problem.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"a holiday schedule must be a JSON object, not {type(data).__name__}")
        year = data.get("year")
        problems: list[str] = []
        if "year" not in data:
            problems.append("year is missing")
        unknown = sorted(str(k) for k in data if k not in _JSON_KEYS)
        if unknown:
            problems.append(f"unknown keys {unknown} (expected {sorted(_JSON_KEYS)})")
        source = data.get("source", "")
        if not isinstance(source, str):
            problems.append(f"source must be a string: {source!r}")
            source = ""

        def parse_date(kind: str, value: object, seen: set[date]) -> date | None:
            if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
                problems.append(f"{kind} {value!r} is not a date in the form YYYY-MM-DD")
                return None
            try:
                d = date.fromisoformat(value)
            except ValueError:
                problems.append(f"{kind} {value!r} is not a valid date")
                return None
            if d in seen:
                problems.append(f"{kind} {value} is listed twice")
            seen.add(d)
            return d

        holidays: set[date] = set()
        names: dict[date, str] = {}
        raw_holidays = data.get("holidays", [])
        if not isinstance(raw_holidays, list):
            problems.append("holidays must be a list")
            raw_holidays = []
        for entry in raw_holidays:
            if isinstance(entry, Mapping):
                extra = sorted(str(k) for k in entry if k not in ("date", "name"))
                if extra:
                    problems.append(f"holiday {entry!r} has unknown keys {extra}")
                d = parse_date("holiday", entry.get("date"), holidays)
                name = entry.get("name")
                if d is not None and name is not None:
                    if isinstance(name, str) and name.strip():
                        names[d] = name.strip()
                    else:
                        problems.append(f"the name of holiday {d.isoformat()} must be a string")
            else:
                parse_date("holiday", entry, holidays)

        workdays: set[date] = set()
        raw_workdays = data.get("workdays", [])
        if not isinstance(raw_workdays, list):
            problems.append("workdays must be a list of dates")
            raw_workdays = []
        for entry in raw_workdays:
            parse_date("make-up working day", entry, workdays)

        problems += _schedule_problems(year, holidays, workdays, names)
        if problems:
            raise _invalid(year, problems)
        assert isinstance(year, int)
        return cls(year, frozenset(holidays), frozenset(workdays), names, source)

    def to_json(self) -> dict[str, Any]:
        """The JSON form read by `from_json` (dates sorted)."""
        out: dict[str, Any] = {"year": self.year}
        if self.source:
            out["source"] = self.source
        holidays: list[dict[str, str]] = []
        for d in sorted(self.holidays):
            entry = {"date": d.isoformat()}
            if d in self.names:
                entry["name"] = self.names[d]
            holidays.append(entry)
        out["holidays"] = holidays
        out["workdays"] = [d.isoformat() for d in sorted(self.workdays)]
        return out


def _package_version() -> str:
    try:
        return metadata.version("chinesecalendar")
    except metadata.PackageNotFoundError:  # pragma: no cover - installed as a dependency
        return "?"


@cache
def builtin_schedule(year: int) -> YearSchedule | None:
    """The official schedule of `year` as shipped by the `chinesecalendar` package, or None for a
    year it has no data for. Holidays include the weekend days of holiday blocks, named in Chinese
    (元旦, 春节, 清明, 劳动节, 端午, 中秋, 国庆节)."""
    if year not in builtin_years():  # the package has no data: it would refuse the dates
        return None
    holidays: set[date] = set()
    workdays: set[date] = set()
    names: dict[date, str] = {}
    d = date(year, 1, 1)
    while d.year == year:
        weekend = d.weekday() >= 5
        if chinese_calendar.is_workday(d):
            if weekend:
                workdays.add(d)
        else:
            _, name = chinese_calendar.get_holiday_detail(d)
            if name is not None or not weekend:
                holidays.add(d)
                if name is not None:
                    names[d] = _CHINESE_NAMES.get(name, name)
        d += _ONE_DAY
    return YearSchedule(
        year,
        frozenset(holidays),
        frozenset(workdays),
        names,
        source=f"chinesecalendar {_package_version()}",
    )


@cache
def builtin_years() -> range:
    """The years `chinesecalendar` has official schedules for (2004–2026 in version 1.11.0)."""
    years = [d.year for d in chinese_calendar.holidays]
    return range(min(years), max(years) + 1)


# ── Office hours ───────────────────────────────────────────────────────────────────────────────


def _us_of(t: time) -> int:
    """Microseconds since midnight."""
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1_000_000 + t.microsecond


@dataclass(frozen=True)
class OfficeHours:
    """Daily office hours (wall-clock times in the calendar's time zone): a morning and an
    afternoon period, 08:30–12:00 and 14:30–17:30 by default (6.5 working hours a day). The
    afternoon may start when the morning ends (no lunch break)."""

    morning: tuple[time, time] = (time(8, 30), time(12, 0))
    afternoon: tuple[time, time] = (time(14, 30), time(17, 30))

    def __post_init__(self) -> None:
        problems: list[str] = []
        for label, period in (("morning", self.morning), ("afternoon", self.afternoon)):
            if len(period) != 2 or not all(isinstance(t, time) for t in period):
                problems.append(f"{label} must be a pair of times: {period!r}")
            elif any(t.tzinfo is not None for t in period):
                problems.append(f"{label} times must be naive wall-clock times: {period!r}")
            elif not period[0] < period[1]:
                problems.append(f"{label} must start before it ends: {period!r}")
        if not problems and self.afternoon[0] < self.morning[1]:
            problems.append(
                f"the afternoon ({self.afternoon[0]}) starts before the morning ends "
                f"({self.morning[1]})"
            )
        if problems:
            raise ValueError("invalid office hours: " + "; ".join(problems))

    @property
    def periods(self) -> tuple[tuple[time, time], ...]:
        return (self.morning, self.afternoon)

    @property
    def opens(self) -> time:
        return self.morning[0]

    @property
    def closes(self) -> time:
        return self.afternoon[1]

    @property
    def hours_per_day(self) -> float:
        """Office hours in one working day (6.5 by default)."""
        return sum(_us_of(e) - _us_of(s) for s, e in self.periods) / _US_PER_HOUR


# ── The calendar ───────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Deadline:
    """When a limit runs out (tz-aware, in the calendar's time zone). `provisional`: some day
    between the start and `at` lies in a year without an official schedule, counted with plain
    weekends; recompute once that year's schedule is loaded."""

    at: datetime
    provisional: bool


class WorkCalendar:
    """Working time under the given year schedules and office hours (see the module docstring)."""

    def __init__(
        self,
        schedules: Mapping[int, YearSchedule],
        hours: OfficeHours = OfficeHours(),
        tz: tzinfo = SHANGHAI,
    ) -> None:
        for year, schedule in schedules.items():
            if schedule.year != year:
                raise ValueError(f"the schedule for {schedule.year} is filed under {year}")
        if not isinstance(hours, OfficeHours):
            raise TypeError(f"hours must be OfficeHours, not {type(hours).__name__}")
        self._schedules: Mapping[int, YearSchedule] = MappingProxyType(dict(schedules))
        self._hours = hours
        self._tz = tz
        self._periods: tuple[tuple[int, int], ...] = tuple(
            (_us_of(s), _us_of(e)) for s, e in hours.periods
        )
        self._close_us = self._periods[-1][1]

    def __repr__(self) -> str:
        years = sorted(self._schedules)
        span = f"{years[0]}–{years[-1]}" if years else "none"
        return f"WorkCalendar(years={span}, hours={self._hours!r}, tz={self._tz!r})"

    @property
    def schedules(self) -> Mapping[int, YearSchedule]:
        return self._schedules

    @property
    def hours(self) -> OfficeHours:
        return self._hours

    @property
    def tz(self) -> tzinfo:
        return self._tz

    # ── days ──

    def _day(self, day: date | datetime) -> date:
        if isinstance(day, datetime):
            return self._local(day, "day").date()
        return day

    def is_workday(self, day: date | datetime) -> bool:
        """Whether `day` is a working day (an aware datetime is taken in the calendar's zone)."""
        d = self._day(day)
        schedule = self._schedules.get(d.year)
        if schedule is not None:
            if d in schedule.workdays:
                return True
            if d in schedule.holidays:
                return False
        return d.weekday() < 5

    def provisional(self, day: date | datetime) -> bool:
        """True if `day`'s year has no schedule (so plain weekends are assumed)."""
        return self._day(day).year not in self._schedules

    def holiday_name(self, day: date | datetime) -> str | None:
        """The holiday `day` belongs to (e.g. "国庆节"), if its schedule names one."""
        d = self._day(day)
        schedule = self._schedules.get(d.year)
        return schedule.names.get(d) if schedule is not None else None

    def is_working_time(self, moment: datetime) -> bool:
        """Whether `moment` is inside office hours of a working day."""
        local = self._local(moment, "moment")
        offset = _us_of(local.time())
        return self.is_workday(local.date()) and any(s <= offset < e for s, e in self._periods)

    # ── instants ──

    def _local(self, moment: datetime, what: str) -> datetime:
        """`moment` as a naive wall-clock datetime in the calendar's zone."""
        if not isinstance(moment, datetime):
            raise TypeError(f"{what} must be a datetime, not {type(moment).__name__}")
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise ValueError(f"{what} must be timezone-aware: {moment!r}")
        return moment.astimezone(self._tz).replace(tzinfo=None)

    def _aware(self, local: datetime) -> datetime:
        return local.replace(tzinfo=self._tz)

    def _provisional_span(self, first: date, last: date) -> bool:
        return any(y not in self._schedules for y in range(first.year, last.year + 1))

    def _next_office(self, local: datetime) -> datetime:
        """The first office instant at or after `local` (naive, local)."""
        day = local.date()
        offset = _us_of(local.time())
        while True:
            if self.is_workday(day):
                for start, end in self._periods:
                    if offset < end:
                        return datetime.combine(day, time()) + timedelta(
                            microseconds=max(start, offset)
                        )
            day += _ONE_DAY
            offset = 0

    def counting_start(self, start: datetime) -> datetime:
        """When counting begins for `start`: the first office instant at or after it."""
        return self._aware(self._next_office(self._local(start, "start")))

    # ── arithmetic ──

    def add_working_hours(self, start: datetime, hours: float) -> Deadline:
        """The earliest instant by which `hours` of office time have passed since `start`."""
        if isinstance(hours, bool) or not isinstance(hours, int | float):
            raise TypeError(f"hours must be a number, not {type(hours).__name__}")
        if not math.isfinite(hours) or hours < 0:
            raise ValueError(f"hours must be a finite non-negative number: {hours!r}")
        local = self._local(start, "start")
        remaining = round(hours * _US_PER_HOUR)
        at = local
        if remaining > 0:
            day = local.date()
            offset = _us_of(local.time())
            found: datetime | None = None
            while found is None:
                if self.is_workday(day):
                    for p_start, p_end in self._periods:
                        begin = max(p_start, offset)
                        if begin >= p_end:
                            continue
                        if remaining <= p_end - begin:
                            found = datetime.combine(day, time()) + timedelta(
                                microseconds=begin + remaining
                            )
                            break
                        remaining -= p_end - begin
                day += _ONE_DAY
                offset = 0
            at = found
        return Deadline(self._aware(at), self._provisional_span(local.date(), at.date()))

    def add_working_days(self, start: datetime, days: int) -> Deadline:
        """The close of the `days`-th working day after the day on which counting begins (the
        close of that day itself for 0)."""
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError(f"days must be an integer, not {type(days).__name__}")
        if days < 0:
            raise ValueError(f"days must not be negative: {days}")
        local = self._local(start, "start")
        day = self._next_office(local).date()
        counted = 0
        while counted < days:
            day += _ONE_DAY
            if self.is_workday(day):
                counted += 1
        at = datetime.combine(day, time()) + timedelta(microseconds=self._close_us)
        return Deadline(self._aware(at), self._provisional_span(local.date(), day))

    def extend(self, deadline: datetime, value: float, unit: Unit) -> Deadline:
        """A deadline moved by an approved extension (延期) of `value` working hours or days.

        Hours are office time after the old deadline. Days are whole working days after the
        working day the old deadline ends: the day of the last office instant before it (a
        deadline at 17:30 ends that day, one at 08:30 ends the working day before), so 2 working
        days from Wednesday 17:30 give Friday 17:30, not Monday (counting does not start anew
        the next morning, as it does for a limit that starts then)."""
        if unit == "hours":
            return self.add_working_hours(deadline, value)
        if unit != "days":
            raise ValueError(f"unit must be 'hours' or 'days': {unit!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TypeError(f"extension must be a number, not {type(value).__name__}")
        if not float(value).is_integer() or value < 0:
            raise ValueError(f"an extension in working days must be a whole number: {value!r}")
        local = self._local(deadline, "deadline")
        day = local.date()
        if not (self.is_workday(day) and _us_of(local.time()) > self._periods[0][0]):
            day -= _ONE_DAY
            while not self.is_workday(day):
                day -= _ONE_DAY
        counted = 0
        while counted < int(value):
            day += _ONE_DAY
            if self.is_workday(day):
                counted += 1
        at = datetime.combine(day, time()) + timedelta(microseconds=self._close_us)
        return Deadline(self._aware(at), self._provisional_span(local.date(), day))

    def deadline(self, start: datetime, limit_value: float, unit: Unit) -> Deadline:
        """The deadline of a limit such as `Limit.handle` / `Limit.handle_unit` (or
        `Limit.sign_in_hours`, "hours"). A limit in days must be a whole number."""
        if unit == "hours":
            return self.add_working_hours(start, limit_value)
        if unit == "days":
            if isinstance(limit_value, bool) or not isinstance(limit_value, int | float):
                raise TypeError(f"limit must be a number, not {type(limit_value).__name__}")
            if not float(limit_value).is_integer():
                raise ValueError(
                    f"a limit in working days must be a whole number of days: {limit_value!r}"
                )
            return self.add_working_days(start, int(limit_value))
        raise ValueError(f"unit must be 'hours' or 'days': {unit!r}")

    def working_hours_between(self, a: datetime, b: datetime) -> float:
        """Office hours from `a` to `b`; negative if `b` is before `a`."""
        la, lb = self._local(a, "a"), self._local(b, "b")
        if lb < la:
            return -self._office_us(lb, la) / _US_PER_HOUR
        return self._office_us(la, lb) / _US_PER_HOUR

    def _office_us(self, lo: datetime, hi: datetime) -> int:
        total = 0
        day, last = lo.date(), hi.date()
        while day <= last:
            if self.is_workday(day):
                begin = _us_of(lo.time()) if day == lo.date() else 0
                end = _us_of(hi.time()) if day == last else 86_400_000_000
                for p_start, p_end in self._periods:
                    s, e = max(p_start, begin), min(p_end, end)
                    if s < e:
                        total += e - s
            day += _ONE_DAY
        return total


def default_calendar(
    extra: Mapping[int, YearSchedule] | None = None,
    *,
    hours: OfficeHours | None = None,
    tz: tzinfo = SHANGHAI,
) -> WorkCalendar:
    """A calendar with the built-in schedules of `chinesecalendar` (2004–2026), overridden and
    extended by `extra` (e.g. schedules uploaded by administrators, by year)."""
    schedules: dict[int, YearSchedule] = {}
    for year in builtin_years():
        schedule = builtin_schedule(year)
        if schedule is not None:
            schedules[year] = schedule
    schedules.update(extra or {})
    return WorkCalendar(schedules, hours or OfficeHours(), tz)
