"""Stored acceptance-benchmark runs and their metrics.

A run keeps the uploaded document as it came (for audit) and one row per metric with the
verdict it got against the references in force at upload time.
"""
from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Float, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.extensions import db
from portal.identity.models import User, enum_column


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
    document: Mapped[dict] = mapped_column(JSON)

    uploaded_by: Mapped[User | None] = relationship()
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
