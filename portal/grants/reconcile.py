"""Make Slurm enforce the grants: desired state from the database, diff, apply, record.

Runs after every change that affects Slurm (see :mod:`portal.grants.triggers`) and from
``flask slurm sync``. A site whose Slurm cannot be reached keeps its ``pending`` flag, and
the next run converges: every run starts from what Slurm has, never from what was done.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import date

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.audit.operations import record
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation
from portal.grants.records import SiteSyncState, SyncAction, SyncRun
from portal.slurm.accounting import AccountSpec, ActualState, Command, SlurmState, actual_state, plan
from portal.projects.models import Project
from portal.sites.models import Partition, Site
from portal.sites.operations import ABSENT
from portal.slurm import names
from portal.slurm.errors import SchedulerError

log = logging.getLogger(__name__)


class NotConverged(SchedulerError):
    """Slurm accepted the commands but still differs from the desired state."""


def top_account() -> str:
    return names.validate_account_name(current_app.config.get("SLURM_TOP_ACCOUNT", "portal"))


def account_name_for(project: Project) -> str:
    """The project's Slurm account: the stored one, else one derived from its code."""
    if project.slurm_account:
        return names.validate_account_name(project.slurm_account)
    derived = re.sub(r"[^a-z0-9_]", "_", project.code.lower())
    if not derived[:1].isalpha():
        derived = "p" + derived
    return names.validate_account_name(derived[:32])


def site_state(site: Site, *, lock: bool = False) -> SiteSyncState | None:
    """The site's sync row; with ``lock``, locked for this transaction or None if another holds it."""
    state = db.session.get(SiteSyncState, site.id)
    if state is None:
        state = SiteSyncState(site_id=site.id)
        db.session.add(state)
        db.session.flush()
    if not lock:
        return state
    # Two workers never reconcile one site at once: the second skips (the first sees its change).
    return db.session.scalar(select(SiteSyncState).where(SiteSyncState.site_id == site.id)
                             .with_for_update(skip_locked=True).execution_options(populate_existing=True))


def _grants_on(site: Site) -> list[tuple[Grant, list[GrantAllocation]]]:
    rows = db.session.scalars(select(GrantAllocation).join(GrantAllocation.partition)
                              .where(Partition.site_id == site.id)
                              .options(selectinload(GrantAllocation.grant).selectinload(Grant.project))
                              .order_by(GrantAllocation.grant_id, GrantAllocation.id)).all()
    by_grant: dict[int, tuple[Grant, list[GrantAllocation]]] = {}
    for allocation in rows:
        by_grant.setdefault(allocation.grant_id, (allocation.grant, []))[1].append(allocation)
    return list(by_grant.values())


