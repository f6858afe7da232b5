"""Jobs submitted through the portal: who asked for what, where, and the last state seen."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import User
from portal.projects.models import Project, ProjectRole
from portal.sites.models import Partition
from portal.slurm.types import JobEfficiency, JobState


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
    efficiency: Mapped[JobEfficiencyRecord | None] = relationship(back_populates="job", cascade="all, delete-orphan",
                                                                  lazy="selectin")

    def can_view(self, user: User) -> bool:
        return self.project.can_view(user)

    def can_cancel(self, user: User) -> bool:
        if user.is_staff or user.id == self.user_id:
            return True
        membership = self.project.membership_of(user)
        return membership is not None and membership.role in (ProjectRole.PI, ProjectRole.CO_PI)


class JobEfficiencyRecord(db.Model):
    """How an ended job used its allocation, read once from accounting (see JobEfficiency)."""
    __tablename__ = "job_efficiencies"
    __table_args__ = tuple(CheckConstraint(f"{column} >= 0", name=f"{column}_not_negative") for column in (
        "tasks", "elapsed_seconds", "alloc_cpus", "cpu_time_seconds", "total_cpu_ms", "gpus", "gpu_seconds"))

    job_id: Mapped[int] = mapped_column(ForeignKey("submitted_jobs.id", ondelete="CASCADE"), primary_key=True)
    read_at: Mapped[datetime] = mapped_column(server_default=func.now())
    state: Mapped[str] = mapped_column(String(32))
    exit_code: Mapped[str | None] = mapped_column(String(16))
    tasks: Mapped[int]
    elapsed_seconds: Mapped[int] = mapped_column(BigInteger)
    time_limit_minutes: Mapped[int | None]
    alloc_cpus: Mapped[int]
    cpu_time_seconds: Mapped[int] = mapped_column(BigInteger)
    total_cpu_ms: Mapped[int] = mapped_column(BigInteger)
    max_rss_kib: Mapped[int | None] = mapped_column(BigInteger)
    requested_mem_kib: Mapped[int | None] = mapped_column(BigInteger)
    gpus: Mapped[int]
    gpu_seconds: Mapped[int] = mapped_column(BigInteger)

    job: Mapped[SubmittedJob] = relationship(back_populates="efficiency")

    _FIELDS = ("exit_code", "tasks", "elapsed_seconds", "time_limit_minutes", "alloc_cpus", "cpu_time_seconds",
               "total_cpu_ms", "max_rss_kib", "requested_mem_kib", "gpus", "gpu_seconds")

    @classmethod
    def of(cls, value: JobEfficiency) -> JobEfficiencyRecord:
        return cls(state=value.state.value, **{name: getattr(value, name) for name in cls._FIELDS})

    def value(self) -> JobEfficiency:
        """The stored numbers as the scheduler-neutral value, whose properties do the arithmetic."""
        return JobEfficiency(job_id=self.job.slurm_job_id, state=JobState(self.state),
                             **{name: getattr(self, name) for name in self._FIELDS})
