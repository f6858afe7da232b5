"""Usage ingestion: Slurm accounting (sacct) into the JobUsage ledger.

Incremental: each run reads from the last ingested moment minus an overlap window (jobs
reach accounting late, and running jobs must be read again once they end). Idempotent:
rows are upserted on (site, job id), so reading a window twice never counts a job twice.
A row already in a final state is never overwritten by a non-final one (right after a job
ends, sacct can briefly show it as PENDING with no CPUs).

Charging rule: a job is charged to the allocation whose Slurm sub-account it ran under (one
sub-account per grant and pool, see :mod:`portal.grants.reconcile`), exactly as Slurm counted
it against that pool's limit: core-seconds (``CPUTimeRAW``) on a CPU pool, GPU-seconds on a
GPU pool. Within a pool of several partitions, the allocation on the job's partition (else
the pool's first). A job that starts near a grant's end and runs past it stays charged to the
grant it was submitted under, as in Slurm. Jobs under accounts the portal did not make are
stored uncharged.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation, JobUsage
from portal.grants.reconcile import site_state
from portal.grants.summary import refresh_usage_summaries
from portal.sites.models import Partition, Site
from portal.slurm.types import JobState, UsageRecord

OVERLAP = timedelta(hours=2)
BATCH = 2000
FINAL_STATES = [s.value for s in JobState if s.is_final]
# Inlined (our own enum values, no user input): executemany cannot expand IN-lists.
_FINALS_SQL = ", ".join(f"'{state}'" for state in FINAL_STATES)
_KEEP_FINAL = text(f"job_usage.state NOT IN ({_FINALS_SQL}) OR excluded.state IN ({_FINALS_SQL})")


@dataclass
class IngestResult:
    records: int
    charged: int
    window: tuple[datetime, datetime] | None = None


class _Charger:
    """Finds the allocation a job is charged to; loads the site's pool accounts once."""

    def __init__(self, site: Site):
        rows = db.session.execute(
            select(GrantAllocation.slurm_account, Partition.name, GrantAllocation.id)
            .join(Partition, Partition.id == GrantAllocation.partition_id)
            .where(Partition.site_id == site.id, GrantAllocation.slurm_account.is_not(None))
            .order_by(GrantAllocation.id)).all()
        self.pools: dict[str, dict[str, int]] = {}
        for account, partition, allocation_id in rows:
            self.pools.setdefault(account, {})[partition] = allocation_id

    def allocation_for(self, record: UsageRecord) -> int | None:
        pool = self.pools.get(record.account)
        if not pool:
            return None
        return pool.get(record.partition, next(iter(pool.values())))

    @property
    def accounts(self) -> list[str]:
        return sorted(self.pools)


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(UTC).replace(tzinfo=None)


def _row(site_id: int, record: UsageRecord, allocation_id: int | None) -> dict:
    return {"site_id": site_id, "job_id": record.job_id, "account": record.account[:32], "user": record.user[:32],
            "partition": record.partition[:64], "state": record.state.value,
            "submit_time": _naive_utc(record.submit_time), "start_time": _naive_utc(record.start_time),
            "end_time": _naive_utc(record.end_time), "elapsed_seconds": record.elapsed_seconds,
            "alloc_cpus": record.alloc_cpus, "cpu_seconds": record.cpu_seconds, "gpu_seconds": record.gpu_seconds,
            "allocation_id": allocation_id, "ingested_at": utcnow().replace(tzinfo=None)}


def _upsert(rows: list[dict]) -> None:
    dialect = db.session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(JobUsage)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[JobUsage.site_id, JobUsage.job_id],
        set_={column: getattr(new, column) for column in rows[0] if column not in ("site_id", "job_id")},
        where=_KEEP_FINAL)
    # One compiled statement, many parameter sets: the driver batches them.
    db.session.execute(statement, rows)


def ingest_records(site: Site, records: Iterable[UsageRecord],
                   progress: Callable[[int], None] | None = None) -> IngestResult:
    """Upsert job records into the ledger, charging each to its allocation; flushes."""
    charger = _Charger(site)
    latest: dict[str, dict] = {}  # one row per job id per statement (Slurm repeats requeued jobs)
    total = charged = 0
    touched: set[int] = set()  # allocations whose used time may change: the rows' old and new ones

    def flush_batch() -> None:
        if latest:
            touched.update(row["allocation_id"] for row in latest.values() if row["allocation_id"] is not None)
            touched.update(db.session.scalars(select(JobUsage.allocation_id).where(
                JobUsage.site_id == site.id, JobUsage.job_id.in_(list(latest)), JobUsage.allocation_id.is_not(None))))
            _upsert(list(latest.values()))
            if progress:
                progress(len(latest))
            latest.clear()

    for record in records:
        allocation_id = charger.allocation_for(record)
        charged += allocation_id is not None
        total += 1
        latest[record.job_id] = _row(site.id, record, allocation_id)
        if len(latest) >= BATCH:
            flush_batch()
    flush_batch()
    if touched:
        refresh_usage_summaries(db.session.scalars(select(GrantAllocation.grant_id).where(
            GrantAllocation.id.in_(touched)).distinct()).all())
    db.session.expire_all()
    return IngestResult(total, charged)


def ingest_site(site: Site, scheduler=None, *, now: datetime | None = None, since: datetime | None = None,
                progress: Callable[[int], None] | None = None,
                on_records: Callable[[Sequence[UsageRecord]], None] | None = None) -> IngestResult:
    """Read the next window of ``site``'s accounting into the ledger; flushes."""
    if scheduler is None:
        from portal.sites.operations import scheduler_for

        scheduler = scheduler_for(site)
    now = now or utcnow()
    state = site_state(site)
    start = since or ((state.ingested_until - OVERLAP) if state.ingested_until else _first_grant_start(site))
    records = scheduler.usage(start, now, accounts=_Charger(site).accounts)
    if on_records:
        on_records(records)
    result = ingest_records(site, records, progress)
    result.window = (start, now)
    state = site_state(site)
    state.ingested_until = _naive_utc(now)
    db.session.flush()
    return result


def _first_grant_start(site: Site) -> datetime:
    first = db.session.scalar(select(Grant.start_date).join(GrantAllocation).join(Partition)
                              .where(Partition.site_id == site.id).order_by(Grant.start_date).limit(1))
    day = first or utcnow().date()
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
