"""References that judge results: the files (the defaults) and those staff adopt from history.

A reference derived from history is the median of the selected runs per metric, with a band
from a percentile of the same runs plus a slack: for a bandwidth or a rate (higher is
better) only a lower bound, for a time (``us``, lower is better) only an upper bound. Staff
review the proposal and adopt it; each adoption is a new version, and the newest adopted
reference of a system and partition judges its new runs before any file does.
"""
from __future__ import annotations

import hashlib
import json
import statistics
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from mpi_examples import suite
from portal.audit.operations import record
from portal.benchmarks.models import BenchmarkReference, BenchmarkRun, MetricStatus
from portal.extensions import db
from portal.identity.models import User
from portal.problems import Problems

DEFAULT_REFERENCES_DIR = Path(suite.__file__).resolve().parent / "references"
LOWER_IS_BETTER = frozenset({"us"})
MIN_RUNS = 3


class ReferenceProblem(Problems):
    """A selection of runs a reference cannot be derived from; the message is for staff."""


def file_references(folder: Path | None = None) -> tuple[dict, dict[str, str]]:
    """Every references file in the configured folder, merged by system key, and for each key
    the file and version it came from. Raises suite.ReferenceError / ValueError for a broken file
    as ``(path, error)``."""
    folder = Path(folder or current_app.config.get("BENCHMARK_REFERENCES_DIR") or DEFAULT_REFERENCES_DIR)
    merged: dict = {}
    origins: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        try:
            tables = suite.load_references(path)
            raw = path.read_bytes()
            version = json.loads(raw).get("version")
        except (suite.ReferenceError, ValueError) as exc:
            raise FileReferenceError(path, exc) from exc
        origin = f"file {path.name}" + (f" version {version}" if version else "") \
            + f" sha256:{hashlib.sha256(raw).hexdigest()[:12]}"
        for system_key, table in tables.items():
            merged.setdefault(system_key, {}).update(table)
            origins[system_key] = origin[:300]
    return merged, origins


class FileReferenceError(ValueError):
    def __init__(self, path: Path, error: Exception):
        super().__init__(f"{path}: {error}")
        self.path, self.error = path, error


def adopted_references() -> list[BenchmarkReference]:
    """The newest adopted reference of each system and partition."""
    newest = (select(BenchmarkReference.system, BenchmarkReference.partition,
                     func.max(BenchmarkReference.version).label("version"))
              .group_by(BenchmarkReference.system, BenchmarkReference.partition).subquery())
    return list(db.session.scalars(select(BenchmarkReference).join(
        newest, (BenchmarkReference.system == newest.c.system) & (BenchmarkReference.partition == newest.c.partition)
        & (BenchmarkReference.version == newest.c.version)).order_by(BenchmarkReference.system,
                                                                     BenchmarkReference.partition)))


def current_references(folder: Path | None = None) -> tuple[dict, dict[str, tuple[str, int | None]]]:
    """What judges a new result: the files, with each adopted reference as ``system:partition``
    (the most specific key, so it wins). Also, per key, (origin text, adopted reference id)."""
    merged, file_origins = file_references(folder)
    origins: dict[str, tuple[str, int | None]] = {key: (text, None) for key, text in file_origins.items()}
    for reference in adopted_references():
        merged[reference.key] = reference.table
        origins[reference.key] = (reference.origin, reference.id)
    return merged, origins


def history_runs(system: str, partition: str, limit: int = 100) -> list[BenchmarkRun]:
    return list(db.session.scalars(select(BenchmarkRun).where(
        BenchmarkRun.system == system, BenchmarkRun.partition == partition)
        .order_by(BenchmarkRun.measured_at.desc(), BenchmarkRun.id.desc()).limit(limit)))


def history_systems() -> list[tuple[str, str]]:
    return list(db.session.execute(select(BenchmarkRun.system, BenchmarkRun.partition).distinct()
                                   .order_by(BenchmarkRun.system, BenchmarkRun.partition)))


