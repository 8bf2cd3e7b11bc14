"""Schemas of the official working-day schedule (调休)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import BeforeValidator

from app.schemas import ResponseModel, strict_integer

YearPath = Annotated[int, Path(ge=2000, le=2100), BeforeValidator(strict_integer)]


class ScheduleOut(ResponseModel):
    year: int
    source: str
    """builtin (chinesecalendar), loaded (by an administrator) or none (weekends only)"""
    provisional: bool
    schedule: dict[str, Any] | None


class LoadResult(ScheduleOut):
    recomputed: int
