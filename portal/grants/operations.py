"""Business rules about grants, shared by the web pages, the API and the CLI."""
from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

from sqlalchemy import select

from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation, GrantStatus
from portal.projects.models import Project, ProjectStatus
from portal.sites.models import Partition

log = logging.getLogger(__name__)


class GrantError(ValueError):
    """A grant cannot be made or changed as asked; the message says why, for people."""


def hours_to_minutes(hours: float) -> int:
    if hours < 0:
        raise GrantError(f"Hours cannot be negative ({hours}).")
    return round(hours * 60)


def create_grant(project: Project, *, title: str, start_date: date, end_date: date,
                 hours: Mapping[Partition, float]) -> Grant:
    """Award time on partitions (core-hours or GPU-hours, by each partition's kind); flushes."""
    if end_date <= start_date:
        raise GrantError("A grant must end after it starts.")
    if not hours:
        raise GrantError("A grant needs time on at least one partition.")
    grant = Grant(project=project, title=title, start_date=start_date, end_date=end_date,
                  status=GrantStatus.ACTIVE)
    for partition, amount in hours.items():
        grant.allocations.append(GrantAllocation(partition=partition, resource_kind=partition.resource_kind,
                                                 awarded_minutes=hours_to_minutes(amount)))
    if project.status is ProjectStatus.PENDING:
        project.status = ProjectStatus.ACTIVE
    db.session.add(grant)
    db.session.flush()
    log.info("grant created id=%s project=%s allocations=%s", grant.id, project.code,
             {p.name: h for p, h in hours.items()})
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
