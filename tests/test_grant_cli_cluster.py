"""``flask slurm`` against the real test cluster, and a web approval that reaches Slurm."""
from __future__ import annotations

import threading

import pytest

from portal.devcluster.pytest_plugin import unique_name, wait_for
from portal.extensions import db
from portal.grants.operations import create_grant
from portal.grants.requests import ask_for_change
from portal.identity.models import Role
from portal.slurm.types import JobRequest
from tests.conftest import csrf_token_from, sign_in
from tests.grant_world import ADAPTERS, partition, person, pool_account, project_with_team, slurm_associations, this_year


def _grant(site, hours: float = 10, real_user: bool = False):
    pi = person("Bożena Żak", real_user=real_user)
    project = project_with_team(pi)
    start, end = this_year()
    grant = create_grant(project, title="CLI", start_date=start, end_date=end, hours={partition(site, "cpu"): hours})
    db.session.commit()
    return project, grant, pi


@pytest.mark.parametrize("site_adapter", ADAPTERS)
def test_sync_dry_run_sync_twice_and_drift(app, cluster_site, slurm_scheduler):
    project, grant, pi = _grant(cluster_site)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["slurm", "sync", "--dry-run", cluster_site.name])
    assert dry.exit_code == 0, dry.output
    assert "would run" in dry.output and "add account" in dry.output and "add user" in dry.output
    assert slurm_associations(slurm_scheduler, project.code.replace("-", "_")) == {}  # nothing happened

    done = runner.invoke(args=["slurm", "sync", cluster_site.name])
    assert done.exit_code == 0 and "ran " in done.output, done.output
    cpu_pool = pool_account(grant, "cpu")
    assert set(slurm_associations(slurm_scheduler, cpu_pool)) == {None, (pi.unix_username, "cpu")}
    again = runner.invoke(args=["slurm", "sync", cluster_site.name])
    assert "ran 0 command(s)" in again.output
    clean = runner.invoke(args=["slurm", "drift", cluster_site.name])
    assert "0 account(s), 0 user association(s) not in the portal; 0 limit(s) changed by hand" in clean.output

    # What a hurried admin does by hand: a stray account, a partition-level association in a
    # portal account (it would spend the grant), limits changed on the account and the user.
    top = app.config["SLURM_TOP_ACCOUNT"]
    stray = unique_name("stray")
    slurm_scheduler.add_account(stray, parent=top)
    intruder = person("Intruder").unix_username
    slurm_scheduler.sacctmgr(["add", "user", intruder, f"account={cpu_pool}", "partition=debug"])
    slurm_scheduler.sacctmgr(["modify", "account", "where", f"name={cpu_pool}", "set",
                              "GrpTRESMins=cpu=999999", "GrpSubmitJobs=7"])
    slurm_scheduler.sacctmgr(["modify", "user", "where", f"name={pi.unix_username}", f"account={cpu_pool}",
                              "partition=cpu", "set", "GrpJobs=3"])
    report = runner.invoke(args=["slurm", "drift", cluster_site.name])
    assert f"account {stray} (parent {top})" in report.output
    assert f"user {intruder} in {cpu_pool} on partition debug" in report.output
    assert f"account {cpu_pool}: GrpTRESMins is cpu=999999, the portal awarded cpu=600" in report.output
    assert f"account {cpu_pool}: GrpSubmitJobs is 7, the portal awarded none" in report.output
    assert f"user {pi.unix_username} in {cpu_pool} on partition cpu has limits set by hand: GrpJobs=3" in report.output
    assert slurm_associations(slurm_scheduler, stray)  # reported, not removed
    removed = runner.invoke(args=["slurm", "drift", "--remove", cluster_site.name])
    assert "removed and reset with" in removed.output and "FAILED" not in removed.output
    assert slurm_associations(slurm_scheduler, stray) == {}
    # sacctmgr itself shows exactly what was awarded again.
    assert slurm_associations(slurm_scheduler, cpu_pool) == {
        None: {"tres": {"cpu": 600}, "submit": None, "jobs": None, "parent": project.slurm_account},
        (pi.unix_username, "cpu"): {"tres": {}, "submit": None, "jobs": None, "parent": ""}}
    assert "0 account(s), 0 user association(s)" in runner.invoke(args=["slurm", "drift", cluster_site.name]).output


