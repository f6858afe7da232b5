"""Ingestion from sacct's -P text: charging by pool account, idempotence, late states."""
from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.grants.ingest import ingest_records
from portal.grants.models import JobUsage
from portal.grants.operations import create_grant
from portal.grants.reconcile import name_pool_accounts
from portal.grants.usage import used_minutes
from portal.identity.providers import create_local_user
from portal.projects.operations import create_project
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site
from portal.slurm.parsing import usage_from_sacct


def sacct(job: str, account: str, partition: str, state: str, start: str, end: str, elapsed: int, cpus: int,
          tres: str = "") -> str:
    tres = tres or f"billing={cpus},cpu={cpus},mem=1G,node=1"
    return "|".join([job, "train", account, "ania", partition, state, "None", start, start, end, str(elapsed),
                     str(cpus), str(cpus * elapsed), tres, "0:0", "60"]) + "\n"


@pytest.fixture
def two_years(app_ctx):
    site = create_site("Site", "sitea")
    cpu, gpu = Partition(name="cpu", resource_kind=ResourceKind.CPU), Partition(name="gpu", resource_kind=ResourceKind.GPU)
    site.partitions += [cpu, gpu]
    project = create_project("p-ł", "Żółw", create_local_user("pi@example.org", "Paulina Łęcka", "pw"))
    project.slurm_account = "p_l"
    first = create_grant(project, title="2026", start_date=date(2026, 1, 1), end_date=date(2027, 1, 1),
                         hours={cpu: 100, gpu: 10})
    second = create_grant(project, title="2027", start_date=date(2027, 1, 1), end_date=date(2028, 1, 1), hours={cpu: 100})
    db.session.flush()
    name_pool_accounts(site)
    return site, first, second


def test_each_grant_period_and_pool_has_its_own_account_and_jobs_are_charged_where_slurm_counted_them(two_years):
    site, first, second = two_years
    cpu, gpu = site.partitions
    first_cpu, second_cpu = first.allocation_for(cpu).slurm_account, second.allocation_for(cpu).slurm_account
    assert (first_cpu, first.allocation_for(gpu).slurm_account) == ("p_l_cpu", "p_l_gpu")
    assert second_cpu == f"p_l_cpu_{second.id}"  # a new period: a new counter, nothing carried over
    # Job 1 was submitted under the 2026 grant and ran past its end: Slurm counted it there.
    text = (sacct("1", first_cpu, "cpu", "COMPLETED", "2026-12-31T22:00:00", "2027-01-01T02:00:00", 4 * 3600, 2)
            + sacct("2", second_cpu, "cpu", "COMPLETED", "2027-01-01T00:00:00", "2027-01-01T01:00:00", 3600, 1)
            + sacct("3", "p_l_gpu", "gpu", "COMPLETED", "2026-06-01T00:00:00", "2026-06-01T01:00:00", 3600, 8,
                    "billing=8,cpu=8,gres/gpu=2,mem=1G,node=1")
            + sacct("4", "someone_else", "cpu", "COMPLETED", "2026-06-01T00:00:00", "2026-06-01T01:00:00", 3600, 1)
            + sacct("5", "p_l", "cpu", "COMPLETED", "2026-06-01T00:00:00", "2026-06-01T01:00:00", 3600, 1))
    result = ingest_records(site, usage_from_sacct(text))
    assert (result.records, result.charged) == (5, 3)
    assert used_minutes(first.allocation_for(cpu)) == 8 * 60  # job 1, whole
    assert used_minutes(second.allocation_for(cpu)) == 60  # job 2
    # GPU-minutes from AllocTRES; the 8 CPUs of the GPU job are charged nowhere (GPU pools count GPUs only).
    assert used_minutes(first.allocation_for(gpu)) == 2 * 60


def test_reingesting_never_double_counts_and_a_final_state_is_not_undone(two_years):
    site, first, _ = two_years
    running = sacct("7", "p_l_cpu", "cpu", "RUNNING", "2026-03-01T00:00:00", "Unknown", 600, 4)
    done = sacct("7", "p_l_cpu", "cpu", "COMPLETED", "2026-03-01T00:00:00", "2026-03-01T01:00:00", 3600, 4)
    # Right after the end sacct may show the job PENDING with no CPUs: that must not erase it.
    glitch = sacct("7", "p_l_cpu", "cpu", "PENDING", "2026-03-01T00:00:00", "Unknown", 0, 0)
    allocation = first.allocation_for(site.partitions[0])
    ingest_records(site, usage_from_sacct(running))
    assert used_minutes(allocation) == 40
    for text in (done, done, glitch, done):
        ingest_records(site, usage_from_sacct(text))
        assert used_minutes(allocation) == 240
    assert db.session.scalar(select(func.count()).select_from(JobUsage)) == 1
    assert db.session.scalar(select(JobUsage.state)) == "COMPLETED"
