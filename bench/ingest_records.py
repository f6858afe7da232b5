"""Ingest N job records, written in sacct's own ``-P`` format, into the usage ledger.

Three timings on the same records, in the same run:
  parse       sacct text -> UsageRecord (portal.slurm.parsing.usage_from_sacct)
  ingest      the portal's upsert with charging to allocations (first time)
  re-ingest   the same records again (must leave totals unchanged)
and, as the reference, a plain bulk INSERT of the same rows (no charging, no upsert), the
floor any ingestion on this database pays. Runs on a throwaway PostgreSQL database.

    python bench/ingest_records.py [--records 100000] [--projects 200]
        [--database-url postgresql://postgres@127.0.0.1:5432/portal_bench]
"""
from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STATES = ["COMPLETED"] * 8 + ["FAILED", "CANCELLED by 1234", "TIMEOUT", "OUT_OF_MEMORY", "RUNNING"]


def sacct_lines(count: int, accounts: list[tuple[date, dict[str, str], dict[str, str]]], start: date,
                rng: random.Random) -> str:
    """Rows in the order of portal.slurm.parsing.SACCT_FIELDS, as ``sacct -X -P -n`` prints them.

    ``accounts`` holds, per project, the day its second grant starts and each grant's pool
    sub-accounts by partition: a job runs under the sub-account of the grant current when it
    was submitted, on the pool of its partition (as a job plan's ``#SBATCH --account``).
    """
    lines = []
    origin = datetime(start.year, start.month, start.day)
    for job in range(count):
        gpu = rng.random() < 0.4
        cpus = rng.choice((1, 2, 4, 8, 16, 32, 64))
        gpus = rng.choice((1, 2, 4)) if gpu else 0
        submit = origin + timedelta(seconds=rng.randrange(0, 700 * 86400))
        begin = submit + timedelta(seconds=rng.randrange(0, 7200))
        elapsed = rng.randrange(1, 48 * 3600)
        state = rng.choice(STATES)
        end = "Unknown" if state == "RUNNING" else (begin + timedelta(seconds=elapsed)).isoformat(timespec="seconds")
        tres = f"billing={cpus},cpu={cpus},mem={cpus * 4}G,node=1" + (f",gres/gpu={gpus}" if gpus else "")
        partition = "gpu" if gpu else "cpu"
        boundary, year1, year2 = rng.choice(accounts)
        account = (year1 if submit.date() < boundary else year2)[partition]
        lines.append("|".join([
            str(1_000_000 + job), f"job{job}", account, f"user{rng.randrange(2000)}",
            partition, state, "None", submit.isoformat(timespec="seconds"),
            begin.isoformat(timespec="seconds"), end, str(elapsed), str(cpus), str(cpus * elapsed), tres,
            "0:0", "2880"]))
    return "\n".join(lines) + "\n"


def setup(projects: int):
    from portal.extensions import db
    from portal.grants.operations import create_grant
    from portal.grants.reconcile import name_pool_accounts
    from portal.identity.providers import create_local_user
    from portal.projects.operations import create_project
    from portal.sites.models import Partition, ResourceKind
    from portal.sites.operations import create_site

    site = create_site("Bench", "bench")
    cpu, gpu = Partition(name="cpu", resource_kind=ResourceKind.CPU), Partition(name="gpu", resource_kind=ResourceKind.GPU)
    site.partitions += [cpu, gpu]
    pi = create_local_user("pi@example.org", "PI", None)
    grants = []
    first, boundary = date(2026, 1, 1), date(2027, 1, 1)
    for i in range(projects):
        project = create_project(f"bench-{i}", "Bench", pi)
        project.slurm_account = f"bench_{i}"
        # Two consecutive grants, each with a sub-account per pool (bench_<i>_cpu, then
        # bench_<i>_cpu_<grant id>): records are spread over all four of a project's pools.
        grants.append((
            create_grant(project, title="Year 1", start_date=first, end_date=boundary, hours={cpu: 1e6, gpu: 1e5}),
            create_grant(project, title="Year 2", start_date=boundary, end_date=date(2028, 1, 1),
                         hours={cpu: 1e6, gpu: 1e5})))
    name_pool_accounts(site)
    accounts = [(boundary, *({a.partition.name: a.slurm_account for a in grant.allocations} for grant in pair))
                for pair in grants]
    db.session.commit()
    return site, accounts, first


