"""Each pool of a grant enforced separately by the real Slurm, and a ledger equal to sacct's.

The portal is compared with Slurm's own tools (sacct, scontrol), never with itself.
"""
from __future__ import annotations

import subprocess
from collections import defaultdict
from datetime import timedelta

import pytest

from portal.clock import utcnow
from portal.devcluster.pytest_plugin import wait_for
from portal.extensions import db
from portal.grants.ingest import ingest_site
from portal.grants.models import GrantStatus
from portal.grants.operations import create_grant, set_grant_status
from portal.grants.reconcile import reconcile_site
from portal.grants.summary import resource_totals
from portal.slurm.parsing import parse_pipe_rows, parse_tres
from portal.slurm.types import JobRequest, JobState
from tests.grant_world import partition, person, pool_account, project_with_team, this_year


def _submit(scheduler, cluster, account: str, user: str, partition_name: str, *, seconds: int, cpus: int = 1,
            gpus: int = 0, minutes: int = 1, array: str | None = None) -> str:
    return scheduler.submit(JobRequest(
        script=f"#!/bin/bash\nsleep {seconds}\n", account=account, partition=partition_name, job_name="pool-test",
        workdir=str(cluster.jobs_dir), time_limit_minutes=minutes, cpus_per_task=cpus, gpus=gpus, user=user,
        array=array, output=f"{cluster.jobs_dir}/pool-test-%j.out"))


