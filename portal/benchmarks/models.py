"""Stored acceptance-benchmark runs and their metrics, acceptance runs started from the
portal, and references adopted from history.

A run keeps the uploaded document as it came (for audit) and one row per metric with the
verdict it got against the references in force at upload time, and says which references
those were (``reference_origin``: the file and its version, or the adopted reference).
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, CheckConstraint, Float, ForeignKey, Index, String, Text, UniqueConstraint, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import User, enum_column
from portal.sites.models import Partition, Site


class Verdict(enum.Enum):
    PASSED = "passed"
    FAILED = "failed"
    NO_REFERENCE = "no_reference"  # nothing to judge against for this system


class MetricStatus(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    MISSING = "missing"  # a reference exists, but the run did not measure it
    UNREFERENCED = "unreferenced"


class BenchmarkRun(db.Model):
    __tablename__ = "benchmark_runs"
    __table_args__ = (Index("ix_benchmark_runs_system_partition_measured", "system", "partition", "measured_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(64))
    measured_at: Mapped[datetime]
    uploaded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    array: Mapped[str] = mapped_column(String(200))  # "numpy (host)" or "cupy (device …)": never mix them up
    nodes: Mapped[int]
    ranks: Mapped[int]
    verdict: Mapped[Verdict] = mapped_column(enum_column(Verdict, "benchmark_verdict"))
    reference_key: Mapped[str | None] = mapped_column(String(140))  # which references entry judged it
    # Where that entry came from: "file NAME version V sha256:…" or "adopted reference N (version V)".
    reference_origin: Mapped[str | None] = mapped_column(String(300))
    reference_id: Mapped[int | None] = mapped_column(ForeignKey("benchmark_references.id", ondelete="SET NULL"))
    portal_version: Mapped[str | None] = mapped_column(String(40))  # the portal that judged it
    document: Mapped[dict] = mapped_column(JSON)

    uploaded_by: Mapped[User | None] = relationship()
    reference: Mapped[BenchmarkReference | None] = relationship()
    metrics: Mapped[list[BenchmarkMetric]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="BenchmarkMetric.key")

    @property
    def failed_metrics(self) -> list[BenchmarkMetric]:
        return [m for m in self.metrics if m.status in (MetricStatus.FAIL, MetricStatus.MISSING)]


class BenchmarkMetric(db.Model):
    __tablename__ = "benchmark_metrics"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("benchmark_runs.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(140), index=True)  # benchmark/metric[/size][/precision]
    benchmark: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(64))
    unit: Mapped[str] = mapped_column(String(16))
    size: Mapped[int | None] = mapped_column(BigInteger)
    precision: Mapped[str | None] = mapped_column(String(16))
    mean: Mapped[float | None] = mapped_column(Float)  # None only for a missing metric
    stdev: Mapped[float | None] = mapped_column(Float)
    samples: Mapped[int | None]
    reference: Mapped[float | None] = mapped_column(Float)
    lower: Mapped[float | None] = mapped_column(Float)  # tolerance as a fraction of the reference
    upper: Mapped[float | None] = mapped_column(Float)
    margin: Mapped[float | None] = mapped_column(Float)  # measured / reference - 1
    status: Mapped[MetricStatus] = mapped_column(enum_column(MetricStatus, "benchmark_metric_status"))
    message: Mapped[str | None] = mapped_column(String(300))

    run: Mapped[BenchmarkRun] = relationship(back_populates="metrics")

    @property
    def lower_bound(self) -> float | None:
        return None if self.reference is None or self.lower is None else self.reference * (1 + self.lower)

    @property
    def upper_bound(self) -> float | None:
        return None if self.reference is None or self.upper is None else self.reference * (1 + self.upper)


class BenchmarkReference(db.Model):
    """A reference table staff adopted from past runs of one system and partition.

    Every adoption is a new row with the next version; the newest judges new runs of that
    system and partition (before the files, which stay the defaults). Rows are never changed.
    """
    __tablename__ = "benchmark_references"
    __table_args__ = (UniqueConstraint("system", "partition", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    system: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(64))
    version: Mapped[int]
    # {metric key: {"value", "lower", "upper", "unit"}}: the shape mpi_examples.suite judges with
    table: Mapped[dict] = mapped_column(JSON)
    method: Mapped[str] = mapped_column(String(200))  # e.g. "median, 5th percentile band, 5 % slack"
    source_run_ids: Mapped[list] = mapped_column(JSON)
    adopted_at: Mapped[datetime] = mapped_column(server_default=func.now())
    adopted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    note: Mapped[str] = mapped_column(Text, default="")

    adopted_by: Mapped[User | None] = relationship()

    @property
    def key(self) -> str:
        return f"{self.system}:{self.partition}"

    @property
    def origin(self) -> str:
        return f"adopted reference {self.id} ({self.key} version {self.version})"


class AcceptanceState(enum.Enum):
    QUEUED = "queued"  # recorded and submitted; Slurm has not started it
    RUNNING = "running"
    REPORTED = "reported"  # the job posted its result: the verdict is the result's
    FAILED = "failed"  # the job ended (FAILED, TIMEOUT, CANCELLED, ...) or finished without a result

    @property
    def is_final(self) -> bool:
        return self in (AcceptanceState.REPORTED, AcceptanceState.FAILED)


class AcceptanceRun(db.Model):
    """One acceptance job started from the portal on one partition.

    The job posts its result itself with an upload-only token made for this run alone: only
    its SHA-256 digest is kept here; it expires, and it is spent by the first result.
    """
    __tablename__ = "acceptance_runs"
    __table_args__ = (CheckConstraint("ntasks >= 2 AND time_minutes >= 1", name="sane_request"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    site_id: Mapped[int] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"), index=True)
    partition_id: Mapped[int] = mapped_column(ForeignKey("partitions.id", ondelete="CASCADE"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_at: Mapped[datetime] = mapped_column(server_default=func.now())
    benchmarks: Mapped[str] = mapped_column(String(40))
    size: Mapped[str] = mapped_column(String(16))  # "quick" or "full"
    ntasks: Mapped[int]
    time_minutes: Mapped[int]
    unix_user: Mapped[str] = mapped_column(String(32))
    account: Mapped[str] = mapped_column(String(64))
    workdir: Mapped[str] = mapped_column(String(1000))
    script: Mapped[str] = mapped_column(Text)
    state: Mapped[AcceptanceState] = mapped_column(enum_column(AcceptanceState, "acceptance_state"),
                                                   default=AcceptanceState.QUEUED)
    slurm_job_id: Mapped[str | None] = mapped_column(String(32))
    slurm_state: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(String(300))  # why it failed, in words
    ended_at: Mapped[datetime | None]  # when Slurm said the job ended (or the run failed)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    token_expires_at: Mapped[datetime]
    token_used_at: Mapped[datetime | None]
    result_id: Mapped[int | None] = mapped_column(ForeignKey("benchmark_runs.id", ondelete="SET NULL"))
    portal_version: Mapped[str] = mapped_column(String(40))

    site: Mapped[Site] = relationship()
    partition: Mapped[Partition] = relationship()
    requested_by: Mapped[User | None] = relationship()
    result: Mapped[BenchmarkRun | None] = relationship()

    @property
    def verdict(self) -> str:
        """What people read: the result's verdict, "failed" for a job that ended without
        one, or the state while it runs."""
        if self.state is AcceptanceState.REPORTED and self.result is not None:
            return self.result.verdict.value
        return self.state.value

    @property
    def failed(self) -> bool:
        return self.verdict == Verdict.FAILED.value
