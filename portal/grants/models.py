"""A grant and its allocations.

Amounts are integers of minutes (core-minutes or GPU-minutes), the unit Slurm's
``GrpTRESMins`` counts in, so no rounding happens between the portal and Slurm.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, CheckConstraint, Float, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import User, enum_column
from portal.projects.models import Project
from portal.sites.models import HoursOf, Partition, ResourceKind, Site


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

    awarded_hours = HoursOf("awarded_minutes")


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


class SiteSyncState(db.Model):
    """One row per site: what the reconciler knows of it, and the row it locks while it works.

    Only a reconciler holding the lock writes here; web requests never do (they add
    :class:`PendingChange` rows instead), so a request never waits for a sync in progress.
    """

    __tablename__ = "slurm_site_state"

    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), primary_key=True)
    last_run_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)  # failed runs in a row
    next_attempt_at: Mapped[datetime | None]  # retry with backoff after a failure
    last_full_at: Mapped[datetime | None]  # last full pass (drift is found there)
    drift_found: Mapped[int | None]  # things under the top account the portal did not make, at that pass
    # End of the last ingested sacct window; the next one starts here minus the overlap.
    ingested_until: Mapped[datetime | None]

    site: Mapped[Site] = relationship()


class PendingChange(db.Model):
    """A committed change Slurm has still to learn of: one project of a site, or the whole site.

    Written in the same transaction as the change itself, so the mark stands or falls with
    it; removed by the reconciler run that applied it.
    """

    __tablename__ = "slurm_pending_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[int | None] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))  # None: whole site
    marked_at: Mapped[datetime] = mapped_column(server_default=func.now())


class SyncRun(db.Model):
    __tablename__ = "slurm_sync_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    dry_run: Mapped[bool] = mapped_column(default=False)
    succeeded: Mapped[bool] = mapped_column(default=False)
    error: Mapped[str | None] = mapped_column(Text)
    sacctmgr_calls: Mapped[int] = mapped_column(default=0)

    actions: Mapped[list[SyncAction]] = relationship(back_populates="run", cascade="all, delete-orphan",
                                                     order_by="SyncAction.id")


class SyncAction(db.Model):
    """One sacctmgr command of a run, as planned (and applied unless the run was a dry run)."""

    __tablename__ = "slurm_sync_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("slurm_sync_runs.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(32))  # add_account, modify_account, add_user, ...
    command: Mapped[str] = mapped_column(Text)

    run: Mapped[SyncRun] = relationship(back_populates="actions")


class GrantAlert(db.Model):
    """A usage alert already sent: each threshold once per grant and resource."""

    __tablename__ = "grant_alerts"
    __table_args__ = (UniqueConstraint("grant_id", "resource_kind", "threshold"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    resource_kind: Mapped[ResourceKind] = mapped_column(enum_column(ResourceKind, "resource_kind"))
    threshold: Mapped[int]  # percent
    sent_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RequestStatus(enum.Enum):
    OPEN = "open"
    APPROVED = "approved"
    REFUSED = "refused"


class GrantRequest(db.Model):
    """A PI asks for more time (a top-up) and/or a later end (an extension)."""

    __tablename__ = "grant_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    partition_id: Mapped[int | None] = mapped_column(ForeignKey("partitions.id", ondelete="CASCADE"))
    extra_minutes: Mapped[int] = mapped_column(BigInteger, default=0)
    new_end_date: Mapped[date | None]
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[RequestStatus] = mapped_column(enum_column(RequestStatus, "grant_request_status"),
                                                  default=RequestStatus.OPEN)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    grant: Mapped[Grant] = relationship()
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])


class FinalReport(db.Model):
    __tablename__ = "grant_final_reports"

    id: Mapped[int] = mapped_column(primary_key=True)
    grant_id: Mapped[int] = mapped_column(ForeignKey("grants.id", ondelete="CASCADE"), unique=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class JobUsage(db.Model):
    __tablename__ = "job_usage"
    __table_args__ = (UniqueConstraint("site_id", "job_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    job_id: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(32), index=True)
    user: Mapped[str] = mapped_column(String(32))
    partition: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32))
    submit_time: Mapped[datetime | None]
    start_time: Mapped[datetime | None]
    end_time: Mapped[datetime | None]
    elapsed_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    alloc_cpus: Mapped[int] = mapped_column(default=0)
    cpu_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    gpu_seconds: Mapped[int] = mapped_column(BigInteger, default=0)
    allocation_id: Mapped[int | None] = mapped_column(
        ForeignKey("grant_allocations.id", ondelete="SET NULL"), index=True)
    ingested_at: Mapped[datetime] = mapped_column(server_default=func.now())
