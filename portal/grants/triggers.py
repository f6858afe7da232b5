"""Note every committed change that affects Slurm, without touching views or Slurm.

A session listener notes which projects a flush touched (grants, allocations, memberships,
a user's Unix name or whether the account is active, a project's account name); before the
commit a pending change is inserted for each (site, project) in the same transaction, so the
mark stands or falls with the change. The reconciler service applies it (see
:mod:`portal.grants.service`); no web request ever runs a Slurm accounting command.
"""
from __future__ import annotations

import logging

from flask import Flask
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from portal.grants.models import Grant, GrantAllocation
from portal.identity.models import User
from portal.projects.models import Membership, Project
from portal.sites.models import Partition

log = logging.getLogger(__name__)
_KEY = "slurm_touched"


def _touched(session: Session) -> dict[str, set[int]]:
    return session.info.setdefault(_KEY, {"projects": set(), "users": set(), "grants": set()})


def _changed(obj, attribute: str) -> bool:
    return inspect(obj).attrs[attribute].history.has_changes()


def _note(session: Session, obj, deleted: bool) -> None:
    touched = _touched(session)
    if isinstance(obj, Grant):
        touched["projects"].add(obj.project_id)
    elif isinstance(obj, GrantAllocation):
        touched["grants"].add(obj.grant_id)
    elif isinstance(obj, Membership):
        touched["projects"].add(obj.project_id)
    elif isinstance(obj, User) and not deleted and (_changed(obj, "unix_username") or _changed(obj, "active")):
        touched["users"].add(obj.id)
    elif isinstance(obj, Project) and not deleted and _changed(obj, "slurm_account"):
        touched["projects"].add(obj.id)


def _after_flush(session: Session, _context) -> None:
    if session.info.get("slurm_reconciling"):
        return
    for obj in session.new:
        _note(session, obj, False)
    for obj in session.dirty:
        if session.is_modified(obj, include_collections=False):
            _note(session, obj, False)
    for obj in session.deleted:
        _note(session, obj, True)


def _projects_on_sites(touched: dict[str, set[int]], session: Session) -> set[tuple[int, int]]:
    """(site, project) pairs whose Slurm accounts the touched rows change."""
    projects = set(touched["projects"])
    if touched["users"]:
        projects |= set(session.scalars(select(Membership.project_id).where(Membership.user_id.in_(touched["users"]))))
    if touched["grants"]:
        projects |= set(session.scalars(select(Grant.project_id).where(Grant.id.in_(touched["grants"]))))
    if not projects:
        return set()
    return {(site, project) for site, project in session.execute(
        select(Partition.site_id, Grant.project_id).join(GrantAllocation, GrantAllocation.partition_id == Partition.id)
        .join(Grant, Grant.id == GrantAllocation.grant_id).where(Grant.project_id.in_(projects)).distinct())}


def _before_commit(session: Session) -> None:
    if session.info.get("slurm_reconciling"):
        return
    session.flush()  # changes not yet flushed are noted by _after_flush now, not after the commit
    touched = session.info.pop(_KEY, None)
    if not touched or not any(touched.values()):
        return
    with session.no_autoflush:
        pairs = _projects_on_sites(touched, session)
    if pairs:
        from portal.grants.reconcile import mark_pending

        mark_pending(set(), pairs)
        session.flush()


def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)


def init_app(app: Flask) -> None:
    """Listen for Slurm-relevant changes."""
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_soft_rollback", lambda session, _tx: _after_rollback(session))
