"""Make Slurm enforce the grants: desired state from the database, diff, apply, record.

A committed change that affects Slurm leaves a :class:`PendingChange` for its project (see
:mod:`portal.grants.triggers`); the reconciler service (:mod:`portal.grants.service`) or
``flask slurm sync`` then brings just those projects' accounts in line (an incremental run,
whose cost does not grow with the site), or the whole site (a full run, which also finds
drift). A run that fails leaves the changes pending and is retried with backoff: every run
starts from what Slurm has, never from what was done.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload

from portal.audit.operations import record
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation, PendingChange, SiteSyncState, SyncAction, SyncRun
from portal.projects.models import Project
from portal.sites.models import Partition, Site
from portal.sites.operations import ABSENT
from portal.slurm import names
from portal.slurm.accounting import AccountSpec, ActualState, Command, Drift, SlurmState, actual_state, drift, plan
from portal.slurm.errors import SchedulerError
from portal.transactions import require_clean_session, roll_back, unit_of_work

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
        try:
            with db.session.begin_nested():  # two processes may make it at once: one wins
                db.session.add(SiteSyncState(site_id=site.id))
        except IntegrityError:
            pass
        state = db.session.get(SiteSyncState, site.id)
    if not lock:
        return state
    # Two workers never reconcile one site at once: the second skips (the first sees its change).
    return db.session.scalar(select(SiteSyncState).where(SiteSyncState.site_id == site.id)
                             .with_for_update(skip_locked=True).execution_options(populate_existing=True))


def _grants_on(site: Site, projects: set[int] | None = None) -> list[tuple[Grant, list[GrantAllocation]]]:
    query = (select(GrantAllocation).join(GrantAllocation.partition).where(Partition.site_id == site.id)
             .options(selectinload(GrantAllocation.grant).selectinload(Grant.project))
             .order_by(GrantAllocation.grant_id, GrantAllocation.id))
    if projects is not None:
        query = query.join(GrantAllocation.grant).where(Grant.project_id.in_(projects))
    by_grant: dict[int, tuple[Grant, list[GrantAllocation]]] = {}
    for allocation in db.session.scalars(query):
        by_grant.setdefault(allocation.grant_id, (allocation.grant, []))[1].append(allocation)
    return list(by_grant.values())


def _pool_suffix(pool: str) -> str:
    return re.sub(r"[^a-z0-9_]", "_", pool.lower())[:20] or "pool"


def name_pool_accounts(site: Site, projects: set[int] | None = None) -> None:
    """Give every allocation on ``site`` the Slurm sub-account of its grant and pool; flushes.

    ``<project account>_<pool>`` (e.g. ``ehpc_reg_001_gpu``), with the grant's id appended
    when an earlier grant of the project already holds that name: each grant period has
    counters of its own, so time left over from an ended grant never carries into the next.
    Names are stored once and never change.
    """
    unnamed = (select(Grant.project_id).join(GrantAllocation, GrantAllocation.grant_id == Grant.id)
               .join(Partition, Partition.id == GrantAllocation.partition_id)
               .where(Partition.site_id == site.id, GrantAllocation.slurm_account.is_(None)))
    if projects is not None:
        unnamed = unnamed.where(Grant.project_id.in_(projects))
    waiting = set(db.session.scalars(unnamed.distinct()))
    if not waiting:  # one indexed query: the common case costs nothing however large the site
        return
    grants = _grants_on(site, waiting)
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


def desired_state(site: Site, today: date | None = None, projects: set[int] | None = None) -> SlurmState:
    """What Slurm on ``site`` should have, from the database alone (names pool accounts first).

    Under the funding pool (or the top account) one account per project, without limits;
    under it one sub-account per grant and pool, limited to exactly the minutes awarded on
    that pool (``GrpTRESMins`` of the pool's kind: core-minutes on CPU pools, GPU-minutes on
    GPU pools, nothing else); each member with a Unix name has an association with that
    sub-account on each partition of the pool, and on no other, so a pool's time can be spent
    on its partitions only; members whose account is disabled have none. A grant that is not
    active today gets ``GrpSubmitJobs=0`` (no new jobs) and ``GrpJobs=0`` (queued jobs do not start).
    """
    today = today or utcnow().date()
    name_pool_accounts(site)
    top = top_account()
    state = SlurmState()
    state.add_account(AccountSpec.make(top, "root"))
    live = [p for p in site.partitions if p.state != ABSENT]
    per_project: dict[int, dict] = {}
    for grant, allocations in _grants_on(site, projects):
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
        # A disabled account loses its associations (and gets them back when enabled again).
        unix_names = [names.validate_user_name(m.user.unix_username) for m in entry["project"].memberships
                      if m.user.unix_username and m.user.active]
        for spec, partitions in entry["subs"]:
            state.add_account(replace(spec, parent=project_account))
            state.users |= {(spec.name, user, partition) for user in unix_names for partition in partitions}
    return state


def read_actual(site: Site, scheduler, accounts: list[str] | None = None) -> ActualState:
    """The site's associations under the top account: all of them, or those of ``accounts``."""
    return actual_state(scheduler.associations(accounts, cluster=site.slurm_cluster), site.slurm_cluster,
                        top_account(), complete=accounts is None)