def _pool_suffix(pool: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", pool.lower())[:20] or "pool"


def name_pool_accounts(site: Site) -> None:
    """Give every allocation on ``site`` the Slurm sub-account of its grant and pool; flushes.

    ``<project account>_<pool>`` (e.g. ``ehpc_reg_001_gpu``), with the grant's id appended
    when an earlier grant of the project already holds that name: each grant period has
    counters of its own, so time left over from an ended grant never carries into the next.
    Names are stored once and never change.
    """
    grants = _grants_on(site)
    if all(a.slurm_account for _, allocations in grants for a in allocations):
        return
    taken = set(db.session.scalars(select(GrantAllocation.slurm_account).where(GrantAllocation.slurm_account.is_not(None))))
    taken |= set(db.session.scalars(select(Project.slurm_account).where(Project.slurm_account.is_not(None))))
    for grant, allocations in sorted(grants, key=lambda item: (item[0].start_date, item[0].id)):
        project = grant.project
        if not project.slurm_account:
            project.slurm_account = account_name_for(project)
            taken.add(project.slurm_account)
        by_pool: dict[str, list[GrantAllocation]] = {}
        for allocation in allocations:
            by_pool.setdefault(allocation.partition.pool_name, []).append(allocation)
        for pool, members in by_pool.items():
            name = next((a.slurm_account for a in members if a.slurm_account), None)
            if name is None:
                suffix = _pool_suffix(pool)
                name = f"{project.slurm_account[:31 - len(suffix)]}_{suffix}"
                if name in taken:
                    suffix = f"{suffix}_{grant.id}"
                    name = f"{project.slurm_account[:31 - len(suffix)]}_{suffix}"
                names.validate_account_name(name)
                taken.add(name)
            for allocation in members:
                allocation.slurm_account = name
    db.session.flush()


def desired_state(site: Site, today: date | None = None) -> SlurmState:
    """What Slurm on ``site`` should have, from the database alone (names pool accounts first).

    Under the funding pool (or the top account) one account per project, without limits;
    under it one sub-account per grant and pool, limited to exactly the minutes awarded on
    that pool (``GrpTRESMins`` of the pool's kind: core-minutes on CPU pools, GPU-minutes on
    GPU pools, nothing else); each member with a Unix name has an association with that
    sub-account on each partition of the pool, and on no other, so a pool's time can be spent
    on its partitions only. A grant that is not active today gets ``GrpSubmitJobs=0`` (no
    new jobs) and ``GrpJobs=0`` (queued jobs do not start).
    """
    today = today or utcnow().date()
    name_pool_accounts(site)
    top = top_account()
    state = SlurmState()
    state.add_account(AccountSpec.make(top, "root"))
    live = [p for p in site.partitions if p.state != ABSENT]
    per_project: dict[int, dict] = {}
    for grant, allocations in _grants_on(site):
        entry = per_project.setdefault(grant.project_id, {"project": grant.project, "pool": None, "subs": []})
        if grant.funding_pool and (entry["pool"] is None or grant.is_active_on(today)):
            entry["pool"] = names.validate_account_name(grant.funding_pool)
        closed = None if grant.is_active_on(today) else 0
        groups: dict[str, list[GrantAllocation]] = {}
        for allocation in allocations:
            groups.setdefault(allocation.slurm_account, []).append(allocation)
        for account, members in groups.items():
            tres: dict[str, int] = {}
            for allocation in members:
                key = allocation.resource_kind.tres
                tres[key] = tres.get(key, 0) + allocation.awarded_minutes
            pools = {a.partition.pool_name for a in members}
            partitions = sorted(names.validate_partition_name(p.name) for p in live if p.pool_name in pools)
            entry["subs"].append((AccountSpec.make(account, "", tres, closed, closed), partitions))
    for entry in per_project.values():
        parent = entry["pool"] or top
        if parent not in state.accounts:
            state.add_account(AccountSpec.make(parent, top))
        project_account = account_name_for(entry["project"])
        state.add_account(AccountSpec.make(project_account, parent))
        unix_names = [names.validate_user_name(m.user.unix_username) for m in entry["project"].memberships
                      if m.user.unix_username]
        for spec, partitions in entry["subs"]:
            state.add_account(replace(spec, parent=project_account))
            state.users |= {(spec.name, user, partition) for user in unix_names for partition in partitions}
    return state


def read_actual(site: Site, scheduler) -> ActualState:
    return actual_state(scheduler.associations(cluster=site.slurm_cluster), site.slurm_cluster, top_account())


@dataclass
class SyncOutcome:
    run: SyncRun | None  # None: another worker holds the site
    commands: list[Command]


def _scheduler(site: Site, scheduler):
    if scheduler is not None:
        return scheduler
    from portal.sites.operations import scheduler_for

    return scheduler_for(site)


def reconcile_site(site: Site, scheduler=None, *, dry_run: bool = False, remove_drift: bool = False,
                   today: date | None = None) -> SyncOutcome:
    """Bring Slurm on ``site`` to the desired state; record the run. Commits (it talks to Slurm).

    Raises nothing for Slurm failures: they are kept on the run and the site stays pending.
    """
    scheduler = _scheduler(site, scheduler)
    db.session.commit()  # the lock's transaction must not carry the caller's half-done work
    state = site_state(site, lock=True)
    if state is None:
        db.session.rollback()
        return SyncOutcome(None, [])
    db.session.info["slurm_reconciling"] = True
    try:
        desired = desired_state(site, today)
        run = SyncRun(site_id=site.id, started_at=utcnow(), dry_run=dry_run)
        db.session.add(run)
        commands: list[Command] = []
        try:
            actual = read_actual(site, scheduler)
            run.sacctmgr_calls = 1
            changes = plan(desired, actual, site.slurm_cluster, remove_drift=remove_drift)
            commands = changes.commands()
            run.actions = [SyncAction(kind=c.kind, command=str(c)) for c in commands]
            if not dry_run and changes:
                run.sacctmgr_calls += scheduler.apply_accounting(changes)
                # Trust, then verify: a half-applied change shows up here, not as garbage later.
                left = plan(desired, read_actual(site, scheduler), site.slurm_cluster, remove_drift=remove_drift)
                run.sacctmgr_calls += 1
                if left:
                    raise NotConverged(f"{len(left.commands())} change(s) still differ after applying,"
                                       f" e.g. {left.commands()[0]}")
            run.succeeded = True
        except SchedulerError as exc:
            run.error = str(exc)[:2000]
            log.warning("slurm sync of %s failed: %s", site.name, exc)
        run.finished_at = utcnow()
        if not dry_run:
            state.last_run_at = run.finished_at
            state.last_error = run.error
            if run.succeeded:
                state.pending, state.pending_since = False, None
            if commands:
                record("slurm.changed", None, f"site:{site.name}", {
                    "run": run.id, "succeeded": run.succeeded, "error": run.error,
                    "commands": [str(c) for c in commands[:50]], "count": len(commands)},
                    actor_label="reconciler")
        db.session.flush()
        db.session.commit()
    finally:
        db.session.info.pop("slurm_reconciling", None)
    return SyncOutcome(run, commands)


def mark_pending(site_ids: set[int]) -> None:
    now = utcnow()
    for site_id in site_ids:
        state = db.session.get(SiteSyncState, site_id)
        if state is None:
            db.session.add(SiteSyncState(site_id=site_id, pending=True, pending_since=now))
        elif not state.pending:
            state.pending, state.pending_since = True, now


def pending_sites() -> list[Site]:
    return list(db.session.scalars(select(Site).join(SiteSyncState, SiteSyncState.site_id == Site.id)
                                   .where(SiteSyncState.pending.is_(True)).order_by(Site.name)))


def is_pending(site_ids: set[int]) -> bool:
    if not site_ids:
        return False
    return bool(db.session.scalar(select(SiteSyncState.site_id).where(
        SiteSyncState.site_id.in_(site_ids), SiteSyncState.pending.is_(True)).limit(1)))