def plain_insert(rows: list[dict]) -> None:
    from portal.extensions import db

    db.session.execute(db.text("CREATE TEMPORARY TABLE plain_usage (LIKE job_usage INCLUDING DEFAULTS)"))
    columns = list(rows[0])
    quoted = ", ".join(f'"{c}"' for c in columns)  # "user" is a reserved word
    statement = db.text(f"INSERT INTO plain_usage ({quoted}) VALUES ({', '.join(':' + c for c in columns)})")
    for start in range(0, len(rows), 2000):
        db.session.execute(statement, rows[start:start + 2000])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--projects", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=os.environ.get(
        "PORTAL_BENCH_DATABASE_URL", f"postgresql://postgres@127.0.0.1:5432/portal_bench_{os.getpid()}"))
    args = parser.parse_args()

    from flask_migrate import upgrade
    from sqlalchemy import func, select

    from portal import create_app
    from portal.extensions import db
    from portal.grants.ingest import _row, ingest_records
    from portal.grants.models import JobUsage
    from portal.slurm.parsing import usage_from_sacct
    from tests.conftest import recreate_postgres_database

    recreate_postgres_database(args.database_url)
    app = create_app({"SQLALCHEMY_DATABASE_URI": args.database_url, "INSTANCE_PATH": tempfile.mkdtemp()})
    try:
        with app.app_context():
            upgrade()
            site, accounts, first = setup(args.projects)
            text = sacct_lines(args.records, accounts, first, random.Random(args.seed))
            timings = {}
            began = time.perf_counter()
            records = usage_from_sacct(text)
            timings["parse"] = time.perf_counter() - began
            for label in ("ingest", "re-ingest"):
                began = time.perf_counter()
                result = ingest_records(site, records)
                db.session.commit()
                timings[label] = time.perf_counter() - began
                totals = db.session.execute(select(func.count(), func.sum(JobUsage.cpu_seconds))).one()
                timings[label + " check"] = totals
            rows = [_row(site.id, r, None) for r in records]
            began = time.perf_counter()
            plain_insert(rows)
            db.session.commit()
            timings["reference"] = time.perf_counter() - began
            db.engine.dispose()
    finally:
        recreate_postgres_database(args.database_url, drop_only=True)
    _report(args, timings, result.charged)


def _report(args, timings, charged: int) -> None:
    n = args.records
    print(f"# ingest {n} sacct -P records for {args.projects} projects (PostgreSQL); {charged} charged to a grant")
    print(f"# {'step':36} {'seconds':>8} {'records/s':>10}")
    for label, key in (("parse (sacct -P text -> records)", "parse"), ("ingest (upsert + charging)", "ingest"),
                       ("re-ingest of the same records", "re-ingest"), ("reference: plain bulk INSERT", "reference")):
        print(f"  {label:36} {timings[key]:8.2f} {n / timings[key]:10.0f}")
    first, second = timings["ingest check"], timings["re-ingest check"]
    print(f"# rows and CPU-seconds after ingest {tuple(first)}, after re-ingest {tuple(second)}:"
          f" {'unchanged' if tuple(first) == tuple(second) else 'CHANGED (double counting!)'}")
    print(f"# ingest costs {timings['ingest'] / timings['reference']:.2f}x the plain INSERT;"
          f" parse + ingest: {n / (timings['parse'] + timings['ingest']):.0f} records/s end to end")


if __name__ == "__main__":
    main()