@dataclass(frozen=True)
class ProposedMetric:
    key: str
    unit: str
    runs: int
    median: float
    band_low: float  # the percentile values the band came from
    band_high: float
    lower: float | None  # fractions, as in references files
    upper: float | None

    @property
    def spec(self) -> dict:
        return {"value": self.median, "lower": self.lower, "upper": self.upper, "unit": self.unit}

    @property
    def lower_bound(self) -> float | None:
        return None if self.lower is None else self.median * (1 + self.lower)

    @property
    def upper_bound(self) -> float | None:
        return None if self.upper is None else self.median * (1 + self.upper)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between the sorted values."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def selected_runs(run_ids: list[int]) -> list[BenchmarkRun]:
    runs = list(db.session.scalars(select(BenchmarkRun).where(BenchmarkRun.id.in_(run_ids))
                                   .order_by(BenchmarkRun.measured_at)))
    if len(runs) != len(set(run_ids)):
        raise ReferenceProblem(_("Some of the selected runs do not exist."))
    return runs


def propose_reference(runs: list[BenchmarkRun], pct: float = 5.0, slack: float = 0.05) -> list[ProposedMetric]:
    """Median and band per metric of the runs (one system and partition, no failed checks)."""
    if not 0 <= pct <= 50 or not 0 <= slack <= 1:
        raise ReferenceProblem(_("The percentile is 0-50 and the slack a fraction 0-1."))
    if len({(r.system, r.partition) for r in runs}) > 1:
        raise ReferenceProblem(_("Choose runs of one system and partition."))
    broken = [r.id for r in runs if r.document.get("errors")]
    if broken:
        raise ReferenceProblem(_("Runs %(ids)s failed a correctness check; leave them out.",
                                 ids=", ".join(map(str, broken))))
    if len(runs) < MIN_RUNS:
        raise ReferenceProblem(_("Choose at least %(n)d runs.", n=MIN_RUNS))
    values: dict[str, list[float]] = {}
    units: dict[str, Counter] = {}
    for run in runs:
        for metric in run.metrics:
            if metric.mean is not None and metric.status is not MetricStatus.MISSING and metric.mean > 0:
                values.setdefault(metric.key, []).append(metric.mean)
                units.setdefault(metric.key, Counter())[metric.unit] += 1
    proposal = []
    for key in sorted(values):
        unit, count = units[key].most_common(1)[0]
        if count != len(values[key]) or len(values[key]) < MIN_RUNS:
            continue  # mixed units, or measured by too few of the runs to band
        median = statistics.median(values[key])
        low, high = percentile(values[key], pct), percentile(values[key], 100 - pct)
        if unit in LOWER_IS_BETTER:
            lower, upper = None, round(max(0.0, high / median - 1 + slack), 4)
        else:
            lower, upper = round(min(0.0, max(-1.0, low / median - 1 - slack)), 4), None
        proposal.append(ProposedMetric(key, unit, len(values[key]), median, low, high, lower, upper))
    if not proposal:
        raise ReferenceProblem(_("The runs have no metric in common to derive a reference from."))
    return proposal


def method_text(pct: float, slack: float) -> str:
    return f"median; band from the {pct:g}th/{100 - pct:g}th percentile with {100 * slack:g} % slack"


def adopt_reference(runs: list[BenchmarkRun], staff: User, pct: float = 5.0, slack: float = 0.05,
                    note: str = "") -> BenchmarkReference:
    """Derive (again, from the same runs) and keep the reference as the next version. Flushes."""
    proposal = propose_reference(runs, pct, slack)
    system, partition = runs[0].system, runs[0].partition
    version = (db.session.scalar(select(func.max(BenchmarkReference.version)).where(
        BenchmarkReference.system == system, BenchmarkReference.partition == partition)) or 0) + 1
    reference = BenchmarkReference(system=system, partition=partition, version=version,
                                   table={m.key: m.spec for m in proposal}, method=method_text(pct, slack)[:200],
                                   source_run_ids=sorted(r.id for r in runs), adopted_by=staff,
                                   note=note.strip()[:2000])
    db.session.add(reference)
    db.session.flush()
    record("benchmark.reference_adopted", staff, f"benchmark_reference:{reference.id}", {
        "system": system, "partition": partition, "version": version, "metrics": len(proposal),
        "runs": reference.source_run_ids, "method": reference.method})
    return reference


def references_of(system: str, partition: str) -> list[BenchmarkReference]:
    """Every adopted version of one system and partition, newest first."""
    return list(db.session.scalars(select(BenchmarkReference).where(
        BenchmarkReference.system == system, BenchmarkReference.partition == partition)
        .order_by(BenchmarkReference.version.desc())))
