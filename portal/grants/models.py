"""A grant and its allocations.

Amounts are integers of minutes (core-minutes or GPU-minutes), the unit Slurm's
``GrpTRESMins`` counts in, so no rounding happens between the portal and Slurm.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import enum_column
from portal.projects.models import Project
from portal.sites.models import Partition, ResourceKind


class GrantStatus(enum.Enum):
    ACTIVE = "active"  # jobs may run between start and end
    SUSPENDED = "suspended"  # staff stopped new jobs (Slurm: GrpSubmitJobs=0)
    EXPIRED = "expired"  # past its end: no new jobs, final report due
    CLOSED = "closed"  # final report received, nothing left to do


class Grant(db.Model):
    __tablename__ = "grants"
    __table_args__ = (CheckConstraint("end_date > start_date", name="ends_after_start"),
                      # The grants list's default order (most at risk first) read straight off an index.
                      Index("ix_grants_risk_magnitude_id", "risk_magnitude", "id"),
                      Index("ix_grants_end_date_id", "end_date", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(300))  # usually the call and the proposal's title
    # Slurm parent account the project's account sits under (a call or funding pool);
    # None: directly under the portal's top account. Validated as a Slurm account name.
    funding_pool: Mapped[str | None] = mapped_column(String(32))
    start_date: Mapped[date]
    end_date: Mapped[date]  # last day jobs may start is the day before
    status: Mapped[GrantStatus] = mapped_column(enum_column(GrantStatus, "grant_status"), default=GrantStatus.ACTIVE)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Percent of the award used in the grant's most- and least-used pool, kept by
    # portal.grants.summary.refresh_usage_summaries whenever usage or awards change, so that
    # lists sort thousands of grants by risk in SQL.
    usage_percent_high: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    usage_percent_low: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    # How far the worst pool is off a steady pace on the day of the last refresh, in percent
    # of its award (+ over-use, - under-use), and its size; kept with the summaries above and
    # recomputed for every grant by the reconciler's hourly pass, since the pace moves daily.
    risk_percent: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    risk_magnitude: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")

    project: Mapped[Project] = relationship()
    allocations: Mapped[list[GrantAllocation]] = relationship(
        back_populates="grant", cascade="all, delete-orphan", lazy="selectin")

    def is_active_on(self, day: date) -> bool:
        return self.status is GrantStatus.ACTIVE and self.start_date <= day < self.end_date

    def allocation_for(self, partition: Partition) -> GrantAllocation | None:
        return next((a for a in self.allocations if a.partition_id == partition.id), None)


class GrantAllocation(db.Model):
    """Time on one partition: core-minutes on a CPU partition, GPU-minutes on a GPU partition."""

    __tablename__ = "grant_allocations"
    __table_args__ = (UniqueConstraint("grant_id", "partition_id"),
                      CheckConstraint("awarded_minutes >= 0", name="awarded_not_negative"))

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    partition_id: Mapped[int] = mapped_column(ForeignKey("partitions.id", ondelete="RESTRICT"), index=True)
    # Copied from the partition at award time: how this time is counted never changes under a grant.
    resource_kind: Mapped[ResourceKind] = mapped_column(enum_column(ResourceKind, "resource_kind"))
    awarded_minutes: Mapped[int] = mapped_column(BigInteger)
    # The Slurm sub-account that holds this grant's time on the partition's pool (shared by
    # the grant's allocations on partitions of one pool); named at the first reconcile.
    slurm_account: Mapped[str | None] = mapped_column(String(32), index=True)
    # Core- or GPU-seconds (by resource_kind) charged to this allocation in the usage ledger,
    # as of the last refresh (every ingestion); the ledger rows stay the truth.
    used_seconds: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    grant: Mapped[Grant] = relationship(back_populates="allocations")
    partition: Mapped[Partition] = relationship(lazy="joined")

    @property
    def awarded_hours(self) -> float:
        return self.awarded_minutes / 60


class FacilityTotalChange(db.Model):
    """One change to a facility-wide total: the grant count, or the awarded minutes or used
    seconds of one resource kind (``counter``: ``grants``, ``cpu.awarded_minutes``,
    ``gpu.used_seconds``...). A total is the sum of its rows.

    Database triggers on ``grants`` and ``grant_allocations`` (migration f3a7c9e1b5d2) add the
    rows, so no writer can forget them; the staff grants list then reads a handful of rows
    instead of summing 20,000 allocations on every view. Writers only ever insert (no row
    lock two transactions could wait on in opposite orders), and
    :func:`portal.grants.summary.fold_facility_totals` folds the rows into one per counter.
    """

    __tablename__ = "facility_total_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    counter: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
