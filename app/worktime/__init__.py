"""Working time of the official Chinese calendar (调休 included): case deadlines in working
hours and working days. Pure: see app/worktime/calendar.py."""

from app.worktime.calendar import (
    SHANGHAI,
    Deadline,
    OfficeHours,
    Unit,
    WorkCalendar,
    YearSchedule,
    builtin_schedule,
    builtin_years,
    default_calendar,
)

__all__ = [
    "SHANGHAI",
    "Deadline",
    "OfficeHours",
    "Unit",
    "WorkCalendar",
    "YearSchedule",
    "builtin_schedule",
    "builtin_years",
    "default_calendar",
]
