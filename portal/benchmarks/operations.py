"""Storing and judging acceptance-benchmark results.

The judging rules are those of ``mpi_examples.suite`` (the same code that judges a run on the
cluster), so a run gets the same verdict in the portal as in the job's own output.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

from flask_babel import gettext as _
from sqlalchemy import func, select

from mpi_examples import suite
from mpi_examples.results import metric_key, validate
from portal import __version__ as portal_version
from portal.benchmarks.models import BenchmarkMetric, BenchmarkRun, MetricStatus, Verdict
from portal.benchmarks.references import FileReferenceError, current_references, file_references
from portal.extensions import db
from portal.identity.models import User
from portal.problems import Problems

log = logging.getLogger(__name__)

MAX_METRICS = 5000  # far above a full suite (about 200); stops a runaway upload


class BenchmarkError(Problems):
    """A result could not be stored; ``problems`` says why, in words for people (every one of
    them: a document can break many rules at once)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems[:10]))
        self.problems = problems


class InvalidResult(BenchmarkError):
    """The uploaded document is not a valid mpi_examples result."""


class ReferencesUnavailable(BenchmarkError):
    """A references file on the server is malformed: staff must mend it before uploads resume."""

    status = 503


def load_all_references(folder: Path | None = None) -> dict:
    """Every references file in the configured folder, merged by system key."""
    return _references(lambda: file_references(folder))[0]


def _references(load):
    try:
        return load()
    except FileReferenceError as exc:
        raise ReferencesUnavailable([_("References file %(path)s is broken: %(error)s", path=exc.path,
                                       error=exc.error)]) from exc


def _parse_timestamp(text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidResult([_("timestamp: %(value)s is not an ISO 8601 time", value=text)]) from exc
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when


def _key_parts(key: str) -> dict:
    """benchmark/metric[/size][/precision] back into its fields (for metrics a run lacks)."""
    parts = key.split("/")
    size = next((int(p) for p in parts[2:] if p.isdigit()), None)
    precision = next((p for p in parts[2:] if not p.isdigit()), None)
    return {"benchmark": parts[0], "metric": parts[1] if len(parts) > 1 else "", "size": size,
            "precision": precision}


def ingest_result(document: dict, uploaded_by: User | None, references: dict | None = None) -> BenchmarkRun:
    """Validate, judge and store one result document. Raises InvalidResult and stores nothing.

    Without ``references``, the files and the adopted references judge it (see references.py),
    and the run records which of them did.
    """
    if not isinstance(document, dict):
        raise InvalidResult([_("The result must be a JSON object.")])
    problems = validate(document)
    if problems:
        raise InvalidResult(problems)
    if len(document["metrics"]) > MAX_METRICS:
        raise InvalidResult([_("Too many metrics (%(n)d; at most %(max)d).", n=len(document["metrics"]), max=MAX_METRICS)])
    measured_at = _parse_timestamp(document["timestamp"])
    origins: dict = {}
    if references is None:
        references, origins = _references(current_references)
    measured = {metric_key(m): m for m in document["metrics"]}
    run = BenchmarkRun(system=document["system"], partition=document["partition"], measured_at=measured_at,
                       uploaded_by=uploaded_by, array=document["array"], nodes=document["nodes"],
                       ranks=document["ranks"], document=document, verdict=Verdict.NO_REFERENCE,
                       portal_version=portal_version)
    try:
        run.reference_key, table = suite.select(references, run.system, run.partition)
    except suite.ReferenceError:
        table = {}
    else:
        run.reference_origin, run.reference_id = origins.get(run.reference_key, (None, None))
    ran = {m["benchmark"] for m in document["metrics"]}
    outcomes = suite.compare(document["metrics"], table, ran)
    for outcome in outcomes:
        row = measured.get(outcome["key"]) or _key_parts(outcome["key"])
        run.metrics.append(BenchmarkMetric(
            key=outcome["key"], benchmark=row["benchmark"], metric=row["metric"], size=row["size"],
            precision=row["precision"], unit=outcome["unit"], mean=outcome["value"],
            stdev=row.get("stdev"), samples=row.get("samples"), reference=outcome.get("reference"),
            lower=outcome.get("lower"), upper=outcome.get("upper"), margin=outcome.get("margin"),
            status=MetricStatus(outcome["status"]), message=(outcome.get("message") or "")[:300] or None))
    if table:
        run.verdict = Verdict.PASSED if suite.passed(outcomes) else Verdict.FAILED
    if document["errors"]:
        run.verdict = Verdict.FAILED  # a failed correctness check fails the run, whatever the numbers
    db.session.add(run)
    db.session.flush()
    log.info("benchmark run stored id=%s system=%s partition=%s verdict=%s metrics=%d",
             run.id, run.system, run.partition, run.verdict.value, len(run.metrics))
    return run


def latest_runs() -> list[BenchmarkRun]:
    """The newest run of each system and partition."""
    newest = (select(BenchmarkRun.system, BenchmarkRun.partition, func.max(BenchmarkRun.measured_at).label("at"))
              .group_by(BenchmarkRun.system, BenchmarkRun.partition).subquery())
    query = (select(BenchmarkRun)
             .join(newest, (BenchmarkRun.system == newest.c.system) & (BenchmarkRun.partition == newest.c.partition)
                   & (BenchmarkRun.measured_at == newest.c.at))
             .order_by(BenchmarkRun.system, BenchmarkRun.partition, BenchmarkRun.id.desc()))
    seen, runs = set(), []
    for run in db.session.scalars(query):
        if (run.system, run.partition) not in seen:
            seen.add((run.system, run.partition))
            runs.append(run)
    return runs


@dataclass(frozen=True)
class HistoryPoint:
    run_id: int
    measured_at: datetime
    mean: float
    stdev: float | None
    status: MetricStatus
    reference: float | None
    lower_bound: float | None
    upper_bound: float | None
    unit: str


def metric_history(system: str, partition: str, key: str) -> list[HistoryPoint]:
    query = (select(BenchmarkMetric, BenchmarkRun.measured_at).join(BenchmarkRun)
             .where(BenchmarkRun.system == system, BenchmarkRun.partition == partition,
                    BenchmarkMetric.key == key, BenchmarkMetric.mean.is_not(None))
             .order_by(BenchmarkRun.measured_at))
    # cast: the query keeps only metrics with a mean.
    return [HistoryPoint(m.run_id, at, cast(float, m.mean), m.stdev, m.status, m.reference, m.lower_bound, m.upper_bound, m.unit)
            for m, at in db.session.execute(query)]
