"""Five-step deliberation (五议工作法): a resident's proposal (居民提议), the two committees'
review (两委审议), democratic consultation (民主商议) with opinions and votes, the joint resolution
(协同决议) whose execution is tracked as tasks, and the residents' public evaluation (大众评议)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.community.models import CommunityScoped, one_of
from app.db import Base

MATTER_STATES = (
    "proposed",
    "accepted",
    "consulting",
    "resolved",
    "done",
    "evaluated",
    "rejected",
    "merged",
    "failed",
)
MATTER_CHANNELS = ("grid_worker", "qr_form", "community")
CONSULT_MODES = ("meeting", "online")
VOTES = ("yes", "no", "abstain")
SATISFACTION = ("satisfied", "basic", "unsatisfied")


class Matter(CommunityScoped, Base):
    __tablename__ = "community_matters"
    __table_args__ = (
        one_of("status", MATTER_STATES),
        one_of("channel", MATTER_CHANNELS),
        one_of("mode", CONSULT_MODES),
        CheckConstraint("quorum IS NULL OR quorum >= 1", name="quorum"),
        CheckConstraint("money IS NULL OR money >= 0", name="money"),
        CheckConstraint("(status = 'merged') = (merged_into_id IS NOT NULL)", name="merged"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    grid_id: Mapped[int | None] = mapped_column(ForeignKey("grids.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, server_default="")
    proposer: Mapped[str | None] = mapped_column(String(100))
    """The resident who proposed it (never on the public board)."""
    channel: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(10), server_default="proposed")
    merged_into_id: Mapped[int | None] = mapped_column(
        ForeignKey("community_matters.id", ondelete="RESTRICT")
    )
    reason: Mapped[str | None] = mapped_column(Text)
    """Why the two committees rejected it, or why the consultation failed."""
    mode: Mapped[str | None] = mapped_column(String(8))
    quorum: Mapped[int | None] = mapped_column(Integer)
    """Participants needed for the consultation to decide."""
    consult_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    decision: Mapped[str | None] = mapped_column(Text)
    money: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    """Money the resolution commits, in yuan."""
    funding: Mapped[str | None] = mapped_column(String(200))
    """Where the money comes from."""
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Opinion(CommunityScoped, Base):
    """One participant's vote and opinion in a consultation (one per participant)."""

    __tablename__ = "community_matter_opinions"
    __table_args__ = (
        one_of("vote", VOTES),
        one_of("channel", CONSULT_MODES),
        UniqueConstraint("matter_id", "participant", name="uq_community_matter_opinions_voter"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("community_matters.id", ondelete="CASCADE"))
    participant: Mapped[str] = mapped_column(String(100))
    """A resident or household (e.g. 3栋2单元501)."""
    vote: Mapped[str] = mapped_column(String(8))
    opinion: Mapped[str] = mapped_column(Text, server_default="")
    channel: Mapped[str] = mapped_column(String(8))
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Rating(CommunityScoped, Base):
    """A resident's rating of the result (大众评议), one per participant."""

    __tablename__ = "community_matter_ratings"
    __table_args__ = (
        one_of("rating", SATISFACTION),
        UniqueConstraint("matter_id", "participant", name="uq_community_matter_ratings_rater"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    matter_id: Mapped[int] = mapped_column(ForeignKey("community_matters.id", ondelete="CASCADE"))
    participant: Mapped[str] = mapped_column(String(100))
    rating: Mapped[str] = mapped_column(String(12))
    comment: Mapped[str] = mapped_column(Text, server_default="")
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
