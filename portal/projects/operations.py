"""Business rules about projects and their teams."""
from __future__ import annotations

import logging

from sqlalchemy import select

from portal.extensions import db
from portal.identity.models import User
from portal.problems import Problems
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


class TeamError(Problems):
    """The team cannot be changed as asked; the message says why, for people."""


def add_member_by_email(project: Project, actor: User, email: str, role: ProjectRole = ProjectRole.MEMBER) -> Membership:
    """A PI, co-PI or staff adds a person who has a portal account; Slurm follows. Flushes."""
    from flask_babel import gettext as _

    from portal.audit.operations import record

    if role is ProjectRole.PI:
        raise TeamError(_("A project has one PI; add co-PIs or members."))
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None:
        raise TeamError(_("No one with the e-mail address %(email)s has signed in to the portal yet.",
                          email=(email or "").strip()[:254]))
    current = project.membership_of(user)
    if current is not None and current.role is ProjectRole.PI:
        raise TeamError(_("%(name)s is the project's PI.", name=user.name))
    membership = add_member(project, user, role)
    record("project.member_added", actor, f"project:{project.code}", {"user": user.email, "role": role.value})
    return membership


def remove_member(project: Project, actor: User, user_id: int) -> None:
    """Take a person off the team (never the PI); their Slurm associations go. Flushes."""
    from flask_babel import gettext as _

    from portal.audit.operations import record

    membership = next((m for m in project.memberships if m.user_id == user_id), None)
    if membership is None:
        raise TeamError(_("That person is not on the team (any more)."))
    if membership.role is ProjectRole.PI:
        raise TeamError(_("The PI cannot be removed from the project."))
    project.memberships.remove(membership)
    db.session.flush()
    record("project.member_removed", actor, f"project:{project.code}", {"user": membership.user.email})
