"""Business rules about projects and their teams."""
from __future__ import annotations

import logging

from sqlalchemy import select

from portal.extensions import db
from portal.identity.models import User
from portal.projects.models import Membership, Project, ProjectRole, ProjectStatus

log = logging.getLogger(__name__)


def projects_visible_to(user: User) -> list[Project]:
    query = select(Project).order_by(Project.code)
    if not user.is_staff:
        query = query.join(Membership).where(Membership.user_id == user.id)
    return list(db.session.scalars(query))


def visible_project(user: User, project_id: int) -> Project | None:
    """The project if ``user`` may see it, else None (callers answer 404 either way)."""
    project = db.session.get(Project, project_id)
    return project if project is not None and project.can_view(user) else None


def create_project(code: str, title: str, pi: User, *, description: str = "",
                   status: ProjectStatus = ProjectStatus.PENDING) -> Project:
    project = Project(code=code, title=title, description=description, status=status)
    project.memberships.append(Membership(user=pi, role=ProjectRole.PI))
    db.session.add(project)
    db.session.flush()
    log.info("project created code=%s pi=%s", code, pi.id)
    return project


def add_member(project: Project, user: User, role: ProjectRole = ProjectRole.MEMBER) -> Membership:
    membership = project.membership_of(user)
    if membership is None:
        membership = Membership(user=user, role=role)
        project.memberships.append(membership)
    else:
        membership.role = role
    db.session.flush()
    return membership
