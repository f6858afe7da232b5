"""Benchmark runs listed a page at a time, searched and filtered in SQL (web page, CSV and API)."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import selectinload

from portal.benchmarks.models import BenchmarkMetric, BenchmarkRun, Verdict
from portal.extensions import db
from portal.web.listing import PageRequest, matches_any, parse_day

FILTERS = ("system", "partition", "benchmark", "verdict", "since", "until")
SORTS = ("newest", "oldest", "system")


def filtered(page: PageRequest) -> Select:
    """Runs matching the page (every signed-in person sees every run, as before); ``q`` searches the
    system, partition, array and references entry, ``benchmark`` keeps runs that measured it."""
    query = select(BenchmarkRun)
    if page.search:
        query = query.where(matches_any(page.search, BenchmarkRun.system, BenchmarkRun.partition, BenchmarkRun.array,
                                        BenchmarkRun.reference_key))
    f = page.filters
    if f.get("system"):
        query = query.where(BenchmarkRun.system == f["system"])
    if f.get("partition"):
        query = query.where(BenchmarkRun.partition == f["partition"])
    if f.get("benchmark"):
        query = query.where(exists(select(BenchmarkMetric.id).where(BenchmarkMetric.run_id == BenchmarkRun.id,
                                                                    BenchmarkMetric.benchmark == f["benchmark"])))
    if f.get("verdict") in {v.value for v in Verdict}:
        query = query.where(BenchmarkRun.verdict == Verdict(f["verdict"]))
    if parse_day(f.get("since", "")):
        query = query.where(BenchmarkRun.measured_at >= datetime.combine(parse_day(f["since"]), time.min))
    if parse_day(f.get("until", "")):
        query = query.where(BenchmarkRun.measured_at < datetime.combine(parse_day(f["until"]) + timedelta(days=1),
                                                                        time.min))
    return query


def ordered(query: Select, page: PageRequest) -> Select:
    """The page's order, made stable by the id; the runs' metrics are read in one query."""
    order = {"newest": (BenchmarkRun.measured_at.desc(),), "oldest": (BenchmarkRun.measured_at,),
             "system": (BenchmarkRun.system, BenchmarkRun.partition, BenchmarkRun.measured_at.desc())}[page.sort]
    return query.options(selectinload(BenchmarkRun.metrics)).order_by(*order, BenchmarkRun.id.desc())


def filter_choices() -> dict[str, list[str]]:
    return {"system": list(db.session.scalars(select(BenchmarkRun.system).distinct().order_by(BenchmarkRun.system))),
            "partition": list(db.session.scalars(select(BenchmarkRun.partition).distinct()
                                                 .order_by(BenchmarkRun.partition))),
            "benchmark": list(db.session.scalars(select(BenchmarkMetric.benchmark).distinct()
                                                 .order_by(BenchmarkMetric.benchmark))),
            "verdict": [v.value for v in Verdict]}


def with_metrics(runs: list[BenchmarkRun]) -> list[BenchmarkRun]:
    """``runs`` with their metrics loaded in one query (not one per run)."""
    if runs:
        db.session.scalars(select(BenchmarkRun).where(BenchmarkRun.id.in_([r.id for r in runs]))
                           .options(selectinload(BenchmarkRun.metrics))).all()
    return runs


CSV_HEADER = ("Id", "System", "Partition", "Measured (UTC)", "Array", "Nodes", "Ranks", "Verdict",
              "Failed metrics", "References entry")


def csv_row(run: BenchmarkRun) -> tuple:
    return (run.id, run.system, run.partition, run.measured_at, run.array, run.nodes, run.ranks, run.verdict.value,
            " ".join(m.key for m in run.failed_metrics), run.reference_key)
