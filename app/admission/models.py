"""The community affairs admission list (事务准入清单): a district's versioned list of the kinds
of work departments may push down to communities and their workers, each with its legal basis."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Date,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class AdmissionList(Base):
    """One version of a district's list; a new version replaces the old one from its date."""

    __tablename__ = "admission_lists"
    __table_args__ = (
        UniqueConstraint("district_id", "version", name="uq_admission_lists_version"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, server_default="")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class AdmissionItem(Base):
    """A kind of work (事项) departments may push down: which departments (none named: any) and
    which kinds of worker task."""

    __tablename__ = "admission_items"
    __table_args__ = (UniqueConstraint("list_id", "code", name="uq_admission_items_code"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    list_id: Mapped[int] = mapped_column(ForeignKey("admission_lists.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    legal_basis: Mapped[str] = mapped_column(Text)
    department_ids: Mapped[list[int]] = mapped_column(
        ARRAY(BigInteger), server_default=text("'{}'")
    )
    task_kinds: Mapped[list[str]] = mapped_column(ARRAY(String(24)), server_default=text("'{}'"))
