"""What the portal remembers about its work on Slurm and around grants.

Sync state per site (pending changes, the lock), each reconciliation run and its actions,
the ingestion cursor, alerts already sent, extension/top-up requests and final reports.
"""
from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.grants.models import Grant
from portal.identity.models import User, enum_column
from portal.sites.models import ResourceKind, Site


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
