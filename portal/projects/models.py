"""Projects (what a grant is charged to) and the people in them."""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import User, enum_column


class ProjectStatus(enum.Enum):
    PENDING = "pending"  # created, no active grant yet
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class ProjectRole(enum.Enum):
    PI = "pi"
    CO_PI = "co_pi"
    MEMBER = "member"


class Project(db.Model):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)  # e.g. "ehpc-reg-2026-042"
    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[ProjectStatus] = mapped_column(
        enum_column(ProjectStatus, "project_status"), default=ProjectStatus.PENDING
    )
    # The Slurm account the project's jobs are charged to; set when Slurm knows it.
    slurm_account: Mapped[str | None] = mapped_column(String(32), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="project", cascade="all, delete-orphan", lazy="selectin"
    )

    def membership_of(self, user: User) -> Membership | None:
        return next((m for m in self.memberships if m.user_id == user.id), None)

    def can_view(self, user: User) -> bool:
        return user.is_staff or self.membership_of(user) is not None

    def can_manage_team(self, user: User) -> bool:
        membership = self.membership_of(user)
        return user.is_staff or (
            membership is not None and membership.role in (ProjectRole.PI, ProjectRole.CO_PI)
        )

    @property
    def pi(self) -> User | None:
        return next((m.user for m in self.memberships if m.role is ProjectRole.PI), None)


class Membership(db.Model):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("project_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[ProjectRole] = mapped_column(enum_column(ProjectRole, "project_role"))
    joined_at: Mapped[datetime] = mapped_column(server_default=func.now())

    project: Mapped[Project] = relationship(back_populates="memberships")
    user: Mapped[User] = relationship(lazy="joined")
