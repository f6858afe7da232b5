"""Acceptance runs as the portal stores them, for tests that need one without Slurm."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.benchmarks.acceptance import TOKEN_PREFIX, _digest
from portal.benchmarks.models import AcceptanceRun
from portal.clock import utcnow
from portal.extensions import db
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site

SECRET = TOKEN_PREFIX + "a" * 43
OTHER_SECRET = TOKEN_PREFIX + "b" * 43


def stored_acceptance_run(secret: str, *, system: str = "devcluster", partition: str = "cpu",
                          expires_in: timedelta = timedelta(hours=1), slurm_job_id: str = "4242",
                          on: Partition | None = None) -> int:
    """A run as start_acceptance_run leaves it (queued, job submitted), without Slurm; returns its id."""
    from portal.sites.models import Site

    site = on.site if on is not None else db.session.scalar(select(Site).where(Site.slurm_cluster == system))
    if site is None:
        site = create_site(f"System {system}", system, slurm_conf="/nonexistent/slurm.conf")
        site.partitions.append(Partition(name=partition, resource_kind=ResourceKind.CPU, state="UP"))
        db.session.flush()
    run = AcceptanceRun(site=site, partition=on or site.partitions[0], benchmarks="pingpong", size="quick", ntasks=2,
                        time_minutes=5, unix_user="nobody", account="acceptance", workdir="/nonexistent",
                        script="#!/bin/bash\n", slurm_job_id=slurm_job_id, token_hash=_digest(secret),
                        token_expires_at=utcnow() + expires_in, portal_version="test")
    db.session.add(run)
    db.session.commit()
    return run.id
