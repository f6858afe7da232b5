"""The usage ledger: one row per Slurm job, read from Slurm accounting.

Rows are keyed by (site, Slurm job id) so ingesting the same window twice never counts a
job twice; each row is charged to at most one grant allocation.
"""
from __future__ import annotations

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from portal.extensions import db
from portal.grants.models import GrantAllocation, JobUsage
from portal.sites.models import ResourceKind


def used_minutes(allocation: GrantAllocation) -> int:
    """Core-minutes or GPU-minutes (by the allocation's kind) charged to ``allocation``."""
    column = JobUsage.gpu_seconds if allocation.resource_kind is ResourceKind.GPU else JobUsage.cpu_seconds
    seconds = db.session.scalar(select(func.coalesce(func.sum(column), 0))
                                .where(JobUsage.allocation_id == allocation.id))
    return int(seconds) // 60


def remaining_minutes(allocation: GrantAllocation) -> int:
    return allocation.awarded_minutes - used_minutes(allocation)


@dataclass(frozen=True)
class PoolBalance:
    """What a grant's pool still allows a new job, in core- or GPU-minutes.

    ``left`` is Slurm's own view when it answered (the limit minus what finished and running
    jobs used and may still use, as `scontrol show assoc_mgr` reports), else the portal's
    ledger as of the last ingestion; ``queued`` is the largest cost of the pool's jobs still
    waiting in the queue, which will be spent before a new job's.
    """
    left: int
    queued: int
    from_slurm: bool
    note: str | None = None

    @property
    def remaining(self) -> int:
        return self.left - self.queued


def pool_balance(allocation: GrantAllocation, scheduler) -> PoolBalance:
    from portal.slurm.errors import SchedulerError
    from portal.slurm.types import JobState

    tres = allocation.resource_kind.tres
    account = allocation.slurm_account
    try:
        usage = scheduler.account_usage([account]).get(account) if account else None
        if usage is not None and usage.left(tres) is not None:
            queued = sum(job.tres.get(tres, 0) * (job.time_limit_minutes or 0)
                         for job in scheduler.jobs(account=account) if job.state is JobState.PENDING)
            return PoolBalance(usage.left(tres), queued, True)
        note = _l("Slurm does not enforce this pool yet (changes waiting for Slurm); the portal's ledger is used.")
    except SchedulerError as exc:
        note = _l("Slurm did not answer (%(error)s); the portal's ledger as of the last ingestion is used.",
                  error=str(exc)[:200])
    return PoolBalance(remaining_minutes(allocation), 0, False, str(note))
