"""Jobs submitted through the portal: who asked for what, where, and the last state seen."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import User
from portal.projects.models import Project, ProjectRole
from portal.sites.models import Partition


class SubmittedJob(db.Model):
    __tablename__ = "submitted_jobs"
    __table_args__ = (UniqueConstraint("site_id", "slurm_job_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    partition_id: Mapped[int] = mapped_column(ForeignKey("partitions.id", ondelete="RESTRICT"), index=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    slurm_job_id: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(40))
    job_name: Mapped[str] = mapped_column(String(128))
    unix_user: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(32))
    workdir: Mapped[str] = mapped_column(String(1000))  # made by the portal, never typed in
    script: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    max_cost_minutes: Mapped[int] = mapped_column(BigInteger)  # core- or GPU-minutes at most
    submitted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_state: Mapped[str] = mapped_column(String(32), default="PENDING")
    last_reason: Mapped[str | None] = mapped_column(String(200))
    state_seen_at: Mapped[datetime | None]

    project: Mapped[Project] = relationship()
    partition: Mapped[Partition] = relationship(lazy="joined")
    user: Mapped[User] = relationship()

    def can_view(self, user: User) -> bool:
        return self.project.can_view(user)

    def can_cancel(self, user: User) -> bool:
        if user.is_staff or user.id == self.user_id:
            return True
        membership = self.project.membership_of(user)
        return membership is not None and membership.role in (ProjectRole.PI, ProjectRole.CO_PI)
