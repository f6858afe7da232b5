"""Calls for proposals and the access modes they belong to.

Amounts are integer minutes (core-minutes on CPU partitions, GPU-minutes on GPU partitions),
as in :mod:`portal.grants`, so an award copies them without rounding. Datetimes are naive UTC.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import enum_column
from portal.sites.models import HoursOf, Partition


class ReviewWorkflow(enum.Enum):
    TECHNICAL = "technical"  # admissibility + technical assessment, then a decision
    FULL = "full"  # + scientific peer review, right to reply and committee ranking

    @property
    def label(self):
        return {ReviewWorkflow.TECHNICAL: _l("Technical assessment only"),
                ReviewWorkflow.FULL: _l("Technical assessment, peer review and committee")}[self]


class Track(enum.Enum):
    SCIENTIFIC = "scientific"
    INDUSTRY = "industry"
    PUBLIC_ADMINISTRATION = "public_administration"

    @property
    def label(self):
        return {Track.SCIENTIFIC: _l("Scientific"), Track.INDUSTRY: _l("Industry"),
                Track.PUBLIC_ADMINISTRATION: _l("Public administration")}[self]


class AccessMode(db.Model):
    """Benchmark, Development, Regular...: seeded by :func:`portal.calls.operations.seed_access_modes`."""

    __tablename__ = "access_modes"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    review_workflow: Mapped[ReviewWorkflow] = mapped_column(enum_column(ReviewWorkflow, "review_workflow"))
    typical_months: Mapped[int]
    description: Mapped[str] = mapped_column(Text, default="")


class Call(db.Model):
    __tablename__ = "calls"
    __table_args__ = (
        CheckConstraint("closes_at IS NULL OR closes_at > opens_at", name="closes_after_opening"),
        CheckConstraint("allocation_end > allocation_start", name="allocation_ends_after_start"),
        CheckConstraint("min_reviewers >= 0", name="min_reviewers_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(20), unique=True)  # prefix of the projects it awards
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    access_mode_id: Mapped[int] = mapped_column(ForeignKey("access_modes.id", ondelete="RESTRICT"), index=True)
    review_workflow: Mapped[ReviewWorkflow] = mapped_column(enum_column(ReviewWorkflow, "review_workflow"))
    tracks: Mapped[str] = mapped_column(String(200))  # comma-separated Track values
    eligible_countries: Mapped[str] = mapped_column(String(500), default="")  # ISO codes; empty: any
    opens_at: Mapped[datetime]
    closes_at: Mapped[datetime | None]  # the cut-off; None: a continuous call
    allocation_start: Mapped[date]
    allocation_end: Mapped[date]
    min_reviewers: Mapped[int] = mapped_column(default=2)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    access_mode: Mapped[AccessMode] = relationship(lazy="joined")
    offers: Mapped[list[CallPartition]] = relationship(back_populates="call", cascade="all, delete-orphan",
                                                       lazy="selectin", order_by="CallPartition.id")

    @property
    def track_list(self) -> list[Track]:
        return [Track(value) for value in self.tracks.split(",") if value]

    @property
    def country_list(self) -> list[str]:
        return [c for c in self.eligible_countries.split(",") if c]

    @property
    def is_continuous(self) -> bool:
        return self.closes_at is None

    def accepts_submissions(self, now: datetime) -> bool:
        return self.opens_at <= now and (self.closes_at is None or now < self.closes_at)

    def offer_for(self, partition_id: int) -> CallPartition | None:
        return next((o for o in self.offers if o.partition_id == partition_id), None)

    @property
    def needs_peer_review(self) -> bool:
        return self.review_workflow is ReviewWorkflow.FULL


class CallPartition(db.Model):
    """A partition on offer in a call: the capacity offered and the most one proposal may ask for."""

    __tablename__ = "call_partitions"
    __table_args__ = (
        UniqueConstraint("call_id", "partition_id"),
        CheckConstraint("offered_minutes > 0 AND max_request_minutes > 0", name="positive_amounts"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    partition_id: Mapped[int] = mapped_column(ForeignKey("partitions.id", ondelete="RESTRICT"), index=True)
    offered_minutes: Mapped[int] = mapped_column(BigInteger)
    max_request_minutes: Mapped[int] = mapped_column(BigInteger)

    call: Mapped[Call] = relationship(back_populates="offers")
    partition: Mapped[Partition] = relationship(lazy="joined")

    offered_hours = HoursOf("offered_minutes")
    max_request_hours = HoursOf("max_request_minutes")
