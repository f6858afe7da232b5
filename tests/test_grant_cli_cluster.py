"""``flask slurm`` against the real test cluster, and a web approval that reaches Slurm."""
from __future__ import annotations

import threading

from portal.devcluster.pytest_plugin import unique_name, wait_for
from portal.extensions import db
from portal.grants.operations import create_grant
from portal.grants.requests import ask_for_change
from portal.identity.models import Role
from portal.slurm.types import JobRequest
from tests.conftest import csrf_token_from, sign_in
from tests.grant_world import (cluster_site, partition, person, project_with_team, slurm_associations,  # noqa: F401
                               this_year)

pytest_plugins = ["portal.devcluster.pytest_plugin"]


def _grant(site, hours: float = 10, real_user: bool = False):
    pi = person("Bożena Żak", real_user=real_user)
    project = project_with_team(pi)
    start, end = this_year()
    grant = create_grant(project, title="CLI", start_date=start, end_date=end, hours={partition(site, "cpu"): hours})
    db.session.commit()
    return project, grant, pi


def test_sync_dry_run_sync_twice_and_drift(app, cluster_site, slurm_scheduler):
    project, _, pi = _grant(cluster_site)
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["slurm", "sync", "--dry-run", cluster_site.name])
    assert dry.exit_code == 0, dry.output
    assert "would run" in dry.output and "add account" in dry.output and "add user" in dry.output
    assert slurm_associations(slurm_scheduler, project.code.replace("-", "_")) == {}  # nothing happened

    done = runner.invoke(args=["slurm", "sync", cluster_site.name])
    assert done.exit_code == 0 and "ran " in done.output, done.output
    assert set(slurm_associations(slurm_scheduler, project.slurm_account)) == {None, pi.unix_username}
    again = runner.invoke(args=["slurm", "sync", cluster_site.name])
    assert "ran 0 command(s)" in again.output

    top = app.config["SLURM_TOP_ACCOUNT"]
    stray = unique_name("stray")
    slurm_scheduler.add_account(stray, parent=top)
    report = runner.invoke(args=["slurm", "drift", cluster_site.name])
    assert f"account {stray} (parent {top})" in report.output
    assert slurm_associations(slurm_scheduler, stray)  # reported, not removed
    removed = runner.invoke(args=["slurm", "drift", "--remove", cluster_site.name])
    assert "removed with" in removed.output and "FAILED" not in removed.output
    assert slurm_associations(slurm_scheduler, stray) == {}
    assert set(slurm_associations(slurm_scheduler, project.slurm_account)) == {None, pi.unix_username}


def test_ingest_command_shows_progress_and_what_it_charged(app, cluster_site, slurm_cluster, slurm_scheduler):
    project, _, pi = _grant(cluster_site, real_user=True)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["slurm", "sync"]).exit_code == 0
    slurm_scheduler.wait_for_association(project.slurm_account, pi.unix_username)
    job = slurm_scheduler.submit(JobRequest(script="#!/bin/bash\ntrue\n", account=project.slurm_account, partition="cpu",
                                            job_name="cli", workdir=str(slurm_cluster.jobs_dir), time_limit_minutes=1,
                                            user=pi.unix_username, output=f"{slurm_cluster.jobs_dir}/cli-%j.out"))
    wait_for(lambda: slurm_scheduler.job(job).state.is_final, 60, "the job to end")
    result = wait_for(lambda: (lambda r: r if "1 charged" in r.output else None)(
        runner.invoke(args=["slurm", "ingest", cluster_site.name])), 30, "the job in accounting")
    assert "storing jobs" in result.output and "1 job(s) read, 1 charged to a grant" in result.output


def test_staff_approval_on_the_web_raises_the_slurm_limit_after_the_commit(app, cluster_site, slurm_scheduler,
                                                                        make_user, monkeypatch):
    monkeypatch.setitem(app.config, "SLURM_SYNC_AFTER_CHANGE", True)
    project, grant, pi = _grant(cluster_site, hours=10)
    assert app.test_cli_runner().invoke(args=["slurm", "sync"]).exit_code == 0
    assert slurm_associations(slurm_scheduler, project.slurm_account)[None]["tres"] == {"cpu": 600}
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
    assert statuses == [302, False]
    assert slurm_associations(slurm_scheduler, project.slurm_account)[None]["tres"] == {"cpu": 900}
