"""The usage ledger: one row per Slurm job, read from Slurm accounting.

Rows are keyed by (site, Slurm job id) so ingesting the same window twice never counts a
job twice; each row is charged to at most one grant allocation.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, UniqueConstraint, func, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.extensions import db
from portal.grants.models import GrantAllocation
from portal.sites.models import ResourceKind


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


def used_minutes(allocation: GrantAllocation) -> int:
    """Core-minutes or GPU-minutes (by the allocation's kind) charged to ``allocation``."""
    column = JobUsage.gpu_seconds if allocation.resource_kind is ResourceKind.GPU else JobUsage.cpu_seconds
    seconds = db.session.scalar(select(func.coalesce(func.sum(column), 0))
                                .where(JobUsage.allocation_id == allocation.id))
    return int(seconds) // 60


def remaining_minutes(allocation: GrantAllocation) -> int:
    return allocation.awarded_minutes - used_minutes(allocation)