@dataclass
class SyncOutcome:
    run: SyncRun | None  # None: another worker holds the site, or nothing was waiting
    commands: list[Command]


def _scheduler(site: Site, scheduler):
    if scheduler is not None:
        return scheduler
    from portal.sites.operations import scheduler_for

    return scheduler_for(site)


def retry_delay(attempts: int) -> timedelta:
    """Backoff after failed runs in a row: 5 s, 10 s, 20 s, ... at most 5 minutes."""
    return timedelta(seconds=min(5 * 2 ** max(attempts - 1, 0), 300))


def reconcile_site(site: Site, scheduler=None, *, dry_run: bool = False, remove_drift: bool = False,
                   full: bool | None = None, only_pending: bool = False, today: date | None = None) -> SyncOutcome:
    """Bring Slurm on ``site`` to the desired state; record the run. One unit of work of the
    reconciler (it talks to Slurm between its reads and its writes), so it owns its
    transactions: called with changes not yet committed it raises UnfinishedWork rather than
    commit them as a side effect.

    ``full`` (default: when a whole-site change waits, when drift is to be removed, or when
    nothing waits) reads and plans the whole site and counts the drift; otherwise only the
    projects with pending changes are read and written. ``only_pending`` returns without a run
    when nothing waits. Slurm failures raise nothing: they are kept on the run and on the
    site's state (attempts, next retry), and the changes stay pending.
    """
    scheduler = _scheduler(site, scheduler)
    require_clean_session()  # the lock's transaction must not carry the caller's half-done work
    # Names first, in a short transaction of their own: the run's transaction then writes
    # nothing until Slurm has answered (SQLite would otherwise block every writer meanwhile).
    db.session.info["slurm_reconciling"] = True
    try:
        with unit_of_work():
            name_pool_accounts(site)
    finally:
        db.session.info.pop("slurm_reconciling", None)
    state = site_state(site, lock=True)
    if state is None:
        roll_back()
        return SyncOutcome(None, [])
    waiting = list(db.session.execute(select(PendingChange.id, PendingChange.project_id)
                                      .where(PendingChange.site_id == site.id)))
    if only_pending and not waiting:
        roll_back()
        return SyncOutcome(None, [])
    if full is None:
        full = remove_drift or not waiting or any(project is None for _, project in waiting)
    projects = None if full else {project for _, project in waiting}
    db.session.info["slurm_reconciling"] = True
    try:
        # Any exception (SIGTERM's included) rolls the run back: nothing half-recorded, the
        # changes stay pending.
        with unit_of_work():
            desired = desired_state(site, today, projects)
            run = SyncRun(site_id=site.id, started_at=utcnow(), dry_run=dry_run)
            db.session.add(run)
            commands: list[Command] = []
            try:
                scope = None if full else sorted(desired.accounts)
                actual = read_actual(site, scheduler, scope)
                run.sacctmgr_calls = 1
                if full and not dry_run:
                    state.drift_found = _drift_size(drift(desired, actual))
                    state.last_full_at = run.started_at
                changes = plan(desired, actual, site.slurm_cluster, remove_drift=remove_drift)
                commands = changes.commands()
                run.actions = [SyncAction(kind=c.kind, command=str(c)) for c in commands]
                if not dry_run and changes:
                    run.sacctmgr_calls += scheduler.apply_accounting(changes)
                    # Trust, then verify: a half-applied change shows up here, not as garbage later.
                    left = plan(desired, read_actual(site, scheduler, scope), site.slurm_cluster, remove_drift=remove_drift)
                    run.sacctmgr_calls += 1
                    if left:
                        raise NotConverged(f"{len(left.commands())} change(s) still differ after applying,"
                                           f" e.g. {left.commands()[0]}")
                    if remove_drift:
                        state.drift_found = 0
                run.succeeded = True
            except SchedulerError as exc:
                run.error = str(exc)[:2000]
                log.warning("slurm sync of %s failed: %s", site.name, exc)
            run.finished_at = utcnow()
            if not dry_run:
                _record_outcome(site, state, run, commands, [change_id for change_id, _ in waiting])
    finally:
        db.session.info.pop("slurm_reconciling", None)
    return SyncOutcome(run, commands)


