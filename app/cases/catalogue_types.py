"""The shapes of the category catalogue (app/cases/catalogue.py): classes, categories and their
time limits by urgency. Pure data types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["event", "component"]
HandleUnit = Literal["hours", "days"]

WORKING_HOURS_PER_DAY = 8
"""For comparing limits given in different units (a working day is 8 working hours)."""

URGENCIES: tuple[str, ...] = ("normal", "urgent", "critical")
URGENCY_LABELS: dict[str, tuple[str, str]] = {
    "normal": ("一般", "normal"),
    "urgent": ("紧急", "urgent"),
    "critical": ("特急", "critical"),
}


@dataclass(frozen=True)
class CategoryClass:
    """A class (大类) of categories."""

    code: str
    name: str
    name_en: str
    kind: Kind


@dataclass(frozen=True)
class Limit:
    """Time limits for one urgency: sign-in in working hours, handling in working hours or days."""

    sign_in_hours: float
    handle: float
    handle_unit: HandleUnit

    def handle_hours(self, hours_per_day: float = WORKING_HOURS_PER_DAY) -> float:
        """The handling limit in working hours."""
        return self.handle * hours_per_day if self.handle_unit == "days" else self.handle


@dataclass(frozen=True)
class Category:
    """One category (小类) of the catalogue."""

    code: str
    class_code: str
    name: str
    name_en: str
    lead_department: str
    co_departments: tuple[str, ...]
    limits: dict[str, Limit]
    duplicate_radius_m: int = 100
    keywords: tuple[str, ...] = ()
    description: str = ""
