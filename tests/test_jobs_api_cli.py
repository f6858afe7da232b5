"""Submitting, following and cancelling through the JSON API and ``flask jobs``, on the real cluster."""
from __future__ import annotations

from portal.devcluster.pytest_plugin import wait_for
from portal.extensions import db
from portal.jobs.models import SubmittedJob
from tests.conftest import csrf_token_from, sign_in


def test_api_submit_pending_with_reason_then_cancel_and_a_finished_jobs_output(app, cluster_job_world, slurm_scheduler,
                                                                             reconciler_service):
    world = cluster_job_world
    client = app.test_client()
    sign_in(client, world.member[1], world.member[2])
    headers = {"X-CSRFToken": csrf_token_from(client.get("/jobs/").get_data(as_text=True))}
    body = {"template": "serial", "project_id": world.project_id, "partition_id": world.partition_ids["cpu"],
            "job_name": "api-serial", "values": {"time": "2", "work": 10}}
    done = client.post("/api/jobs", json=body, headers=headers)
    assert done.status_code == 201, done.get_json()
    assert done.get_json()["unix_user"] == world.unix_user and done.get_json()["account"] == f"{world.account}_cpu"

    def finished():
        job = client.get(f"/api/jobs/{done.get_json()['id']}").get_json()
        return job if job["state"] == "COMPLETED" else None

    job = wait_for(finished, timeout=120, what="the serial job to complete")
    assert "sum 45" in job["output"][0]["tail"] and job["output"][0]["file"] == f"slurm-{job['slurm_job_id']}.out"
    assert job["script"].startswith("#!/bin/bash\n#SBATCH --job-name=api-serial\n")

    # Slurm's own limit holds the next job: it stays pending, and the portal shows why.
    slurm_scheduler.modify_account(world.account, grp_tres_mins={"cpu": 1})
    try:
        body.update(job_name="api-held", values={"time": "5"})
        held = client.post("/api/jobs", json=body, headers=headers).get_json()

        def pending_reason():
            job = client.get(f"/api/jobs/{held['id']}").get_json()
            return job if job["state"] == "PENDING" and job["reason"] else None

        pending = wait_for(pending_reason, timeout=60, what="a pending reason")
        assert pending["reason"] == "AssocGrpCPUMinutesLimit"
        listed = {j["id"]: j for j in client.get("/api/jobs").get_json()}
        assert listed[held["id"]]["state"] == "PENDING"
        assert client.post(f"/api/jobs/{held['id']}/cancel", headers=headers).status_code == 200
        wait_for(lambda: client.get(f"/api/jobs/{held['id']}").get_json()["state"] == "CANCELLED",
                 timeout=60, what="the cancelled state")
    finally:
        slurm_scheduler.modify_account(world.account, grp_tres_mins={"cpu": -1})


def test_cli_templates_render_submit_list_cancel(app, cluster_job_world):
    world = cluster_job_world
    runner = app.test_cli_runner()
    with app.app_context():
        code = world.project().code
    listing = runner.invoke(args=["jobs", "templates"])
    assert listing.exit_code == 0 and "benchmark" in listing.output and "multigpu" in listing.output
    common = ["--email", world.member[1], "--project", code, "--partition", "Local cluster/debug"]
    refused = runner.invoke(args=["jobs", "render", "serial", *common, "--set", "time=90"])
    assert refused.exit_code == 1
    assert "--time 90 min exceeds partition debug's MaxTime of 10 min" in refused.output
    rendered = runner.invoke(args=["jobs", "render", "openmp", *common, "--set", "threads=1", "--set", "time=3"])
    assert rendered.exit_code == 0, rendered.output
    assert "#SBATCH --cpus-per-task=1\n" in rendered.output and "#SBATCH --time=3\n" in rendered.output
    assert (f"# largest possible cost: 0.05 core-hours; the grant still allows 100 core-hours on this pool"
            f" (account {world.account}_debug)") in rendered.output
    assert "# note:" not in rendered.output  # Slurm answered: its own numbers, no fallback
    submitted = runner.invoke(args=["jobs", "submit", "openmp", *common, "--set", "threads=1", "--job-name", "cli-omp"])
    assert submitted.exit_code == 0, submitted.output
    with app.app_context():
        job = db.session.query(SubmittedJob).filter_by(job_name="cli-omp").one()
        job_id, slurm_id = job.id, job.slurm_job_id

    def listed_final():
        out = runner.invoke(args=["jobs", "list", "--email", world.member[1]]).output
        return out if f"{slurm_id} COMPLETED" in " ".join(out.split()) else None

    wait_for(listed_final, timeout=120, what="the CLI to list the job as completed")
    cancelled = runner.invoke(args=["jobs", "cancel", str(job_id), "--email", world.outsider[1]])
    assert cancelled.exit_code == 1 and f"No job {job_id}" in cancelled.output
