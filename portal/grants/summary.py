"""Numbers behind the grant pages: totals per resource, use per member, burn-down, forecast."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, case, delete, func, insert, select, update

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import FacilityTotalChange, Grant, GrantAllocation, JobUsage
from portal.sites.models import Partition, ResourceKind

UNITS = {ResourceKind.CPU: _l("core-hours"), ResourceKind.GPU: _l("GPU-hours")}


def _seconds_column(kind: ResourceKind):
    return JobUsage.gpu_seconds if kind is ResourceKind.GPU else JobUsage.cpu_seconds


@dataclass(frozen=True)
class ResourceTotal:
    """One pool of a grant: the time Slurm enforces as one limit on one sub-account."""
    kind: ResourceKind
    awarded: float  # hours
    used: float
    allocation_ids: tuple[int, ...]
    partitions: tuple[str, ...] = ()
    account: str | None = None  # the pool's Slurm sub-account, once named

    @property
    def label(self) -> str:
        return f"{self.unit} · {', '.join(self.partitions)}"

    @property
    def unit(self) -> str:
        return str(UNITS[self.kind])

    @property
    def remaining(self) -> float:
        return self.awarded - self.used

    @property
    def percent_used(self) -> float:
        return 100 * self.used / self.awarded if self.awarded else 0.0


def pools_of(grant: Grant) -> dict[tuple[str, ResourceKind], list[GrantAllocation]]:
    """The grant's allocations by pool (its Slurm sub-account, else the partitions' pool), in display order."""
    pools: dict[tuple[str, ResourceKind], list[GrantAllocation]] = {}
    for allocation in sorted(grant.allocations, key=lambda a: (a.resource_kind.value, a.partition.name)):
        key = (allocation.slurm_account or allocation.partition.pool_name, allocation.resource_kind)
        pools.setdefault(key, []).append(allocation)
    return pools


def resource_totals(grant: Grant) -> list[ResourceTotal]:
    """Granted, used and remaining time per pool (each a separate limit in Slurm), from the ledger."""
    totals = []
    for (_, kind), allocations in pools_of(grant).items():
        ids = tuple(a.id for a in allocations)
        seconds = db.session.scalar(select(func.coalesce(func.sum(_seconds_column(kind)), 0))
                                    .where(JobUsage.allocation_id.in_(ids)))
        totals.append(ResourceTotal(kind, sum(a.awarded_minutes for a in allocations) / 60, int(seconds) / 3600, ids,
                                    tuple(a.partition.name for a in allocations), allocations[0].slurm_account))
    return totals


def usage_by_member(grant: Grant) -> list[tuple[str, float, float, int]]:
    """(Unix user, core-hours, GPU-hours, jobs) per user, most use first."""
    ids = [a.id for a in grant.allocations]
    rows = db.session.execute(
        select(JobUsage.user, func.sum(JobUsage.cpu_seconds), func.sum(JobUsage.gpu_seconds), func.count())
        .where(JobUsage.allocation_id.in_(ids)).group_by(JobUsage.user)
        .order_by(func.sum(JobUsage.cpu_seconds).desc())).all()
    return [(user, cpu / 3600, gpu / 3600, jobs) for user, cpu, gpu, jobs in rows]


def jobs_of(grant: Grant, limit: int = 200) -> list[JobUsage]:
    ids = [a.id for a in grant.allocations]
    return list(db.session.scalars(select(JobUsage).where(JobUsage.allocation_id.in_(ids))
                                   .order_by(JobUsage.start_time.desc().nulls_last(), JobUsage.id.desc())
                                   .limit(limit)))


def _day(moment: datetime | None) -> date | None:
    return moment.date() if moment else None


def daily_use(total: ResourceTotal) -> list[tuple[date, float]]:
    """Hours used per day (by the day a job started, as it is charged), oldest first."""
    column = _seconds_column(total.kind)
    rows = db.session.execute(select(JobUsage.start_time, JobUsage.end_time, column)
                              .where(JobUsage.allocation_id.in_(total.allocation_ids))).all()
    per_day: dict[date, float] = {}
    for start, end, seconds in rows:
        day = _day(start) or _day(end)
        if day is not None:
            per_day[day] = per_day.get(day, 0.0) + seconds / 3600
    return sorted(per_day.items())


@dataclass(frozen=True)
class Forecast:
    rate_per_day: float  # hours per day so far
    exhausted_on: date | None  # at this rate, the day nothing is left (before the end)
    unused_percent: float | None  # else: what share would be left at the end


def forecast(grant: Grant, total: ResourceTotal, today: date | None = None) -> Forecast:
    """At the average rate since the grant began: when it runs out, or what is left at the end."""
    today = min(today or utcnow().date(), grant.end_date)
    days_so_far = max((today - grant.start_date).days, 1)
    rate = total.used / days_so_far
    if total.remaining <= 0:
        return Forecast(rate, today, None)
    if rate > 0:
        exhausted = today + timedelta(days=total.remaining / rate)
        if exhausted < grant.end_date:
            return Forecast(rate, exhausted, None)
    left = total.remaining - rate * (grant.end_date - today).days
    return Forecast(rate, None, 100 * max(left, 0) / total.awarded if total.awarded else None)


def steady_pace_percent(start: date, end: date, today: date) -> float:
    """Percent of an award a steady user has spent by ``today``."""
    length = max((end - start).days, 1)
    return 100 * min(max((today - start).days, 0), length) / length


def worst_gap(percents_used: Iterable[float], pace: float) -> float:
    """The pool furthest off ``pace``: its gap in percent (+ over-use, - under-use); 0 if none."""
    worst = 0.0
    for percent in percents_used:
        if abs(percent - pace) > abs(worst):
            worst = percent - pace
    return worst


def risk(grant: Grant, today: date | None = None) -> float:
    """How far the grant is off a steady pace, in percent of the award: + over-use, - under-use."""
    pace = steady_pace_percent(grant.start_date, grant.end_date, today or utcnow().date())
    return worst_gap((total.percent_used for total in resource_totals(grant)), pace)


def _pool_key(allocation_pool: str | None, partition_pool: str | None, partition_name: str) -> str:
    # The same grouping as resource_totals: the pool's Slurm sub-account, else the partition's pool.
    return allocation_pool or partition_pool or partition_name


def refresh_usage_summaries(grant_ids: Iterable[int] | None = None, today: date | None = None) -> int:
    """Recompute, from the usage ledger, each allocation's used seconds and each grant's most- and
    least-used pool (percent of its award) and its risk on ``today`` (:func:`risk`, from the
    same numbers). ``None``: every grant. Returns how many grants.

    Called by every ingestion (for the grants whose usage it touched), by awards and top-ups,
    and by the reconciler's full pass, so lists can sort and show thousands of grants without
    reading the ledger.
    """
    db.session.flush()  # the expiry at the end must not drop anything not yet written
    today = today or utcnow().date()
    allocations, jobs, grants = GrantAllocation.__table__, JobUsage.__table__, Grant.__table__
    chunks = [None] if grant_ids is None else [sorted(set(grant_ids))[i:i + 500]
                                               for i in range(0, len(set(grant_ids)), 500)]
    refreshed = 0
    for chunk in chunks:
        seconds = (select(func.coalesce(func.sum(case((allocations.c.resource_kind == ResourceKind.GPU,
                                                       jobs.c.gpu_seconds), else_=jobs.c.cpu_seconds)), 0))
                   .where(jobs.c.allocation_id == allocations.c.id).scalar_subquery())
        statement = update(allocations).values(used_seconds=seconds)
        rows_query = (select(allocations.c.grant_id, grants.c.start_date, grants.c.end_date, allocations.c.slurm_account,
                             Partition.pool, Partition.name, allocations.c.resource_kind, allocations.c.awarded_minutes,
                             allocations.c.used_seconds)
                      .join(Partition, Partition.id == allocations.c.partition_id)
                      .join(grants, grants.c.id == allocations.c.grant_id))
        if chunk is not None:
            statement = statement.where(allocations.c.grant_id.in_(chunk))
            rows_query = rows_query.where(allocations.c.grant_id.in_(chunk))
        db.session.execute(statement, execution_options={"synchronize_session": False})
        pools: dict[int, dict[tuple[str, ResourceKind], list[int]]] = {}
        paces: dict[int, float] = {}
        for grant_id, start, end, account, pool, name, kind, awarded, used in db.session.execute(rows_query):
            totals = pools.setdefault(grant_id, {}).setdefault((_pool_key(account, pool, name), kind), [0, 0])
            totals[0] += awarded
            totals[1] += used
            paces[grant_id] = steady_pace_percent(start, end, today)
        values = []
        for grant_id, by_pool in pools.items():
            percents = [100 * used / 60 / awarded if awarded else 0.0 for awarded, used in by_pool.values()]
            gap = worst_gap(percents, paces[grant_id])
            values.append({"grant": grant_id, "high": max(percents), "low": min(percents), "risk": gap,
                           "magnitude": abs(gap)})
        if values:
            db.session.execute(update(grants).where(grants.c.id == bindparam("grant"))
                               .values(usage_percent_high=bindparam("high"), usage_percent_low=bindparam("low"),
                                       risk_percent=bindparam("risk"), risk_magnitude=bindparam("magnitude")),
                               values)
        refreshed += len(values)
    fold_facility_totals()
    db.session.expire_all()
    return refreshed


def facility_totals() -> dict[str, int]:
    """The whole facility's grant count and each kind's awarded minutes and used seconds
    (``grants``, ``cpu.awarded_minutes``, ``gpu.used_seconds``...), kept by triggers."""
    change = FacilityTotalChange
    return {counter: int(amount) for counter, amount in
            db.session.execute(select(change.counter, func.sum(change.amount)).group_by(change.counter))}


def fold_facility_totals() -> int:
    """Fold the facility totals' change rows into one row per counter; returns how many
    rows were folded (0: nothing to do).

    Rows another transaction is folding are skipped (``SKIP LOCKED``), and only the rows
    read here are deleted, by id: a change committed meanwhile is never dropped unsummed.
    """
    change = FacilityTotalChange
    rows = db.session.execute(select(change.id, change.counter, change.amount)
                              .with_for_update(skip_locked=True)).all()
    sums: dict[str, int] = {}
    for _, counter, amount in rows:
        sums[counter] = sums.get(counter, 0) + amount
    if len(rows) <= len(sums):
        return 0
    ids = [row_id for row_id, _, _ in rows]
    for start in range(0, len(ids), 1000):
        db.session.execute(delete(change).where(change.id.in_(ids[start:start + 1000])))
    db.session.execute(insert(change), [{"counter": c, "amount": a} for c, a in sorted(sums.items())])
    return len(rows)


def allocation_of(grant: Grant, allocation_id: int) -> GrantAllocation | None:
    return next((a for a in grant.allocations if a.id == allocation_id), None)
