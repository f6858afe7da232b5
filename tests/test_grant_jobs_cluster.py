"""Jobs under a grant's account on the real cluster: usage in the ledger, limits that bite."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.clock import utcnow
from portal.devcluster.pytest_plugin import wait_for
from portal.extensions import db
from portal.grants.ingest import ingest_site
from portal.grants.models import JobUsage
from portal.grants.operations import add_minutes, create_grant, expire_due_grants
from portal.grants.reconcile import reconcile_site
from portal.grants.usage import used_minutes
from portal.slurm.errors import SchedulerCommandFailed
from portal.slurm.types import JobRequest
from tests.grant_world import ADAPTERS, partition, person, pool_account, project_with_team, this_year


@pytest.fixture
def slurm_scheduler(cluster_site):
    """Jobs go through the site's own adapter (cli or rest, as the test is parametrised)."""
    from portal.sites.operations import scheduler_for

    return scheduler_for(cluster_site)


def _job(slurm_cluster, account: str, user: str, *, seconds: int, cpus: int = 2, minutes: int = 1) -> JobRequest:
    return JobRequest(script=f"#!/bin/bash\nsleep {seconds}\n", account=account, partition="cpu", job_name="grant-test",
                      workdir=str(slurm_cluster.jobs_dir), time_limit_minutes=minutes, cpus_per_task=cpus, user=user,
                      output=f"{slurm_cluster.jobs_dir}/grant-test-%j.out")


def _granted_team(site, core_hours: float):
    pi, member = person("Jūratė Žukauskienė", real_user=True), person("Grzegorz Brzęczyszczykiewicz", real_user=True)
    project = project_with_team(pi, member)
    start, end = this_year()
    grant = create_grant(project, title="Regular", start_date=start, end_date=end, hours={partition(site, "cpu"): core_hours})
    db.session.commit()
    assert reconcile_site(site).run.succeeded
    return project, grant, pi, member


@pytest.mark.parametrize("site_adapter", ADAPTERS)
def test_jobs_are_charged_to_the_grant_as_sacct_counts_them_and_reingesting_changes_nothing(
        cluster_site, slurm_cluster, slurm_scheduler):
    project, grant, pi, member = _granted_team(cluster_site, 100)
    account = pool_account(grant, "cpu")
    job_ids = []
    for user in (pi.unix_username, member.unix_username):
        slurm_scheduler.wait_for_association(account, user)
        job_ids.append(slurm_scheduler.submit(_job(slurm_cluster, account, user, seconds=2)))
    for job_id in job_ids:
        wait_for(lambda job_id=job_id: slurm_scheduler.job(job_id).state.is_final, 60, f"job {job_id} to end")
    start = utcnow() - timedelta(hours=1)
    # Right after a job ends sacct may still show it PENDING: wait until both are final.
    wait_for(lambda: len([r for r in slurm_scheduler.usage(start, utcnow() + timedelta(minutes=1), [account])
                          if r.state.is_final]) == 2, 30, "both jobs final in sacct")
    sacct = slurm_scheduler.usage(start, utcnow() + timedelta(minutes=1), [account])
    expected = sum(r.cpu_seconds for r in sacct)
    assert expected > 0 and {r.user for r in sacct} == {pi.unix_username, member.unix_username}

    result = ingest_site(cluster_site, slurm_scheduler)
    db.session.commit()
    assert result.charged == 2
    total = db.session.scalar(select(func.sum(JobUsage.cpu_seconds)).where(JobUsage.allocation_id == grant.allocations[0].id))
    assert total == expected
    assert used_minutes(grant.allocations[0]) == expected // 60

    again = ingest_site(cluster_site, slurm_scheduler, since=start)  # the same window once more
    db.session.commit()
    assert again.records == 2
    assert db.session.scalar(select(func.count()).select_from(JobUsage)) == 2
    assert db.session.scalar(select(func.sum(JobUsage.cpu_seconds))) == expected


@pytest.mark.slow
@pytest.mark.parametrize("site_adapter", ADAPTERS)
def test_a_grant_that_cannot_cover_the_next_job_holds_it_and_a_top_up_releases_it(
        cluster_site, slurm_cluster, slurm_scheduler):
    # Six core-minutes: a job of six CPUs for one minute fits exactly. Slurm counts a grant's use
    # in whole minutes, so the first job runs just over one core-minute; the next six-CPU job
    # then needs more than is left and must wait (AccountingStorageEnforce=safe).
    cpus = 6
    project, grant, pi, _ = _granted_team(cluster_site, cpus / 60)
    account, user = pool_account(grant, "cpu"), pi.unix_username
    slurm_scheduler.wait_for_association(account, user)
    first = slurm_scheduler.submit(_job(slurm_cluster, account, user, seconds=11, cpus=cpus))
    wait_for(lambda: slurm_scheduler.job(first).state.is_final, 90, "the first job to end")
    second = slurm_scheduler.submit(_job(slurm_cluster, account, user, seconds=1, cpus=cpus))
    held = wait_for(lambda: (lambda j: j if j.reason == "AssocGrpCPUMinutesLimit" else None)(slurm_scheduler.job(second)),
                    90, "the second job to be held by the grant's limit")
    assert held.state.value == "PENDING"

    add_minutes(grant.allocations[0], 60)
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    wait_for(lambda: slurm_scheduler.job(second).state.value != "PENDING", 90, "the top-up to release the job")


@pytest.mark.parametrize("site_adapter", ADAPTERS)
def test_expired_grant_refuses_new_jobs(cluster_site, slurm_cluster, slurm_scheduler):
    project, grant, pi, _ = _granted_team(cluster_site, 10)
    account = pool_account(grant, "cpu")
    slurm_scheduler.wait_for_association(account, pi.unix_username)
    assert expire_due_grants(today=grant.end_date) == [grant]
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    with pytest.raises(SchedulerCommandFailed, match="(?i)policy|limit"):
        wait_for(lambda: _submit_refused(slurm_scheduler, slurm_cluster, account, pi.unix_username),
                 30, "sbatch to refuse")
        slurm_scheduler.submit(_job(slurm_cluster, account, pi.unix_username, seconds=1))


def _submit_refused(scheduler, cluster, account, user):
    # slurmctld learns of GrpSubmitJobs=0 a moment after slurmdbd stores it.
    try:
        job_id = scheduler.submit(_job(cluster, account, user, seconds=1))
    except SchedulerCommandFailed:
        return True
    scheduler.cancel(job_id)
    return False


