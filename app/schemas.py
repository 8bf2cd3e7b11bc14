"""Schema pieces shared by the domains: strict request models, local times, pages, refs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, ClassVar, Generic, Optional, Self, TypeVar
from zoneinfo import ZoneInfo

from fastapi import Path, Query
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from app.config import get_settings
from app.errors import ApiError
from app.i18n import current_lang

SHANGHAI = ZoneInfo("Asia/Shanghai")


def to_local(value: datetime) -> str:
    return value.astimezone(SHANGHAI).isoformat()


LocalTime = Annotated[datetime, PlainSerializer(to_local, return_type=str, when_used="json")]
"""A timestamptz shown in Asia/Shanghai (+08:00)."""


# Control characters but tab, LF and CR (C0, DEL, C1), lone surrogates, the two noncharacters XML
# cannot carry, and the bidirectional embeddings, overrides and isolates that make a text read
# other than it is stored (U+202A-U+202E, U+2066-U+2069).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff\u202a-\u202e\u2066-\u2069]"
)


def check_text(value: str) -> str:
    """A text a person could have typed: refuses control characters (tab, newline and carriage
    return are fine) and bidi overrides; pydantic error type `control_character`."""
    bad = _UNSAFE.search(value)
    if bad is not None:
        raise PydanticCustomError(
            "control_character",
            "contains the control or bidi override character U+{char} at position {at}",
            {"char": f"{ord(bad.group()):04X}", "at": bad.start()},
        )
    return value


CleanStr = Annotated[str, AfterValidator(check_text)]
"""The one text type of the API's input. Every field of a `RequestModel` is checked the same way
(strings inside lists and objects too), so a body cannot store what a reader cannot show."""


def _check_texts(value: Any) -> Any:
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, list | tuple | set | frozenset):
        for v in value:
            if not isinstance(v, int | float):
                _check_texts(v)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_texts(k)
            _check_texts(v)
    return value


_ID = re.compile(r"[1-9][0-9]{0,17}")


def parse_id(value: str | None) -> int | None:
    """The one strict reading of an identifier sent as text (a path segment, a comma-separated
    list, a form field): ASCII digits only, no sign, no leading zero, no spaces, at most 18
    digits (a bigint). None when it is not one: `str.isdigit()` accepts superscripts and other
    scripts' digits that `int()` refuses ("¹"), and `int()` accepts "+1", " 1", "1_0" and "０"."""
    if value is None or not _ID.fullmatch(value):
        return None
    return int(value)


_INTEGER = re.compile(r"0|[1-9][0-9]{0,18}")


def strict_integer(value: Any) -> Any:
    """The same strictness for integers in a path (ids, a tile's z/x/y, a year): the text is
    ASCII digits without sign, leading zero, spaces or underscores, so `01`, `+1`, `1_0` and
    `１` are a 422 (`integer_format`) instead of silently naming object 1 or 10."""
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise PydanticCustomError(
            "integer_format", "must be a decimal integer without sign, leading zeros or spaces"
        )
    return value


Lon = Annotated[float, Field(ge=-180, le=180)]
"""A longitude in a body."""
Lat = Annotated[float, Field(ge=-90, le=90)]
"""A latitude in a body."""


MAX_ID = 2**63 - 1
"""The largest id (a bigint)."""
Id = Annotated[int, Field(ge=1, le=MAX_ID)]
ClientId = Field(None, min_length=1, max_length=64, description="The phone's id (idempotency)")
"""An id the phone made for what it sends from its outbox: a resend with it answers what was
stored the first time (patrols, check-ins, visits, dispute reports)."""
"""An id in a body."""
IdPath = Annotated[int, Path(ge=1, le=MAX_ID), BeforeValidator(strict_integer)]
"""An id in a path: strict digits (`strict_integer`), 1 to 2^63-1."""
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID), BeforeValidator(strict_integer)]
"""An optional id in the query string, as strict as in a path."""


EARLIEST_YEAR, LATEST_YEAR = 2000, 2100
"""The calendar the API accepts, for every date and time it is sent (as written, in its own
offset): years 2000 to 2100. Outside it a 422 (`time_out_of_range`), never a 500 from period
arithmetic at year 1 or 10000 (`9999-12-31T23:59:59+00:00` is year 10000 in Shanghai)."""
YEAR_PATTERN = r"^(20[0-9]{2}|2100)-"
"""The same range in openapi.yaml (the schema's `pattern` of every date and date-time)."""