def _sacct(cluster, account: str) -> list[dict[str, str]]:
    """sacct itself, run here, not through the portal's adapter."""
    fields = ("JobIDRaw", "State", "ElapsedRaw", "CPUTimeRAW", "AllocTRES")
    output = subprocess.run(["sacct", "-X", "-P", "-n", "--allusers", f"--accounts={account}",
                             "--starttime=now-1days", "--endtime=now+1days", f"--format={','.join(fields)}"],
                            env={**cluster.env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            check=True, timeout=30).stdout
    return list(parse_pipe_rows(output, fields))


def _assoc_mgr_used_minutes(cluster, account: str) -> dict[str, int]:
    """What slurmctld counts against the account's GrpTRESMins: scontrol's LIMIT(USED)."""
    output = subprocess.run(["scontrol", "show", "assoc_mgr", "flags=assoc", f"accounts={account}"],
                            env={**cluster.env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            check=True, timeout=30).stdout
    line = next(line for line in output.splitlines() if "GrpTRESMins=" in line)
    return {key: int(value.split("(")[1].rstrip(")")) for key, value in
            (item.split("=", 1) for item in line.split("GrpTRESMins=")[1].split(","))}


def _wait_final(scheduler, cluster, accounts: list[str], count: int) -> None:
    def final() -> bool:
        rows = [row for account in accounts for row in _sacct(cluster, account)]
        return len(rows) == count and all(JobState(row["State"].split()[0]).is_final for row in rows)
    wait_for(final, 180, f"{count} jobs final in sacct")


def _cpu_grant(site, scheduler, name: str, title: str, core_hours: float = 1):
    """A project whose PI is a real Unix user, a grant on ``cpu`` reconciled into Slurm."""
    pi = person(name, real_user=True)
    project = project_with_team(pi)
    start, end = this_year()
    grant = create_grant(project, title=title, start_date=start, end_date=end, hours={partition(site, "cpu"): core_hours})
    db.session.commit()
    assert reconcile_site(site).run.succeeded
    account = pool_account(grant, "cpu")
    scheduler.wait_for_association(account, pi.unix_username)
    return project, grant, pi, account


def _held_job(scheduler, cluster, account: str, user: str, *, minutes: int = 1, cpus: int = 1) -> str:
    """A job submitted on hold, so it is surely still queued when the test needs it to be."""
    return scheduler.runner.run(
        ["sbatch", "--parsable", "--hold", f"--account={account}", "--partition=cpu", f"--time={minutes}",
         "-c", str(cpus), f"--uid={user}", f"--chdir={cluster.jobs_dir}", "--wrap=sleep 1"]).strip()


@pytest.mark.slow
def test_mixed_workload_per_pool_totals_equal_sacct_to_the_second(cluster_site, slurm_cluster, slurm_scheduler):
    pi, member = person("Weronika Ślązak", real_user=True), person("Mantas Žilinskas", real_user=True)
    project = project_with_team(pi, member)
    start, end = this_year()
    cpu, debug, gpu = (partition(cluster_site, n) for n in ("cpu", "debug", "gpu"))
    grant = create_grant(project, title="Mixed", start_date=start, end_date=end, hours={cpu: 5, debug: 2, gpu: 3})
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    pools = {name: pool_account(grant, name) for name in ("cpu", "debug", "gpu")}
    assert len(set(pools.values())) == 3
    for account in pools.values():
        for user in (pi.unix_username, member.unix_username):
            slurm_scheduler.wait_for_association(account, user)

    jobs = [
        _submit(slurm_scheduler, slurm_cluster, pools["cpu"], pi.unix_username, "cpu", seconds=4, cpus=2),
        _submit(slurm_scheduler, slurm_cluster, pools["cpu"], member.unix_username, "cpu", seconds=2, array="0-2"),
        _submit(slurm_scheduler, slurm_cluster, pools["debug"], member.unix_username, "debug", seconds=3),
        # A GPU job's CPUs: Slurm counts them on the GPU pool's account, which has no CPU limit;
        # the portal charges that pool GPU-time only.
        _submit(slurm_scheduler, slurm_cluster, pools["gpu"], pi.unix_username, "gpu", seconds=5, cpus=2, gpus=2),
        _submit(slurm_scheduler, slurm_cluster, pools["gpu"], member.unix_username, "gpu", seconds=2, cpus=1),
    ]
    assert len(jobs) == 5
    _wait_final(slurm_scheduler, slurm_cluster, list(pools.values()), 7)  # the array is 3 records
    assert ingest_site(cluster_site, slurm_scheduler).charged == 7
    db.session.commit()

    portal = {total.partitions[0]: round(total.used * 3600) for total in resource_totals(grant)}
    sacct: dict[str, int] = defaultdict(int)
    for name, account in pools.items():
        for row in _sacct(slurm_cluster, account):
            if name == "gpu":
                sacct[name] += parse_tres(row["AllocTRES"]).get("gres/gpu", 0) * int(row["ElapsedRaw"])
            else:
                sacct[name] += int(row["CPUTimeRAW"])
    assert all(sacct.values()), sacct
    print(f"per pool (seconds): portal {portal}; sacct {dict(sacct)}")
    assert portal == dict(sacct)  # core-seconds on cpu and debug, GPU-seconds on gpu: to the second
    # And slurmctld's own counters agree with the ledger (Slurm shows whole minutes).
    for name, tres in (("cpu", "cpu"), ("debug", "cpu"), ("gpu", "gres/gpu")):
        assert _assoc_mgr_used_minutes(slurm_cluster, pools[name])[tres] == sacct[name] // 60, name


def test_slurm_holds_a_job_that_would_overrun_its_pool_while_another_pool_runs(cluster_site, slurm_cluster,
                                                                               slurm_scheduler):
    pi = person("Ona Kazlauskienė", real_user=True)
    project = project_with_team(pi)
    start, end = this_year()
    grant = create_grant(project, title="Two pools", start_date=start, end_date=end,
                         hours={partition(cluster_site, "debug"): 2 / 60, partition(cluster_site, "cpu"): 1})
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    debug, cpu = pool_account(grant, "debug"), pool_account(grant, "cpu")
    user = pi.unix_username
    for account in (debug, cpu):
        slurm_scheduler.wait_for_association(account, user)
    # 1 CPU x 5 minutes cannot finish within the debug pool's 2 core-minutes: Slurm holds it.
    held = _submit(slurm_scheduler, slurm_cluster, debug, user, "debug", seconds=1, minutes=5)
    runs = _submit(slurm_scheduler, slurm_cluster, cpu, user, "cpu", seconds=1, minutes=5)
    job = wait_for(lambda: (lambda j: j if j.reason == "AssocGrpCPUMinutesLimit" else None)(slurm_scheduler.job(held)),
                   60, "the debug job to be held by its pool's limit")
    assert job.state is JobState.PENDING
    assert wait_for(lambda: slurm_scheduler.job(runs).state is JobState.COMPLETED, 90, "the cpu job to run")
    # Neither pool's time can be spent on the other's partition: Slurm refuses the account there.
    refused = subprocess.run(["sbatch", "--test-only", f"--account={cpu}", "--partition=debug", f"--uid={user}",
                              "--wrap=true"], env={**slurm_cluster.env, "PATH": "/usr/bin:/bin"},
                             capture_output=True, text=True, timeout=30)
    assert refused.returncode != 0 and "Invalid account or account/partition combination" in refused.stderr
    slurm_scheduler.cancel(held)


def test_a_job_queued_before_expiry_does_not_start_after_it(cluster_site, slurm_cluster, slurm_scheduler):
    _, grant, pi, account = _cpu_grant(cluster_site, slurm_scheduler, "Jan Kowalski", "Expiring")
    job_id = _held_job(slurm_scheduler, slurm_cluster, account, pi.unix_username)
    set_grant_status(grant, GrantStatus.EXPIRED)
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    wait_for(lambda: _assoc_limits(slurm_cluster, account) == ("0", "0"), 30, "slurmctld to learn GrpJobs=0")
    slurm_scheduler.runner.run(["scontrol", "release", job_id])
    job = wait_for(lambda: (lambda j: j if j.reason == "AssocGrpJobsLimit" else None)(slurm_scheduler.job(job_id)),
                   60, "the queued job to be held by the expiry")
    assert job.state is JobState.PENDING
    # Several scheduler passes later it still has not started.
    subprocess.run(["sleep", "6"], check=True)
    assert slurm_scheduler.job(job_id).state is JobState.PENDING
    slurm_scheduler.cancel(job_id)


def _assoc_limits(cluster, account: str) -> tuple[str, str]:
    output = subprocess.run(["scontrol", "show", "assoc_mgr", "flags=assoc", f"accounts={account}"],
                            env={**cluster.env, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True,
                            timeout=30).stdout
    head = output.split("ClusterName=")[1] if "ClusterName=" in output else ""
    jobs = head.split("GrpJobs=")[1].split("(")[0] if "GrpJobs=" in head else "?"
    submit = head.split("GrpSubmitJobs=")[1].split("(")[0] if "GrpSubmitJobs=" in head else "?"
    return jobs, submit


def test_a_new_grant_period_starts_from_zero_and_nothing_carries_over(cluster_site, slurm_cluster, slurm_scheduler):
    pi = person("Rasa Petrauskaitė", real_user=True)
    project = project_with_team(pi)
    today = utcnow().date()
    cpu = partition(cluster_site, "cpu")
    old = create_grant(project, title="2025", start_date=today - timedelta(days=365), end_date=today + timedelta(days=1),
                       hours={cpu: 1})
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    old_account, user = pool_account(old, "cpu"), pi.unix_username
    slurm_scheduler.wait_for_association(old_account, user)
    spent = _submit(slurm_scheduler, slurm_cluster, old_account, user, "cpu", seconds=3, cpus=2)
    wait_for(lambda: slurm_scheduler.job(spent).state.is_final, 60, "the old grant's job")

    new = create_grant(project, title="2026", start_date=today + timedelta(days=1), end_date=today + timedelta(days=366),
                       hours={cpu: 2})
    db.session.commit()
    tomorrow = today + timedelta(days=1)
    assert reconcile_site(cluster_site, today=tomorrow).run.succeeded  # the day the periods change
    new_account = pool_account(new, "cpu")
    assert new_account != old_account
    usage = slurm_scheduler.account_usage([old_account, new_account])
    # The new period's limit is exactly its award, its counter starts at zero ...
    assert usage[new_account].limits == {"cpu": 120} and usage[new_account].used.get("cpu", 0) == 0
    # ... and the old period's unused time cannot be spent any more.
    assert (usage[old_account].submit_jobs_limit, usage[old_account].running_jobs_limit) == (0, 0)
    assert usage[old_account].limits == {"cpu": 60}


def test_job_validation_uses_what_slurm_still_allows_minus_queued_jobs(app, cluster_site, slurm_cluster,
                                                                        slurm_scheduler, monkeypatch):
    from portal.jobs.operations import job_templates, plan_job

    monkeypatch.setitem(app.config, "JOB_WORKDIR_ROOT", str(slurm_cluster.jobs_dir))
    project, grant, pi, account = _cpu_grant(cluster_site, slurm_scheduler, "Marta Zielińska", "Live")
    serial = job_templates()[0]["serial"]
    fresh = plan_job(pi, serial, project, partition(cluster_site, "cpu"), {"time": "30"})
    assert fresh.ok, fresh.errors
    assert (fresh.remaining_minutes, fresh.queued_minutes, fresh.notes) == (60, 0, [])
    # A job already waiting in the queue (2 CPUs x 20 minutes) will spend its share first.
    waiting = _held_job(slurm_scheduler, slurm_cluster, account, pi.unix_username, minutes=20, cpus=2)
    try:
        plan = plan_job(pi, serial, project, partition(cluster_site, "cpu"), {"time": "30"})
        assert (plan.remaining_minutes, plan.queued_minutes) == (20, 40)
        assert plan.errors["partition"] == [
            "this job may use up to 0.5 core-hours, more than the 0.33 core-hours the grant still allows on cpu"
            " (after 0.67 core-hours held by jobs already queued)"]
        assert plan_job(pi, serial, project, partition(cluster_site, "cpu"), {"time": "20"}).ok
    finally:
        slurm_scheduler.cancel(waiting)


@pytest.mark.disturbs_slurm
def test_a_maxtime_changed_in_slurm_is_followed_within_the_ttl(app, cluster_site, slurm_cluster, slurm_scheduler,
                                                               monkeypatch):
    from portal.jobs.operations import job_templates, plan_job

    monkeypatch.setitem(app.config, "PARTITION_LIMITS_TTL", 1.0)
    monkeypatch.setitem(app.config, "JOB_WORKDIR_ROOT", str(slurm_cluster.jobs_dir))
    pi = person("Tomas Jankauskas", real_user=True)
    project = project_with_team(pi)
    start, end = this_year()
    create_grant(project, title="TTL", start_date=start, end_date=end, hours={partition(cluster_site, "cpu"): 10})
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    serial = job_templates()[0]["serial"]
    assert plan_job(pi, serial, project, partition(cluster_site, "cpu"), {"time": "45"}).ok
    slurm_scheduler.runner.run(["scontrol", "update", "PartitionName=cpu", "MaxTime=20"])
    try:
        subprocess.run(["sleep", "1.2"], check=True)  # older than the TTL now
        plan = plan_job(pi, serial, project, partition(cluster_site, "cpu"), {"time": "45"})
        assert plan.errors["time"] == ["--time 45 min exceeds partition cpu's MaxTime of 20 min"]
    finally:
        slurm_scheduler.runner.run(["scontrol", "update", "PartitionName=cpu", "MaxTime=60"])
