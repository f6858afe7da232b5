"""Hosting sites (one Slurm cluster each) and their partitions.

Partition limits are never typed in: they are read from the live cluster by
:func:`portal.sites.operations.sync_partitions`.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import enum_column


class ResourceKind(enum.Enum):
    CPU = "cpu"  # counted in core-hours
    GPU = "gpu"  # counted in GPU-hours

    @property
    def tres(self) -> str:
        """The Slurm TRES a pool of this kind is limited and charged on (nothing else counts)."""
        return "gres/gpu" if self is ResourceKind.GPU else "cpu"


class HoursOf:
    """The hours of a budget column stored in whole minutes, read-only (``offered_hours =
    HoursOf("offered_minutes")``). Minutes because Slurm's GrpTRESMins, which enforces every
    budget, counts in them; hours because people ask, award and read in core- or GPU-hours."""

    def __init__(self, minutes_attribute: str):
        self.minutes_attribute = minutes_attribute

    def __get__(self, instance, owner=None) -> float | None:
        if instance is None:
            return self  # type: ignore[return-value]  # the class attribute: the descriptor itself
        minutes = getattr(instance, self.minutes_attribute)
        return None if minutes is None else minutes / 60


class Site(db.Model):
    __tablename__ = "sites"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)  # shown to people
    slurm_cluster: Mapped[str] = mapped_column(String(64), unique=True)  # Slurm's ClusterName
    # How to reach the scheduler: an adapter name from portal.slurm and its options.
    scheduler_adapter: Mapped[str] = mapped_column(String(32), default="cli")
    slurm_conf: Mapped[str | None] = mapped_column(String(500))  # path to slurm.conf for the cli adapter
    # The rest adapter: slurmrestd's URL, the path of a file holding its JWT (never the token
    # itself: the database is read by more people than the key), and the OpenAPI version.
    # With the rest adapter, slurm_conf (when set) is the sacctmgr fallback for what
    # slurmrestd 22.05 cannot do (account limit changes).
    rest_url: Mapped[str | None] = mapped_column(String(500))
    rest_token_file: Mapped[str | None] = mapped_column(String(500))
    rest_api_version: Mapped[str] = mapped_column(String(16), default="v0.0.38", server_default="v0.0.38")
    description: Mapped[str] = mapped_column(Text, default="")
    last_sync_at: Mapped[datetime | None]
    last_sync_error: Mapped[str | None] = mapped_column(Text)

    partitions: Mapped[list[Partition]] = relationship(
        back_populates="site", cascade="all, delete-orphan", order_by="Partition.name"
    )


class Partition(db.Model):
    __tablename__ = "partitions"
    __table_args__ = (
        UniqueConstraint("site_id", "name"),
        CheckConstraint("cpus_per_node >= 0 AND gpus_per_node >= 0 AND total_nodes >= 0",
                        name="non_negative_sizes"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    resource_kind: Mapped[ResourceKind] = mapped_column(enum_column(ResourceKind, "resource_kind"))
    # Slurm has no notion of "a GPU partition": the kind is detected from the nodes' GPUs
    # until staff set it (e.g. a CPU-only partition on GPU nodes); syncs then keep it.
    kind_set_by_staff: Mapped[bool] = mapped_column(default=False)
    # Staff may group partitions into one pool that a grant's time on them is shared by
    # (one Slurm sub-account); None: the partition is a pool of its own.
    pool: Mapped[str | None] = mapped_column(String(24))
    is_default: Mapped[bool] = mapped_column(default=False)
    state: Mapped[str] = mapped_column(String(32), default="UP")  # Slurm's state, or ABSENT
    max_time_minutes: Mapped[int | None]  # None: unlimited
    default_time_minutes: Mapped[int | None]
    max_nodes: Mapped[int | None]  # None: unlimited
    total_nodes: Mapped[int] = mapped_column(default=0)
    cpus_per_node: Mapped[int] = mapped_column(default=0)
    max_cpus_per_node: Mapped[int | None]  # Slurm's MaxCPUsPerNode; None: all of the node's CPUs
    gpus_per_node: Mapped[int] = mapped_column(default=0)
    mem_per_node_mb: Mapped[int | None]
    synced_at: Mapped[datetime] = mapped_column(server_default=func.now())

    site: Mapped[Site] = relationship(back_populates="partitions")

    @property
    def usable_cpus_per_node(self) -> int:
        """CPUs a job may use on one node of this partition."""
        if self.max_cpus_per_node is None:
            return self.cpus_per_node
        return min(self.cpus_per_node, self.max_cpus_per_node)

    @property
    def pool_name(self) -> str:
        """The pool this partition's granted time belongs to (by default: its own name)."""
        return self.pool or self.name

    @property
    def label(self) -> str:
        return f"{self.site.name} / {self.name}"