def _drift_size(found: Drift) -> int:
    return len(found.accounts) + len(found.associations) + len(found.limits) + len(found.user_limits)


def _record_outcome(site: Site, state: SiteSyncState, run: SyncRun, commands: list[Command],
                    applied: list[int]) -> None:
    state.last_run_at = run.finished_at
    state.last_error = run.error
    if run.succeeded:
        state.last_success_at, state.attempts, state.next_attempt_at = run.finished_at, 0, None
        if applied:  # only what this run saw: a change marked meanwhile waits for the next run
            db.session.execute(delete(PendingChange).where(PendingChange.id.in_(applied)))
    else:
        state.attempts = (state.attempts or 0) + 1
        state.next_attempt_at = run.finished_at + retry_delay(state.attempts)
    if commands:
        record("slurm.changed", None, f"site:{site.name}", {
            "run": run.id, "succeeded": run.succeeded, "error": run.error,
            "commands": [str(c) for c in commands[:50]], "count": len(commands)},
            actor_label="reconciler")


def mark_pending(site_ids: set[int], projects: set[tuple[int, int]] = frozenset()) -> None:
    """Note, in the caller's transaction, that Slurm must learn of a change: of whole sites
    (``site_ids``) or of projects on a site (``(site_id, project_id)``). Inserts only, so a web
    request never waits for a reconciler at work; the reconciler service is woken after the
    commit (PostgreSQL NOTIFY; it polls too)."""
    now = utcnow()
    rows = [{"site_id": site_id, "project_id": None, "marked_at": now} for site_id in sorted(site_ids)]
    rows += [{"site_id": site_id, "project_id": project_id, "marked_at": now}
             for site_id, project_id in sorted(projects) if site_id not in site_ids]
    if not rows:
        return
    db.session.execute(insert(PendingChange), rows)
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": WAKE_CHANNEL})


WAKE_CHANNEL = "portal_slurm"


def pending_sites() -> list[Site]:
    return list(db.session.scalars(select(Site).where(Site.id.in_(select(PendingChange.site_id)))
                                   .order_by(Site.name)))


def is_pending(site_ids: set[int]) -> bool:
    if not site_ids:
        return False
    return bool(db.session.scalar(select(PendingChange.id).where(PendingChange.site_id.in_(site_ids)).limit(1)))


def pending_since(site: Site) -> datetime | None:
    return db.session.scalar(select(func.min(PendingChange.marked_at)).where(PendingChange.site_id == site.id))
