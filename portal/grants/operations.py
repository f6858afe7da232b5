"""Business rules about grants, shared by the web pages, the API and the CLI."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation, GrantStatus
from portal.grants.summary import refresh_usage_summaries
from portal.problems import Problems, parse_hours
from portal.projects.models import Project, ProjectStatus
from portal.sites.models import Partition

log = logging.getLogger(__name__)


class GrantError(Problems):
    """A grant cannot be made or changed as asked; the message says why, for people."""


class GrantConflict(GrantError):
    """Fine in itself, but someone else changed the grant or decided the request first (HTTP 409)."""

    conflict = True


def hours_to_minutes(hours: float, field: str = "hours") -> int:
    """Hours given to a grant rule, as the minutes every budget is stored in (the same rule as a form's)."""
    errors: dict[str, str] = {}
    minutes = parse_hours(hours, field, errors, allow_blank=False)
    if errors or minutes is None:
        raise GrantError(errors)
    return minutes


def create_grant(project: Project, *, title: str, start_date: date, end_date: date,
                 hours: Mapping[Partition, float]) -> Grant:
    """Award time on partitions (core-hours or GPU-hours, by each partition's kind); flushes."""
    if end_date <= start_date:
        raise GrantError(_("A grant must end after it starts."))
    if not hours:
        raise GrantError(_("A grant needs time on at least one partition."))
    grant = Grant(project=project, title=title, start_date=start_date, end_date=end_date,
                  status=GrantStatus.ACTIVE)
    for partition, amount in hours.items():
        grant.allocations.append(GrantAllocation(partition=partition, resource_kind=partition.resource_kind,
                                                 awarded_minutes=hours_to_minutes(amount)))
    if project.status is ProjectStatus.PENDING:
        project.status = ProjectStatus.ACTIVE
    db.session.add(grant)
    db.session.flush()
    refresh_usage_summaries([grant.id])  # its risk: a grant that began in the past is behind pace
    log.info("grant created id=%s project=%s allocations=%s", grant.id, project.code,
             {p.name: h for p, h in hours.items()})
    return grant


def visible_grant(grant_id: int, user) -> Grant | None:
    """The grant if ``user`` may see it (its project's team, staff); None otherwise, so an id
    leaks nothing (page and API alike)."""
    grant = db.session.get(Grant, grant_id)
    if grant is None or not grant.project.can_view(user):
        return None
    return grant


def grants_of(project: Project) -> list[Grant]:
    return list(db.session.scalars(select(Grant).where(Grant.project_id == project.id).order_by(Grant.start_date)))


def active_allocation(project: Project, partition: Partition, on: date) -> GrantAllocation | None:
    """The allocation jobs on ``partition`` are charged to on day ``on``, if the project has one."""
    for grant in grants_of(project):
        if grant.is_active_on(on):
            allocation = grant.allocation_for(partition)
            if allocation is not None:
                return allocation
    return None


def _audit(action: str, grant: Grant, actor, details: dict) -> None:
    from portal.audit.operations import record

    record(action, actor, f"grant:{grant.id}", {"project": grant.project.code, **details},
           actor_label=None if actor is not None else "portal")


def _lock(row: Grant | GrantAllocation):
    """Re-read ``row`` under a row lock, so what follows starts from what others committed and
    nobody changes the row before this transaction ends (PostgreSQL; SQLite serialises writers).

    Only the id is selected FOR UPDATE: PostgreSQL refuses to lock the outer joins of a
    model's joined eager loads. The refresh that follows reads the row as last committed.
    """
    db.session.flush()  # a refresh drops unflushed changes
    model = type(row)
    db.session.execute(select(model.id).where(model.id == row.id).with_for_update())
    db.session.refresh(row)
    return row


def set_grant_status(grant: Grant, status: GrantStatus, actor=None) -> Grant:
    """Suspend, resume, expire or close a grant; Slurm follows through the reconciler. Flushes."""
    if _lock(grant).status is status:
        return grant
    previous, grant.status = grant.status, status
    db.session.flush()
    _audit("grant.status", grant, actor, {"from": previous.value, "to": status.value})
    return grant


def expire_due_grants(today: date | None = None) -> list[Grant]:
    """Active grants whose end date has come become expired (no new jobs). Flushes."""
    from portal.clock import utcnow

    today = today or utcnow().date()
    # FOR UPDATE: PostgreSQL re-checks the condition on rows a concurrent extension just changed,
    # so a grant extended meanwhile is not expired with its old end date.
    due = list(db.session.scalars(select(Grant).where(Grant.status == GrantStatus.ACTIVE, Grant.end_date <= today)
                                  .with_for_update()))
    for grant in due:
        set_grant_status(grant, GrantStatus.EXPIRED)
    return due


def add_minutes(allocation: GrantAllocation, minutes: int, actor=None) -> GrantAllocation:
    """A top-up: raise an allocation; the reconciler raises the Slurm limit. Flushes."""
    if minutes <= 0:
        raise GrantError(_("A top-up must add time."))
    # Added to the amount read under the row lock, never to one loaded earlier: of two top-ups at
    # once the second waits for the first to commit, then adds to its total; both land. Not an
    # SQL expression (awarded_minutes + n): the flush expires such a value before the listener in
    # portal.grants.triggers looks, so Slurm would never hear of the top-up.
    _lock(allocation).awarded_minutes += minutes
    db.session.flush()
    refresh_usage_summaries([allocation.grant_id])
    _audit("grant.topped_up", allocation.grant, actor, {"partition": allocation.partition.name, "minutes": minutes,
                                                        "awarded_minutes": allocation.awarded_minutes})
    return allocation


def extend_grant(grant: Grant, new_end: date, actor=None) -> Grant:
    """Move the end later; an expired grant becomes active again. Flushes."""
    if new_end <= _lock(grant).end_date:
        raise GrantError(_("An extension must end later than the grant does now."))
    old_end, grant.end_date = grant.end_date, new_end
    if grant.status is GrantStatus.EXPIRED:
        grant.status = GrantStatus.ACTIVE
    db.session.flush()
    refresh_usage_summaries([grant.id])  # a longer period moves the steady pace
    _audit("grant.extended", grant, actor, {"from": old_end.isoformat(), "to": new_end.isoformat()})
    return grant
