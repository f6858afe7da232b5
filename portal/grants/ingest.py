"""Usage ingestion: Slurm accounting (sacct) into the JobUsage ledger.

Incremental: each run reads from the last ingested moment minus an overlap window (jobs
reach accounting late, and running jobs must be read again once they end). Idempotent:
rows are upserted on (site, job id), so reading a window twice never counts a job twice.
A row already in a final state is never overwritten by a non-final one (right after a job
ends, sacct can briefly show it as PENDING with no CPUs).

Charging rule across period boundaries: a job is charged to the allocation (its account's
project, its partition) whose grant period contains the job's *start* (for a job that never
started: its end, else its submission). A job that starts on the last day of a grant and runs
into the next one is charged whole to the first: Slurm's own limit counted it there too.
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import select, text

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation
from portal.grants.reconcile import site_state
from portal.grants.usage import JobUsage
from portal.projects.models import Project
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
    """Finds the allocation a job is charged to; loads every grant of the site once."""

    def __init__(self, site: Site):
        self.project_of = dict(db.session.execute(
            select(Project.slurm_account, Project.id).where(Project.slurm_account.is_not(None))).all())
        rows = db.session.execute(
            select(Grant.project_id, Partition.name, Grant.start_date, Grant.end_date, GrantAllocation.id)
            .join(GrantAllocation, GrantAllocation.grant_id == Grant.id)
            .join(Partition, Partition.id == GrantAllocation.partition_id)
            .where(Partition.site_id == site.id).order_by(Grant.start_date)).all()
        self.periods: dict[tuple[int, str], list[tuple[date, date, int]]] = {}
        for project_id, partition, start, end, allocation_id in rows:
            self.periods.setdefault((project_id, partition), []).append((start, end, allocation_id))
        self.starts = {key: [p[0] for p in periods] for key, periods in self.periods.items()}

    def allocation_for(self, record: UsageRecord) -> int | None:
        project_id = self.project_of.get(record.account)
        moment = record.start_time or record.end_time or record.submit_time
        if project_id is None or moment is None:
            return None
        key = (project_id, record.partition)
        periods = self.periods.get(key)
        if not periods:
            return None
        day = moment.astimezone(timezone.utc).date() if moment.tzinfo else moment.date()
        index = bisect_right(self.starts[key], day) - 1
        if index >= 0 and periods[index][0] <= day < periods[index][1]:
            return periods[index][2]
        return None


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is None:
        return moment
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


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

    def flush_batch() -> None:
        if latest:
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
    accounts = [a for a in db.session.scalars(
        select(Project.slurm_account).join(Grant, Grant.project_id == Project.id)
        .join(GrantAllocation).join(Partition).where(Partition.site_id == site.id,
                                                     Project.slurm_account.is_not(None)).distinct())]
    records = scheduler.usage(start, now, accounts=sorted(accounts))
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
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
