"""Accounts, associations, jobs and usage on the real test cluster."""
from datetime import UTC, datetime, timedelta

import pytest

from portal.devcluster.pytest_plugin import unique_name, wait_for
from portal.slurm import JobRequest, JobState, SchedulerCommandFailed, SchedulerError

pytestmark = pytest.mark.slurm

USER = "portaltest1"


@pytest.fixture
def project(slurm_cluster, slurm_scheduler):
    """A fresh account with one real Unix user associated, known to slurmctld."""
    user = slurm_cluster.ensure_unix_user(USER)
    name = unique_name("p")
    slurm_scheduler.add_account(name, description="test project", organization="tests",
                                grp_tres_mins={"cpu": 600})
    slurm_scheduler.add_user(name, user)
    slurm_scheduler.wait_for_association(name, user)
    yield name
    for job in slurm_scheduler.jobs(account=name):
        slurm_scheduler.cancel(job.job_id)
    slurm_scheduler.remove_account(name)


def _request(cluster, account, **changes):
    fields = dict(script="#!/bin/bash\nsleep 2\necho done\n", account=account, partition="cpu",
                  job_name="portal-test", workdir=str(cluster.jobs_dir), time_limit_minutes=5,
                  user=USER)
    return JobRequest(**{**fields, **changes})


def test_account_and_association_are_listed(slurm_scheduler, project):
    (account,) = [a for a in slurm_scheduler.accounts() if a.name == project]
    assert (account.parent, account.description, account.organization) == (
        "root", "test project", "tests")
    assert account.grp_tres_mins == {"cpu": 600}
    users = {a.user for a in slurm_scheduler.associations([project])}
    assert users == {None, USER}
    slurm_scheduler.add_user(project, USER)  # adding it again is not an error
    slurm_scheduler.modify_account(project, grp_tres_mins={"cpu": 900}, grp_submit_jobs=0)
    (assoc,) = [a for a in slurm_scheduler.associations([project]) if a.user is None]
    assert (assoc.grp_tres_mins, assoc.grp_submit_jobs) == ({"cpu": 900}, 0)
    slurm_scheduler.modify_account(project, grp_submit_jobs=-1)
    (assoc,) = [a for a in slurm_scheduler.associations([project]) if a.user is None]
    assert assoc.grp_submit_jobs is None


def test_job_runs_as_user_and_is_accounted(slurm_cluster, slurm_scheduler, project):
    began = datetime.now(UTC) - timedelta(minutes=1)
    job_id = slurm_scheduler.submit(_request(slurm_cluster, project, cpus_per_task=2))
    (queued,) = slurm_scheduler.jobs(account=project)
    assert (queued.job_id, queued.user, queued.account) == (job_id, USER, project)

    def finished():
        records = slurm_scheduler.usage(began, datetime.now(UTC) + timedelta(minutes=1),
                                        accounts=[project])
        return [r for r in records if r.state.is_final]

    (record,) = wait_for(finished, timeout=60, what="the job in accounting")
    assert (record.job_id, record.user, record.state, record.alloc_cpus) == (
        job_id, USER, JobState.COMPLETED, 2)
    assert record.elapsed_seconds >= 2
    assert record.cpu_seconds == record.elapsed_seconds * 2 > 0
    assert slurm_scheduler.job(job_id).state is JobState.COMPLETED
    efficiency = wait_for(lambda: slurm_scheduler.job_efficiency(job_id), timeout=30, what="the job's steps to end")
    assert (efficiency.state, efficiency.tasks, efficiency.alloc_cpus) == (JobState.COMPLETED, 1, 2)
    assert efficiency.cpu_time_seconds == record.cpu_seconds
    assert efficiency.requested_mem_kib == 2 * 100 * 1024  # DefMemPerCPU=100 (MB) for each of 2 CPUs
    assert slurm_scheduler.account_usage([project])[project].account == project


def test_job_over_budget_stays_pending_and_can_be_cancelled(slurm_cluster, slurm_scheduler,
                                                            project):
    slurm_scheduler.modify_account(project, grp_tres_mins={"cpu": 1})
    job_id = slurm_scheduler.submit(
        _request(slurm_cluster, project, cpus_per_task=2, time_limit_minutes=10))
    job = wait_for(lambda: (j := slurm_scheduler.job(job_id)).reason
                   == "AssocGrpCPUMinutesLimit" and j, timeout=30, what="the limit reason")
    assert job.state is JobState.PENDING
    slurm_scheduler.cancel(job_id)
    cancelled = wait_for(lambda: (j := slurm_scheduler.job(job_id)).state.is_final and j,
                         timeout=15, what="the cancellation")
    assert cancelled.state is JobState.CANCELLED
    slurm_scheduler.cancel(job_id)  # cancelling a finished job is not an error


def test_job_over_a_partition_limit_is_queued_pending_not_refused(slurm_cluster, slurm_scheduler, project):
    # debug allows one node: Slurm keeps the job pending (slurmrestd answers with a job id and an
    # "error"), so the adapter must return the id rather than lose a queued job.
    # One task per node: with fewer tasks than nodes sbatch lowers the node count to fit ("can't
    # run 1 processes on 2 nodes, setting nnodes to 1"), and an idle cluster starts the job.
    job_id = slurm_scheduler.submit(_request(slurm_cluster, project, partition="debug", nodes=2, ntasks=2))
    job = slurm_scheduler.job(job_id)
    assert (job.state, job.account, job.partition) == (JobState.PENDING, project, "debug")
    slurm_scheduler.cancel(job_id)


def test_removed_association_is_gone_and_refuses_jobs(slurm_cluster, slurm_scheduler, project):
    slurm_scheduler.remove_user(project, USER)
    assert [a.user for a in slurm_scheduler.associations([project])] == [None]
    slurm_scheduler.remove_user(project, USER)  # idempotent

    def refused():
        # slurmctld hears of the removal a moment later; a job slipping in is cancelled.
        try:
            job_id = slurm_scheduler.submit(_request(slurm_cluster, project))
        except SchedulerCommandFailed as exc:
            return exc
        slurm_scheduler.cancel(job_id)
        return None

    error = wait_for(refused, timeout=15, what="sbatch to refuse the removed association")
    assert "invalid account" in error.stderr.lower()


def test_unknown_job_raises(slurm_scheduler):
    with pytest.raises(SchedulerError, match="unknown job"):
        slurm_scheduler.job("999999")