def _out_of_range(value: date) -> PydanticCustomError:
    return PydanticCustomError(
        "time_out_of_range",
        "must be between {earliest}-01-01 and {latest}-12-31 (got {got})",
        {"earliest": EARLIEST_YEAR, "latest": LATEST_YEAR, "got": value.isoformat()},
    )


def in_calendar(value: date) -> bool:
    return EARLIEST_YEAR <= value.year <= LATEST_YEAR


def _checked_date(value: date) -> date:
    if not in_calendar(value):
        raise _out_of_range(value)
    return value


def local_instant(value: datetime) -> datetime:
    """The API's one rule for times: a time without an offset means Asia/Shanghai time; and
    it is in the API's calendar (years 2000 to 2100 as written; `time_out_of_range` otherwise)."""
    if not in_calendar(value):
        raise _out_of_range(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=SHANGHAI)


def parse_instant(value: str) -> datetime:
    """An ISO 8601 / RFC 3339 time sent as text (parsed by hand, e.g. an OGC interval) under the
    same rule; ValueError when it is not one. `Z` is UTC; a `+` sent unencoded in a query string
    (read as a space) is put back."""
    v = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    if len(v) > 19 and v[19] == " ":
        v = v[:19] + "+" + v[20:]
    return local_instant(datetime.fromisoformat(v))


_RANGE_SCHEMA = Field(
    json_schema_extra={
        "pattern": YEAR_PATTERN,
        "x-earliest": f"{EARLIEST_YEAR}-01-01",
        "x-latest": f"{LATEST_YEAR}-12-31",
    }
)

LocalInstant = Annotated[datetime, AfterValidator(local_instant), _RANGE_SCHEMA]
"""An incoming time (query parameter or body field): ISO 8601; no offset = Asia/Shanghai.
Every time query parameter of the API has this type: `since: TimeQuery = None`, or
`Annotated[LocalInstant | None, Query(description=...)]`."""

LocalDate = Annotated[date, AfterValidator(_checked_date), _RANGE_SCHEMA]
"""An incoming day (query parameter or body field): ISO 8601, years 2000 to 2100."""

TimeQuery = Annotated[
    LocalInstant | None, Query(description="ISO 8601; a time without an offset is Asia/Shanghai")
]


_BOOL_TYPES: tuple[Any, ...] = (bool, bool | None, Optional[bool])  # noqa: UP045
_NUMBER_TYPES: tuple[Any, ...] = (
    int,
    float,
    int | None,
    float | None,
    Optional[int],  # noqa: UP045
    Optional[float],  # noqa: UP045
)


