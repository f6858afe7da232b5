"""Following a job without Slurm: output and error tails, stored efficiency on page, API and CLI,
and "submit again with changes" only for people who may see the job."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from portal.extensions import db
from portal.jobs.models import JobEfficiencyRecord, SubmittedJob
from portal.jobs.operations import job_template, jobs_to_follow, plan_job
from portal.jobs.output import output_tails
from portal.slurm.parsing import efficiency_from_sacct
from tests.conftest import csrf_token_from, signed_in_client
from tests.job_world import FAILED_WITH_STEPS


def _job(app, world, **values) -> int:
    """A stored job as submit_job would store it, from a real plan (no Slurm needed to plan)."""
    with app.app_context():
        plan = plan_job(world.user(), job_template("serial"), world.project(), world.partition("cpu"),
                        {"time": "7", **values}, "follow-me")
        assert plan.ok, plan.errors
        job = SubmittedJob(site_id=world.site_id, partition=plan.partition, project=plan.project, user=world.user(),
                           slurm_job_id="4711", template="serial", job_name=plan.job_name, unix_user=world.unix_user,
                           account=plan.account, workdir=plan.workdir, script=plan.script, parameters=plan.values,
                           max_cost_minutes=plan.cost_minutes, last_state="FAILED",
                           state_seen_at=datetime.now(UTC).replace(tzinfo=None))
        db.session.add(job)
        db.session.commit()
        return job.id


def test_output_and_error_files_are_found_from_the_header_and_never_through_links(app, job_world, tmp_path):
    folder = tmp_path / "jobs" / "jobtester"
    (folder / "out").mkdir(parents=True)
    (folder / "out" / "slurm-77.out").write_text("to stdout\n")
    (folder / "slurm-demo-77.err").write_text("to stderr\n")
    (folder / "slurm-demo-78.err").write_text("another job\n")
    script = (f"#!/bin/bash\n#SBATCH --job-name=demo\n#SBATCH --output={folder}/out/slurm-%j.out\n"
              f"#SBATCH --error={folder}/slurm-%x-%j.err\necho hi\n#SBATCH --error=/etc/shadow\n")
    with app.app_context():
        job = SubmittedJob(slurm_job_id="77", job_name="demo", unix_user="jobtester", workdir=str(folder),
                           script=script)
        assert [(t.file, t.stream, t.text) for t in output_tails(job)] == [
            ("out/slurm-77.out", "output", "to stdout\n"), ("slurm-demo-77.err", "error", "to stderr\n")]
        outside = SubmittedJob(slurm_job_id="77", job_name="demo", unix_user="jobtester", workdir=str(folder),
                               script=f"#!/bin/bash\n#SBATCH --output={folder}/out/slurm-%j.out\n"
                                      "#SBATCH --error=/etc/slurm-%j.err\n")
        assert [t.file for t in output_tails(outside)] == ["out/slurm-77.out"]
        # The user swaps their output folder for a link: it is not followed.
        (folder / "out").rename(folder / "elsewhere")
        (folder / "out").symlink_to(folder / "elsewhere")
        assert [t.file for t in output_tails(job)] == ["slurm-demo-77.err"]


def test_array_task_files_match_their_job_only(app, job_world, tmp_path):
    folder = tmp_path / "jobs" / "jobtester"
    folder.mkdir(parents=True)
    for name in ("slurm-90_0.out", "slurm-90_1.out", "slurm-900_0.out", "slurm-90_x.out"):
        (folder / name).write_text(name)
    with app.app_context():
        job = SubmittedJob(slurm_job_id="90", job_name="a", unix_user="jobtester", workdir=str(folder),
                           script=f"#!/bin/bash\n#SBATCH --output={folder}/slurm-%A_%a.out\n")
        assert [t.file for t in output_tails(job)] == ["slurm-90_0.out", "slurm-90_1.out"]


def test_the_submit_again_form_starts_from_the_job_for_those_who_may_see_it(app, job_world):
    job_id = _job(app, job_world, label="second")
    member, outsider = signed_in_client(app, job_world.member), signed_in_client(app, job_world.outsider)
    page = member.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert f'href="/jobs/new/serial?from={job_id}"' in page
    form = member.get(f"/jobs/new/serial?from={job_id}").get_data(as_text=True)
    assert 'value="follow-me"' in form and 'value="7"' in form and 'value="second"' in form
    assert member.get(f"/jobs/new/mpi?from={job_id}").status_code == 404  # another template
    assert member.get("/jobs/new/serial?from=x").status_code == 404
    assert outsider.get(f"/jobs/new/serial?from={job_id}").status_code == 404
    token = csrf_token_from(form)
    preview = member.post(f"/api/jobs/{job_id}/resubmit/preview", json={"values": {"time": "9"}},
                          headers={"X-CSRFToken": token}).get_json()
    assert preview["ok"], preview["errors"]
    assert "#SBATCH --time=9\n" in preview["script"] and "RUN_LABEL=second" in preview["script"]
    token = csrf_token_from(outsider.get("/jobs/").get_data(as_text=True))
    for url in (f"/api/jobs/{job_id}/resubmit/preview", f"/api/jobs/{job_id}/resubmit"):
        assert outsider.post(url, json={"values": {}}, headers={"X-CSRFToken": token}).status_code == 404
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["jobs", "resubmit", str(job_id), "--email", job_world.member[1], "--set", "time=8",
                              "--dry-run"])
    assert dry.exit_code == 0 and "#SBATCH --time=8\n" in dry.output, dry.output
    refused = runner.invoke(args=["jobs", "resubmit", str(job_id), "--email", job_world.outsider[1], "--dry-run"])
    assert refused.exit_code != 0 and "No job" in refused.output


def test_a_stored_efficiency_shows_on_page_api_and_cli_and_ends_the_following(app, job_world):
    job_id = _job(app, job_world)
    with app.app_context():
        assert job_id in [j.id for j in jobs_to_follow()]  # ended, efficiency not read yet
    member = signed_in_client(app, job_world.member)
    assert "Waiting for Slurm" in member.get(f"/jobs/{job_id}").get_data(as_text=True)
    with app.app_context():
        db.session.get(SubmittedJob, job_id).efficiency = JobEfficiencyRecord.of(
            efficiency_from_sacct(FAILED_WITH_STEPS, "2"))
        db.session.commit()
        assert job_id not in [j.id for j in jobs_to_follow()]
    page = member.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert "25.76% of 0:00:26 core-walltime (2 CPUs)" in page and "96.21 MiB at most" in page
    api = member.get(f"/api/jobs/{job_id}").get_json()["efficiency"]
    assert (api["state"], api["exit_code"], api["max_rss_kib"], api["total_cpu_seconds"]) == ("FAILED", "3:0", 98516, 6.697)
    assert round(api["cpu_efficiency"], 4) == 0.2576 and api["gpu_seconds"] == 0
    shown = app.test_cli_runner().invoke(args=["jobs", "show", str(job_id), "--email", job_world.member[1]])
    assert shown.exit_code == 0 and "CPU efficiency: 25.76%" in shown.output and "state: FAILED" in shown.output


def test_jobs_that_ended_long_ago_are_not_followed(app, job_world):
    job_id = _job(app, job_world)
    with app.app_context():
        db.session.get(SubmittedJob, job_id).state_seen_at -= timedelta(days=2)
        db.session.commit()
        assert job_id not in [j.id for j in jobs_to_follow()]