def test_ingest_command_shows_progress_and_what_it_charged(app, cluster_site, slurm_cluster, slurm_scheduler):
    project, grant, pi = _grant(cluster_site, real_user=True)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["slurm", "sync"]).exit_code == 0
    account = pool_account(grant, "cpu")
    slurm_scheduler.wait_for_association(account, pi.unix_username)
    job = slurm_scheduler.submit(JobRequest(script="#!/bin/bash\ntrue\n", account=account, partition="cpu",
                                            job_name="cli", workdir=str(slurm_cluster.jobs_dir), time_limit_minutes=1,
                                            user=pi.unix_username, output=f"{slurm_cluster.jobs_dir}/cli-%j.out"))
    wait_for(lambda: slurm_scheduler.job(job).state.is_final, 60, "the job to end")
    result = wait_for(lambda: (lambda r: r if "1 charged" in r.output else None)(
        runner.invoke(args=["slurm", "ingest", cluster_site.name])), 30, "the job in accounting")
    assert "storing jobs" in result.output and "1 job(s) read, 1 charged to a grant" in result.output


def test_staff_approval_on_the_web_raises_the_slurm_limit_through_the_service(app, cluster_site, slurm_scheduler,
                                                                           make_user, reconciler_service):
    project, grant, pi = _grant(cluster_site, hours=10)
    wait_for(lambda: slurm_associations(slurm_scheduler, pool_account(grant, "cpu")).get(None, {}).get("tres")
             == {"cpu": 600}, 30, "the service to apply the award")
    change = ask_for_change(grant, pi, reason="Więcej", hours=5, partition=partition(cluster_site, "cpu"))
    db.session.commit()
    change_id, grant_id = change.id, grant.id
    _, email, password = make_user(Role.STAFF)
    statuses: list = []

    def staff_approves():  # in a thread of its own: requests get their own app context, as in a server
        client = app.test_client()
        sign_in(client, email, password)
        token = csrf_token_from(client.get(f"/grants/{grant_id}").get_data(as_text=True))
        statuses.append(client.post(f"/grants/requests/{change_id}/decide",
                                    data={"csrf_token": token, "decision": "approve"}).status_code)
        statuses.append("Changes waiting for Slurm" in client.get(f"/grants/{grant_id}").get_data(as_text=True))

    worker = threading.Thread(target=staff_approves)
    worker.start()
    worker.join()
    assert statuses[0] == 302
    account = pool_account(grant, "cpu")
    wait_for(lambda: slurm_associations(slurm_scheduler, account)[None]["tres"] == {"cpu": 900}, 30,
             "the service to raise the limit")


def test_two_top_ups_approved_at_the_same_moment_both_reach_slurm(app, cluster_site, slurm_scheduler, make_user,
                                                                  reconciler_service):
    project, grant, pi = _grant(cluster_site, hours=10)

    def account_ready():
        return slurm_associations(slurm_scheduler, pool_account(grant, "cpu")).get(None, {})

    wait_for(lambda: account_ready().get("tres") == {"cpu": 600}, 30, "the service to apply the award")
    cpu = partition(cluster_site, "cpu")
    requests = [ask_for_change(grant, pi, reason=f"Więcej {n}", hours=5, partition=cpu).id for n in (1, 2)]
    db.session.commit()
    grant_id = grant.id
    staff = [make_user(Role.STAFF) for _ in range(2)]
    barrier = threading.Barrier(2)
    statuses: list = []

    def approve(who, request_id):  # each in its own thread: its own app context, as in a server
        client = app.test_client()
        sign_in(client, who[1], who[2])
        token = csrf_token_from(client.get(f"/grants/{grant_id}").get_data(as_text=True))
        barrier.wait()
        statuses.append(client.post(f"/grants/requests/{request_id}/decide",
                                    data={"csrf_token": token, "decision": "approve"}).status_code)

    workers = [threading.Thread(target=approve, args=(who, rid)) for who, rid in zip(staff, requests)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert statuses == [302, 302]
    db.session.expire_all()
    assert grant.allocations[0].awarded_minutes == 600 + 300 + 300  # neither top-up lost
    wait_for(lambda: account_ready().get("tres") == {"cpu": 1200}, 30, "Slurm to hold both top-ups")