class RequestModel(BaseModel):
    """Request bodies: unknown fields are an error (no mass assignment, no silent typos), and
    every text in them is a `CleanStr`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _clean_texts(cls, value: Any) -> Any:
        return _check_texts(value)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_bools(cls, value: Any, info: ValidationInfo) -> Any:
        """A boolean field takes `true` or `false` (or null where allowed), not `0`, `1` or
        `"yes"`, and a number field no boolean: what the schema says is what is accepted."""
        field = cls.model_fields.get(info.field_name or "")
        if (
            field is not None
            and field.annotation in _BOOL_TYPES
            and value is not None
            and not isinstance(value, bool)
        ):
            raise PydanticCustomError("bool_type", "Input should be a valid boolean")
        if field is not None and isinstance(value, bool) and field.annotation in _NUMBER_TYPES:
            # and the other way round: JSON's true/false are not 1 and 0 (`"lat": false` was
            # stored as latitude 0, `"households": false` as 0 households)
            raise PydanticCustomError("float_type", "Input should be a valid number, not a boolean")
        if field is not None and isinstance(value, str):
            # The documented maxLength holds for what was sent: whitespace is stripped after
            # the check, not before it (an 81-character name with a leading tab was accepted).
            limit = _max_length(field)
            if limit is not None and len(value) > limit:
                raise PydanticCustomError(
                    "string_too_long",
                    "String should have at most {max_length} characters",
                    {"max_length": limit},
                )
        return value


def _max_length(field: FieldInfo) -> int | None:
    """The `max_length` a field declares (Field(max_length=...) or StringConstraints)."""
    limits = [m.max_length for m in field.metadata if getattr(m, "max_length", None) is not None]
    return min(limits) if limits else None


class ResponseModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int = Field(description="Number of items matching the filters")
    limit: int
    offset: int


class Ref(ResponseModel):
    id: int
    code: str
    name: str


def parse_bbox(value: str | None) -> tuple[float, float, float, float] | None:
    """`minLon,minLat,maxLon,maxLat` in WGS84 → tuple; ApiError when malformed."""
    if value is None or value == "":
        return None
    from math import isfinite

    parts = value.split(",")
    try:
        nums = tuple(float(p) for p in parts)
    except ValueError:
        nums = ()
    bad = (
        len(nums) != 4
        or not all(isfinite(n) for n in nums)
        or not (-180 <= nums[0] <= nums[2] <= 180 and -90 <= nums[1] <= nums[3] <= 90)
    )
    if bad:
        raise ApiError(
            "validation_error",
            detail="bbox 应为 最小经度,最小纬度,最大经度,最大纬度（WGS84），且最小值不大于最大值",
            detail_en="bbox must be minLon,minLat,maxLon,maxLat (WGS84), min not above max",
            field="bbox",
        )
    from math import cos, radians

    cap = get_settings().max_bbox_km2
    mid = radians((nums[1] + nums[3]) / 2)
    km2 = (nums[2] - nums[0]) * 111.32 * max(cos(mid), 0.0) * (nums[3] - nums[1]) * 110.57
    if km2 > cap:
        raise ApiError(
            "validation_error",
            detail=f"bbox 范围过大（约 {km2:,.0f} 平方公里，上限 {cap:,.0f}）：请缩小地图范围",
            detail_en=f"bbox too large (about {km2:,.0f} km², at most {cap:,.0f}): zoom in",
            field="bbox",
            extra={"limit_km2": cap},
        )
    return nums  # type: ignore[return-value]


__all__ = ["LocalTime", "Page", "Ref", "RequestModel", "ResponseModel", "parse_bbox"]


def reject_nulls(body: BaseModel, *names: str) -> None:
    """PATCH bodies: these fields may be left out but not set to null (422, naming the field)."""
    for name in names:
        if name in body.model_fields_set and getattr(body, name) is None:
            raise ApiError(
                "validation_error",
                field=name,
                detail=f"{name} 不能为空",
                detail_en=f"{name} must not be null",
            )


def page_limit(limit: int | None) -> int:
    """The page size asked for, or the default, never above the hard limit."""
    s = get_settings()
    return min(limit or s.page_default, s.page_max)


LimitQuery = Annotated[int | None, Query(ge=1, description="Page size (default 50, at most 500)")]
OffsetQuery = Annotated[int, Query(ge=0, le=MAX_ID, description="Rows to skip")]
BboxQuery = Annotated[str | None, Query(description="minLon,minLat,maxLon,maxLat (WGS84)")]
SearchQuery = Annotated[
    str | None, Query(max_length=100, description="Name contains / code starts with")
]


class Labels:
    """Field metadata naming a code's labels: `status: Annotated[Status, Labels(STATUS)]`, where
    `STATUS` maps each code to its (Chinese, English) label."""

    def __init__(self, table: Mapping[Any, tuple[str, str]]) -> None:
        self.table = table


class LabelledModel(ResponseModel):
    """A response whose codes carry labels: every field annotated with `Labels(...)` has a
    `<field>_label` sibling, filled in the request's language (`app.i18n.current_lang`) whenever
    the model is built — alone, in a list or nested in another answer, so no caller can forget it.
    A `*_label` field without its labelled code (or the reverse) is a TypeError at import; every
    field of the answer, labels included, is required in its schema (it is always there)."""

    model_config = ConfigDict(
        from_attributes=True, json_schema_serialization_defaults_required=True
    )
    label_tables: ClassVar[dict[str, Mapping[Any, tuple[str, str]]]] = {}

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        tables = {
            name: m.table
            for name, f in cls.model_fields.items()
            for m in f.metadata
            if isinstance(m, Labels)
        }
        labelled = {n.removesuffix("_label") for n in cls.model_fields if n.endswith("_label")}
        if labelled != set(tables):
            raise TypeError(
                f"{cls.__name__}: label fields {sorted(labelled)} and labelled codes "
                f"{sorted(tables)} differ"
            )
        cls.label_tables = tables

    @model_validator(mode="after")
    def _fill_labels(self) -> Self:
        english = current_lang() == "en"
        for name, table in self.label_tables.items():
            code = getattr(self, name)
            zh, en = table.get(code, (str(code), str(code))) if code is not None else ("", "")
            self.__dict__[f"{name}_label"] = en if english else zh
        return self
