"""Run the reconciler after every committed change that affects Slurm, without touching views.

A session listener notes which sites a flush touched (grants, allocations, memberships, a
user's Unix name, a project's account name); before the commit those sites are marked
pending in the same transaction, so the mark stands or falls with the change. After the
request's commit, the pending sites are reconciled. If Slurm is down the mark stays and the
page says "changes waiting for Slurm"; ``flask slurm sync`` or the next change converges.
"""
from __future__ import annotations

import logging

from flask import Flask, current_app
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation
from portal.identity.models import User
from portal.projects.models import Membership, Project
from portal.sites.models import Partition, Site

log = logging.getLogger(__name__)
_KEY = "slurm_touched"


def _touched(session: Session) -> dict[str, set[int]]:
    return session.info.setdefault(_KEY, {"sites": set(), "projects": set(), "users": set(), "partitions": set()})


def _changed(obj, attribute: str) -> bool:
    return inspect(obj).attrs[attribute].history.has_changes()


def _note(session: Session, obj, deleted: bool) -> None:
    touched = _touched(session)
    if isinstance(obj, Grant):
        touched["projects"].add(obj.project_id)
    elif isinstance(obj, GrantAllocation):
        touched["partitions"].add(obj.partition_id)
    elif isinstance(obj, Membership):
        touched["projects"].add(obj.project_id)
    elif isinstance(obj, User) and not deleted and _changed(obj, "unix_username"):
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


def _sites_of(touched: dict[str, set[int]], session: Session) -> set[int]:
    sites = set(touched["sites"])
    projects = set(touched["projects"])
    if touched["users"]:
        projects |= set(session.scalars(select(Membership.project_id).where(Membership.user_id.in_(touched["users"]))))
    if projects:
        sites |= set(session.scalars(select(Partition.site_id).join(GrantAllocation).join(Grant)
                                     .where(Grant.project_id.in_(projects))))
    if touched["partitions"]:
        sites |= set(session.scalars(select(Partition.site_id).where(Partition.id.in_(touched["partitions"]))))
    return sites


def _before_commit(session: Session) -> None:
    if session.info.get("slurm_reconciling"):
        return
    session.flush()  # changes not yet flushed are noted by _after_flush now, not after the commit
    touched = session.info.pop(_KEY, None)
    if not touched or not any(touched.values()):
        return
    with session.no_autoflush:
        sites = _sites_of(touched, session)
    if sites:
        from portal.grants.reconcile import mark_pending

        mark_pending(sites)
        session.flush()
        session.info.setdefault("slurm_sites_to_sync", set()).update(sites)


def _after_rollback(session: Session) -> None:
    session.info.pop(_KEY, None)


def sync_pending_after_request(response):
    """After the request's commit: reconcile the sites its changes touched."""
    session = db.session()
    sites = session.info.pop("slurm_sites_to_sync", set())
    if not sites or response.status_code >= 400 or not current_app.config.get("SLURM_SYNC_AFTER_CHANGE", True):
        return response
    from portal.grants.reconcile import reconcile_site

    for site_id in sorted(sites):
        site = db.session.get(Site, site_id)
        if site is None:
            continue
        try:
            reconcile_site(site)
        except Exception:  # the change is committed and stays pending; never fail the request
            db.session.rollback()
            log.exception("reconciling %s after a change failed", site.name)
    return response


def init_app(app: Flask) -> None:
    """Listen for Slurm-relevant changes; call before the app registers its commit hook.

    Flask runs after-request functions in reverse order, so this one runs after the commit.
    """
    if not event.contains(Session, "after_flush", _after_flush):
        event.listen(Session, "after_flush", _after_flush)
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_soft_rollback", lambda session, _tx: _after_rollback(session))
    app.after_request(sync_pending_after_request)
    from portal.api import grants as grants_api
    from portal.extensions import api
    from portal.grants.blueprint import bp

    app.register_blueprint(bp)
    api.register_blueprint(grants_api.blp, url_prefix="/api/grants")
