"""Base data of the grid (基础信息, 人、地、事、物、组织): houses in buildings, households in houses,
residents in households, organisations at a house or building, the per-district catalogue of care
and attention tags, the change history, deletion tombstones and the persons a case names.

Every row carries `district_id` (the distribution key of the case side; rows of one house refer to
it by `(house_id, district_id)`). A record belongs to a grid through its building. Identity numbers
and phones are stored only encrypted (`*_enc`, AES-256-GCM, `key_version` names the key), with a
keyed hash (`*_hash`, HMAC-SHA256) for exact search and a masked copy (`*_masked`) for lists."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    FetchedValue,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, district_key

USES = ("residential", "shop", "office", "vacant")
TENURES = ("owned", "rented", "public", "other")
RELATIONS = ("head", "spouse", "child", "parent", "grandchild", "sibling", "tenant", "other")
STATUSES = ("active", "moved_away", "deceased")
ORG_KINDS = ("shop", "company", "school", "social", "government", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), server_default=text("now()"))


class ResidentTag(Base):
    """A care or attention category (独居老人, 残疾人, 困难家庭, 社区矫正…), per district."""

    __tablename__ = "resident_tags"
    __table_args__ = (
        UniqueConstraint("district_id", "code"),
        CheckConstraint("visit_every_days IS NULL OR visit_every_days > 0", name="every"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(50))
    name_en: Mapped[str] = mapped_column(String(80))
    sensitive: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    """Seen only by the roles of `basedata:sensitive` (社区矫正, 精神障碍…)."""
    visit_every_days: Mapped[int | None] = mapped_column(SmallInteger)
    """Households with a resident of this tag are due a visit this often (独居老人: 7)."""
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))


class House(Base):
    """A house (房屋): a unit of a building (unit, floor, room)."""

    __tablename__ = "houses"
    __table_args__ = (
        UniqueConstraint("district_id", "building_id", "unit", "floor", "room"),
        CheckConstraint(_in("use", USES), name="use"),
        CheckConstraint(_in("tenure", TENURES), name="tenure"),
        Index("ix_houses_building", "district_id", "building_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"))
    unit: Mapped[str] = mapped_column(String(20), server_default="")
    floor: Mapped[int] = mapped_column(SmallInteger)
    room: Mapped[str] = mapped_column(String(20))
    use: Mapped[str] = mapped_column(String(16), server_default="residential")
    tenure: Mapped[str] = mapped_column(String(16), server_default="owned")
    area_m2: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Household(Base):
    """A household (户) living in a house; `ended_at` once it has left it."""

    __tablename__ = "households"
    __table_args__ = (
        district_key("house_id", "houses", ondelete="CASCADE"),
        Index("ix_households_house", "district_id", "house_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    house_id: Mapped[int] = mapped_column(BigInteger)
    number: Mapped[str | None] = mapped_column(String(32))
    """The household register number (户号), when known."""
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Resident(Base):
    """A person (人员) in a household. The identity number and phone only encrypted."""

    __tablename__ = "residents"
    __table_args__ = (
        district_key("household_id", "households", ondelete="CASCADE"),
        CheckConstraint(_in("relation", RELATIONS), name="relation"),
        CheckConstraint(_in("status", STATUSES), name="status"),
        CheckConstraint("gender IS NULL OR gender IN ('M', 'F')", name="gender"),
        Index("ix_residents_household", "district_id", "household_id"),
        Index(
            "uq_residents_id_hash",
            "district_id",
            "id_hash",
            unique=True,
            postgresql_where=text("id_hash IS NOT NULL"),
        ),
        Index("ix_residents_phone_hash", "district_id", "phone_hash"),
        Index("ix_residents_moved", "district_id", "status", "moved_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    household_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str | None] = mapped_column(String(50))
    """None once reduced to figures (retention)."""
    gender: Mapped[str | None] = mapped_column(String(1))
    birth_year: Mapped[int | None] = mapped_column(SmallInteger)
    id_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    id_masked: Mapped[str | None] = mapped_column(String(24))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_masked: Mapped[str | None] = mapped_column(String(24))
    key_version: Mapped[int | None] = mapped_column(SmallInteger)
    relation: Mapped[str] = mapped_column(String(16), server_default="other")
    registered: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    """户籍: the household register is here."""
    living: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    """实有: actually lives here."""
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), server_default="{}")
    status: Mapped[str] = mapped_column(String(16), server_default="active")
    moved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reduced_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    demo: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Membership(Base):
    """Who lived in which household when: moves between households keep their history."""

    __tablename__ = "household_members"
    __table_args__ = (
        district_key("resident_id", "residents", ondelete="CASCADE"),
        district_key("household_id", "households", ondelete="CASCADE"),
        Index("ix_household_members_resident", "district_id", "resident_id"),
        Index("ix_household_members_household", "district_id", "household_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigInteger)
    household_id: Mapped[int] = mapped_column(BigInteger)
    relation: Mapped[str] = mapped_column(String(16))
    from_at: Mapped[datetime] = _now()
    to_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Organisation(Base):
    """An organisation (单位: a shop, company, school, social organisation) at a building."""

    __tablename__ = "organisations"
    __table_args__ = (
        district_key("house_id", "houses"),
        CheckConstraint(_in("kind", ORG_KINDS), name="kind"),
        Index("ix_organisations_building", "district_id", "building_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    building_id: Mapped[int] = mapped_column(ForeignKey("buildings.id", ondelete="CASCADE"))
    house_id: Mapped[int | None] = mapped_column(BigInteger)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    contact_name: Mapped[str | None] = mapped_column(String(50))
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_hash: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_masked: Mapped[str | None] = mapped_column(String(24))
    key_version: Mapped[int | None] = mapped_column(SmallInteger)
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Change(Base):
    """The change history: who changed what, when (field names and masked values, never clear
    personal data)."""

    __tablename__ = "basedata_changes"
    __table_args__ = (
        Index("ix_basedata_changes_object", "district_id", "object_type", "object_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    object_type: Mapped[str] = mapped_column(String(16))
    object_id: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = _now()
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class Tombstone(Base):
    """What is left of a person deleted on request: that it happened, who asked, why."""

    __tablename__ = "basedata_tombstones"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    resident_id: Mapped[int] = mapped_column(BigInteger)
    grid_id: Mapped[int | None] = mapped_column(BigInteger)
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(Text)
    deleted_at: Mapped[datetime] = _now()


class CasePerson(Base):
    """A household or a person a case names (optional): departments handling the case see them."""

    __tablename__ = "case_persons"
    __table_args__ = (
        district_key("case_id", "cases", ondelete="CASCADE"),
        district_key("resident_id", "residents", ondelete="CASCADE"),
        district_key("household_id", "households", ondelete="CASCADE"),
        CheckConstraint("resident_id IS NOT NULL OR household_id IS NOT NULL", name="names"),
        Index("ix_case_persons_case", "district_id", "case_id"),
        Index("ix_case_persons_resident", "district_id", "resident_id"),
        Index("ix_case_persons_household", "district_id", "household_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, server_default=FetchedValue())
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), primary_key=True)
    case_id: Mapped[int] = mapped_column(BigInteger)
    resident_id: Mapped[int | None] = mapped_column(BigInteger)
    household_id: Mapped[int | None] = mapped_column(BigInteger)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = _now()
