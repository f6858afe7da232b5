"""Helpers for the list tests: a facility of grants charged through ingestion, and counting SQL per page."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from datetime import datetime, timedelta

from sqlalchemy import event, select

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.ingest import ingest_records
from portal.grants.operations import create_grant
from portal.identity.models import User
from portal.projects.operations import create_project
from portal.sites.models import Partition, ResourceKind, Site
from portal.sites.operations import create_site
from portal.slurm.types import JobState, UsageRecord


def grant_facility(app, tmp_path, grants: int, *, first: int = 0) -> None:
    """``grants`` grants on two sites, with jobs charged through ingestion (the real path)."""
    with app.app_context():
        sites = []
        for name in ("Kraków AI", "Vilnius AI"):
            site = db.session.scalar(select(Site).where(Site.name == name))
            if site is None:
                site = create_site(name, name.split()[0].lower(), slurm_conf=str(tmp_path / "missing.conf"))
                site.partitions += [Partition(name="cpu", resource_kind=ResourceKind.CPU),
                                    Partition(name="gpu", resource_kind=ResourceKind.GPU, gpus_per_node=4)]
                db.session.flush()
            sites.append(site)
        today = utcnow().date()
        records: dict[int, list[UsageRecord]] = {}
        for n in range(first, first + grants):
            site = sites[n % 2]
            cpu, gpu = site.partitions
            pi = User(email=f"pi{n}@uni.example.lt", name=f"Jūratė Petrauskienė {n}" if n % 2 else f"Żaneta Kowalczyk {n}")
            db.session.add(pi)
            project = create_project(f"ehpc-{n:05d}", f"Project {n}", pi)
            project.slurm_account = f"acct{n}"
            grant = create_grant(project, title=f"Grant {n}", start_date=today - timedelta(days=10 + n % 50),
                                 end_date=today + timedelta(days=50 + n % 30), hours={cpu: 1000 + n, gpu: 100})
            for allocation in grant.allocations:
                allocation.slurm_account = f"acct{n}_{allocation.partition.name}"
            start = datetime.combine(today - timedelta(days=5), datetime.min.time())
            records.setdefault(site.id, []).append(UsageRecord(
                job_id=str(10_000 + n), account=f"acct{n}_cpu", user=f"u{n}", partition="cpu",
                state=JobState.COMPLETED, submit_time=start, start_time=start, end_time=start + timedelta(hours=1),
                elapsed_seconds=3600, alloc_cpus=1, cpu_seconds=3600 * (n * 37 % 900), gpu_seconds=0,
                alloc_tres="cpu=1"))
        db.session.flush()
        for site in sites:
            ingest_records(site, records.get(site.id, []))
        db.session.commit()


@contextmanager
def counting_queries(app):
    statements: list[str] = []
    with app.app_context():
        engine = db.engine

    def count(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread() is main:
            statements.append(statement)

    main = threading.current_thread()
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", count)


def queries_for(app, client, url: str) -> int:
    with counting_queries(app) as statements:
        response = client.get(url)
        body = response.get_data()
    assert response.status_code == 200 and body
    return len(statements)
