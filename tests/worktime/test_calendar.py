"""app.worktime.calendar: working hours / working days of the official calendar.

Official schedules used below (expected values are worked out by hand from them, with the default
office hours 08:30–12:00 and 14:30–17:30, i.e. 6.5 working hours a day):

- 2025, 国务院办公厅关于2025年部分节假日安排的通知 (国办发明电〔2024〕12号): 国庆节、中秋节
  10月1日（周三）至8日（周三）放假调休，共8天；9月28日（周日）、10月11日（周六）上班。
- 2026, 国务院办公厅关于2026年部分节假日安排的通知 (2025年11月4日): 春节 2月15日（周日）至
  23日（周一）放假调休，共9天；2月14日（周六）、2月28日（周六）上班。元旦 1月1日（周四）至3日
  （周六）放假调休；1月4日（周日）上班。

Both are checked against the chinesecalendar package as well. There is no official 2027 schedule in
chinesecalendar 1.11.0; the 2027 schedule below is invented test data (元旦 on Friday 2027-01-01
is the statutory holiday; the rest is plausible, not official).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.cases.catalogue import Limit
from app.worktime import (
    Deadline,
    OfficeHours,
    WorkCalendar,
    YearSchedule,
    builtin_schedule,
    builtin_years,
    default_calendar,
)

TZ = ZoneInfo("Asia/Shanghai")
CAL = default_calendar()
WEEKENDS_ONLY = WorkCalendar({})


def sh(y: int, m: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, m, d, h, mi, tzinfo=TZ)


def due(y: int, m: int, d: int, h: int, mi: int = 0, provisional: bool = False) -> Deadline:
    return Deadline(sh(y, m, d, h, mi), provisional)


# Invented (plausible) 2027 data, in the documented JSON format.
SCHEDULE_2027 = {
    "year": 2027,
    "source": "test data, not official",
    "holidays": [
        {"date": "2027-01-01", "name": "元旦"},
        {"date": "2027-01-02", "name": "元旦"},
        {"date": "2027-01-03", "name": "元旦"},
        {"date": "2027-02-06", "name": "春节"},
        {"date": "2027-02-07", "name": "春节"},
        {"date": "2027-02-08", "name": "春节"},
        {"date": "2027-02-09", "name": "春节"},
        {"date": "2027-02-10", "name": "春节"},
        {"date": "2027-02-11", "name": "春节"},
        {"date": "2027-02-12", "name": "春节"},
        "2027-02-13",
        "2027-02-14",
    ],
    "workdays": ["2027-02-20"],
}


# ── schedules ──────────────────────────────────────────────────────────────────────────────────


def test_golden_week_2025_schedule() -> None:
    s = builtin_schedule(2025)
    assert s is not None and s.year == 2025
    golden_week = [date(2025, 10, d) for d in range(1, 9)]
    for d in golden_week:
        assert not CAL.is_workday(d)
        assert d in s.holidays
    assert s.names[date(2025, 10, 1)] == "国庆节"
    assert CAL.holiday_name(date(2025, 10, 4)) == "国庆节"  # a Saturday inside the block
    assert {date(2025, 9, 28), date(2025, 10, 11)} <= s.workdays  # Sunday, Saturday
    assert CAL.is_workday(date(2025, 9, 28)) and CAL.is_workday(date(2025, 10, 11))
    assert CAL.is_workday(date(2025, 10, 9)) and CAL.is_workday(date(2025, 10, 10))
    assert not CAL.is_workday(date(2025, 9, 27)) and not CAL.is_workday(date(2025, 10, 12))
    for d in [date(2025, 9, 20) + timedelta(days=i) for i in range(30)]:
        assert CAL.is_workday(d) == chinese_calendar.is_workday(d), d


def test_spring_festival_2026_schedule() -> None:
    s = builtin_schedule(2026)
    assert s is not None
    assert s.workdays >= {date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28)}
    for d in range(15, 24):
        assert not CAL.is_workday(date(2026, 2, d))
    assert CAL.holiday_name(date(2026, 2, 17)) == "春节"
    assert CAL.is_workday(date(2026, 2, 14)) and CAL.is_workday(date(2026, 2, 24))


def test_builtin_matches_chinesecalendar_every_day() -> None:
    assert builtin_years() == range(2004, 2027)
    for year in builtin_years():
        d = date(year, 1, 1)
        while d.year == year:
            assert CAL.is_workday(d) == chinese_calendar.is_workday(d), d
            d += timedelta(days=1)
        assert not CAL.provisional(date(year, 6, 1))


def test_no_builtin_schedule_for_2027() -> None:
    assert builtin_schedule(2027) is None
    with pytest.raises(NotImplementedError):
        chinese_calendar.is_workday(date(2027, 1, 1))


# ── working hours and days around holidays ─────────────────────────────────────────────────────


def test_dispatched_before_golden_week_2025() -> None:
    start = sh(2025, 9, 30, 16)  # Tuesday; Oct 1–8 off
    # 1 working day: Oct 9 is the first working day after Sep 30 → its close.
    assert CAL.add_working_days(start, 1) == due(2025, 10, 9, 17, 30)
    # 4 working hours: 16:00–17:30 (1.5 h) on Sep 30, then 2.5 h from Oct 9 08:30 → 11:00.
    assert CAL.add_working_hours(start, 4) == due(2025, 10, 9, 11)
    # 2 working hours (sign-in): 1.5 h on Sep 30, 0.5 h on Oct 9 → 09:00.
    assert CAL.add_working_hours(start, 2) == due(2025, 10, 9, 9)
    # 8 working hours: 1.5 h + a whole Oct 9 (6.5 h) → exactly its close.
    assert CAL.add_working_hours(start, 8) == due(2025, 10, 9, 17, 30)
    # 3 working days: Oct 9, Oct 10, Saturday Oct 11 (make-up working day).
    assert CAL.add_working_days(start, 3) == due(2025, 10, 11, 17, 30)
    # 0 working days: the close of the day itself.
    assert CAL.add_working_days(start, 0) == due(2025, 9, 30, 17, 30)
    # Through the catalogue's Limit: sign-in 2 h, handling 3 days.
    limit = Limit(sign_in_hours=2, handle=3, handle_unit="days")
    assert CAL.deadline(start, limit.sign_in_hours, "hours") == due(2025, 10, 9, 9)
    assert CAL.deadline(start, limit.handle, limit.handle_unit) == due(2025, 10, 11, 17, 30)
    assert CAL.deadline(start, 3.0, "days") == due(2025, 10, 11, 17, 30)
    # Weekends only (no schedule): Oct 1 is a plain Wednesday.
    assert WEEKENDS_ONLY.add_working_days(start, 1) == due(2025, 10, 1, 17, 30, provisional=True)


def test_make_up_saturday_counts() -> None:
    start = sh(2025, 10, 10, 16)  # Friday; Saturday Oct 11 is a make-up working day
    # 1.5 h on Friday, 2.5 h from Saturday 08:30.
    assert CAL.add_working_hours(start, 4) == due(2025, 10, 11, 11)
    assert CAL.add_working_days(start, 1) == due(2025, 10, 11, 17, 30)
    # Without the schedule the Saturday is off: Monday Oct 13.
    assert WEEKENDS_ONLY.add_working_hours(start, 4) == due(2025, 10, 13, 11, provisional=True)
    # Reported on Saturday Sep 27 evening: counting starts on make-up Sunday Sep 28, 08:30.
    assert CAL.counting_start(sh(2025, 9, 27, 20)) == sh(2025, 9, 28, 8, 30)
    assert CAL.add_working_hours(sh(2025, 9, 27, 20), 2) == due(2025, 9, 28, 10, 30)
    assert CAL.is_working_time(sh(2025, 9, 28, 9))
    assert not CAL.is_working_time(sh(2025, 10, 12, 9))  # an ordinary Sunday


def test_spring_festival_2026() -> None:
    start = sh(2026, 2, 13, 15)  # Friday; Sat Feb 14 works; Feb 15–23 off; Sat Feb 28 works
    # 3 working days: Sat Feb 14, Tue Feb 24, Wed Feb 25.
    assert CAL.add_working_days(start, 3) == due(2026, 2, 25, 17, 30)
    # 8 working hours: 2.5 h on Friday, 3.5 h Saturday morning, 2 h from 14:30 → 16:30.
    assert CAL.add_working_hours(start, 8) == due(2026, 2, 14, 16, 30)
    # Reported on the make-up Saturday after close: counting starts Tuesday Feb 24.
    late = sh(2026, 2, 14, 18)
    assert CAL.counting_start(late) == sh(2026, 2, 24, 8, 30)
    assert CAL.add_working_hours(late, 2) == due(2026, 2, 24, 10, 30)
    assert CAL.add_working_days(late, 1) == due(2026, 2, 25, 17, 30)
    # 10 working days from Mon Feb 9: Feb 10–14 (5), Feb 24–27 (9), Sat Feb 28 (10).
    assert CAL.add_working_days(sh(2026, 2, 9, 10), 10) == due(2026, 2, 28, 17, 30)


def test_start_outside_office_hours() -> None:
    sunday_evening = sh(2025, 10, 19, 20)
    assert CAL.counting_start(sunday_evening) == sh(2025, 10, 20, 8, 30)
    assert CAL.add_working_hours(sunday_evening, 2) == due(2025, 10, 20, 10, 30)
    # The day counting begins on (Monday) does not count: 1 working day → Tuesday's close.
    assert CAL.add_working_days(sunday_evening, 1) == due(2025, 10, 21, 17, 30)
    # Sunday Sep 28 2025 was a make-up working day; after its close counting resumes Monday.
    assert CAL.add_working_hours(sh(2025, 9, 28, 20), 2) == due(2025, 9, 29, 10, 30)
    # Before opening, in the lunch break, at the exact close.
    assert CAL.add_working_hours(sh(2025, 10, 20, 7), 1) == due(2025, 10, 20, 9, 30)
    assert CAL.add_working_hours(sh(2025, 10, 20, 12, 30), 1) == due(2025, 10, 20, 15, 30)
    assert CAL.add_working_hours(sh(2025, 10, 20, 17, 30), 0.5) == due(2025, 10, 21, 9)
    assert CAL.add_working_days(sh(2025, 10, 20, 17, 30), 1) == due(2025, 10, 22, 17, 30)
    assert CAL.add_working_days(sh(2025, 10, 20, 8), 1) == due(2025, 10, 21, 17, 30)
    # A limit that uses up the morning ends at noon, not at 14:30.
    assert CAL.add_working_hours(sh(2025, 10, 20, 9), 3) == due(2025, 10, 20, 12)
    # Zero hours: the start itself, even outside office hours.
    assert CAL.add_working_hours(sunday_evening, 0) == due(2025, 10, 19, 20)


def test_working_hours_between() -> None:
    # Friday 16:00 → Monday 10:00 across an ordinary weekend: 1.5 h + 1.5 h.
    assert CAL.working_hours_between(sh(2025, 10, 17, 16), sh(2025, 10, 20, 10)) == 3.0
    # Across Golden Week: 1.5 h on Sep 30, 2.5 h on Oct 9.
    assert CAL.working_hours_between(sh(2025, 9, 30, 16), sh(2025, 10, 9, 11)) == 4.0
    assert CAL.working_hours_between(sh(2025, 10, 9, 11), sh(2025, 9, 30, 16)) == -4.0
    # Friday 17:00 → Monday 09:00 over the make-up Sunday Sep 28: 0.5 + 6.5 + 0.5 h.
    assert CAL.working_hours_between(sh(2025, 9, 26, 17), sh(2025, 9, 29, 9)) == 7.5
    assert CAL.working_hours_between(sh(2025, 10, 2, 9), sh(2025, 10, 5, 16)) == 0.0
    assert CAL.working_hours_between(sh(2025, 10, 20, 10), sh(2025, 10, 20, 10)) == 0.0
    # Lunch break excluded: 11:00 → 15:00 is 1 h + 0.5 h.
    assert CAL.working_hours_between(sh(2025, 10, 20, 11), sh(2025, 10, 20, 15)) == 1.5


# ── years without a schedule ───────────────────────────────────────────────────────────────────


def test_2027_falls_back_to_weekends_and_is_provisional() -> None:
    assert CAL.provisional(date(2027, 1, 1)) and not CAL.provisional(date(2026, 12, 31))
    assert CAL.is_workday(date(2027, 1, 1))  # a Friday, assumed working
    assert not CAL.is_workday(date(2027, 1, 2))
    start = sh(2026, 12, 31, 16)  # Thursday
    # 1.5 h on Dec 31, 2.5 h on (assumed working) Friday Jan 1 2027.
    assert CAL.add_working_hours(start, 4) == due(2027, 1, 1, 11, provisional=True)
    assert CAL.add_working_days(start, 1) == due(2027, 1, 1, 17, 30, provisional=True)
    # Within 2026 nothing is provisional.
    assert CAL.add_working_hours(start, 1) == due(2026, 12, 31, 17)


def test_supplied_2027_schedule() -> None:
    schedule = YearSchedule.from_json(SCHEDULE_2027)
    assert schedule.names[date(2027, 1, 1)] == "元旦"
    assert date(2027, 2, 13) in schedule.holidays and date(2027, 2, 13) not in schedule.names
    cal = default_calendar({2027: schedule})
    assert not cal.provisional(date(2027, 1, 1)) and not cal.is_workday(date(2027, 1, 1))
    start = sh(2026, 12, 31, 16)
    # 元旦 (Fri) and the weekend off: Monday Jan 4 2027.
    assert cal.add_working_hours(start, 4) == due(2027, 1, 4, 11)
    assert cal.add_working_days(start, 1) == due(2027, 1, 4, 17, 30)
    # Make-up Saturday Feb 20 2027 counts; the fallback would give Monday Feb 22.
    assert cal.add_working_days(sh(2027, 2, 19, 10), 1) == due(2027, 2, 20, 17, 30)
    assert CAL.add_working_days(sh(2027, 2, 19, 10), 1) == due(2027, 2, 22, 17, 30, True)
    # A schedule supplied for a built-in year replaces it.
    no_golden_week = YearSchedule(2025)
    cal = default_calendar({2025: no_golden_week})
    assert cal.add_working_days(sh(2025, 9, 30, 16), 1) == due(2025, 10, 1, 17, 30)


# ── JSON and validation ────────────────────────────────────────────────────────────────────────


def test_json_round_trip() -> None:
    schedule = YearSchedule.from_json(SCHEDULE_2027)
    again = YearSchedule.from_json(schedule.to_json())
    assert again == schedule
    assert schedule.to_json()["holidays"][0] == {"date": "2027-01-01", "name": "元旦"}
    assert schedule.to_json()["workdays"] == ["2027-02-20"]
    builtin = builtin_schedule(2026)
    assert builtin is not None
    assert YearSchedule.from_json(builtin.to_json()) == builtin
    assert hash(schedule) == hash(again)


def test_invalid_schedules_list_every_problem() -> None:
    bad = {
        "year": 2027,
        "holidays": [{"date": "2027-01-01"}, {"date": "2026-12-31"}, "2027-13-01", "2027-1-2"],
        "workdays": ["2027-01-01", "2027-01-05"],
        "workday": [],
    }
    with pytest.raises(ValueError) as err:
        YearSchedule.from_json(bad)
    message = str(err.value)
    for fragment in (
        "2026-12-31 is not in 2027",
        "'2027-13-01' is not a valid date",
        "'2027-1-2' is not a date in the form YYYY-MM-DD",
        "2027-01-01 is both a holiday and a make-up working day",
        "make-up working day 2027-01-05 is a Tuesday",
        "unknown keys ['workday']",
    ):
        assert fragment in message
    with pytest.raises(ValueError, match="year is missing"):
        YearSchedule.from_json({"holidays": []})
    with pytest.raises(ValueError, match="listed twice"):
        YearSchedule.from_json({"year": 2027, "holidays": ["2027-01-01", "2027-01-01"]})
    with pytest.raises(ValueError, match="not in 2027"):
        YearSchedule(2027, frozenset({date(2026, 1, 1)}))
    with pytest.raises(ValueError, match="not a holiday"):
        YearSchedule(2027, names={date(2027, 1, 1): "元旦"})
    with pytest.raises(ValueError, match="filed under 2028"):
        WorkCalendar({2028: YearSchedule(2027)})


# ── inputs, office hours ───────────────────────────────────────────────────────────────────────


def test_timezones() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.add_working_hours(datetime(2025, 9, 30, 16), 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.working_hours_between(sh(2025, 9, 30, 16), datetime(2025, 10, 9, 11))
    # 08:00 UTC is 16:00 in Shanghai; results come back in Shanghai time.
    result = CAL.add_working_hours(datetime(2025, 9, 30, 8, tzinfo=UTC), 4)
    assert result == due(2025, 10, 9, 11)
    assert result.at.tzinfo == TZ and result.at.hour == 11
    assert CAL.is_workday(datetime(2025, 9, 27, 16, 30, tzinfo=UTC))  # Sun Sep 28, 00:30


def test_bad_limits() -> None:
    start = sh(2025, 10, 20, 9)
    with pytest.raises(ValueError, match="whole number"):
        CAL.deadline(start, 1.5, "days")
    with pytest.raises(ValueError, match="unit"):
        CAL.deadline(start, 1, "weeks")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        CAL.add_working_hours(start, -1)
    with pytest.raises(ValueError):
        CAL.add_working_hours(start, float("nan"))
    with pytest.raises(ValueError):
        CAL.add_working_days(start, -1)


def test_office_hours() -> None:
    assert OfficeHours().hours_per_day == 6.5
    assert OfficeHours().opens == time(8, 30) and OfficeHours().closes == time(17, 30)
    long_day = OfficeHours(morning=(time(9), time(12)), afternoon=(time(13), time(18)))
    assert long_day.hours_per_day == 8
    cal = default_calendar(hours=long_day)
    start = sh(2025, 9, 30, 17, 45)  # after the default close, before 18:00
    # Default hours: counting starts Oct 9 08:30 → 10:30.
    assert CAL.add_working_hours(start, 2) == due(2025, 10, 9, 10, 30)
    # 09:00–18:00: 0.25 h on Sep 30, 1.75 h from Oct 9 09:00 → 10:45.
    assert cal.add_working_hours(start, 2) == due(2025, 10, 9, 10, 45)
    assert cal.add_working_days(start, 1) == due(2025, 10, 9, 18)
    with pytest.raises(ValueError, match="before the morning ends"):
        OfficeHours(morning=(time(9), time(13)), afternoon=(time(12), time(18)))
    with pytest.raises(ValueError, match="start before it ends"):
        OfficeHours(morning=(time(12), time(9)))


# ── properties ─────────────────────────────────────────────────────────────────────────────────

starts = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(TZ)
)
# Whole seconds: with arbitrary floats, h1 + h2 may round to one microsecond more than h1 and h2
# rounded separately, and a deadline one microsecond after a period's close jumps to the next one.
seconds_as_hours = st.integers(min_value=0, max_value=120 * 3600).map(lambda s: s / 3600)


@settings(max_examples=150, deadline=None)
@given(start=starts, h1=seconds_as_hours, h2=seconds_as_hours)
def test_adding_hours_composes(start: datetime, h1: float, h2: float) -> None:
    whole = CAL.add_working_hours(start, h1 + h2).at
    stepwise = CAL.add_working_hours(CAL.add_working_hours(start, h1).at, h2).at
    assert abs((whole - stepwise).total_seconds()) < 1


@settings(max_examples=150, deadline=None)
@given(start=starts, h=st.floats(min_value=0, max_value=200, allow_nan=False))
def test_hours_between_inverts_adding(start: datetime, h: float) -> None:
    result = CAL.add_working_hours(start, h)
    assert result.at >= start
    assert CAL.working_hours_between(start, result.at) == pytest.approx(h, abs=1e-6)
    assert CAL.working_hours_between(result.at, start) == pytest.approx(-h, abs=1e-6)
    assert result.provisional == (result.at.year >= 2027)


@settings(max_examples=100, deadline=None)
@given(start=starts, days=st.integers(min_value=0, max_value=20))
def test_working_days_end_at_a_close(start: datetime, days: int) -> None:
    result = CAL.add_working_days(start, days)
    assert result.at.time() == time(17, 30) and CAL.is_workday(result.at.date())
    assert result.at > start
    later = CAL.add_working_days(start, days + 1)
    assert later.at > result.at
    # N working days give at least N whole days of office time after counting begins.
    began = CAL.counting_start(start)
    assert CAL.working_hours_between(began, result.at) >= days * 6.5
