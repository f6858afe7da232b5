"""Every shipped template, rendered at a small size and run on the real test cluster."""
from __future__ import annotations

import pytest

from portal.devcluster.pytest_plugin import wait_for
from portal.extensions import db
from portal.jobs.models import SubmittedJob
from portal.jobs.operations import job_templates, plan_job, refresh_states, submit_job
from portal.slurm.types import JobState
from tests.conftest import sign_in
from tests.test_jobs_fixtures import cluster_job_world  # noqa: F401  (fixture)

SMALL = {
    "serial": ("cpu", {"time": "2", "work": "1000"}, ["sum 499500", "label run1"]),
    "openmp": ("cpu", {"time": "2", "threads": "2"}, ["OMP_NUM_THREADS=2 OMP_SCHEDULE=static", "cpus available"]),
    "mpi": ("cpu", {"time": "2", "ntasks": "2"}, ["rank 0 of 2: allreduce 3", "rank 1 of 2: allreduce 3"]),
    "hybrid": ("cpu", {"time": "2", "ntasks": "1", "threads": "2"}, ["rank 0 of 1: threads 2"]),
    "gpu": ("gpu", {"time": "2"}, ["GPU job", "done"]),
    "multigpu": ("gpu", {"time": "2", "gpus": "2", "ntasks": "2"}, ["task 0 sees GPUs", "task 1 sees GPUs"]),
    "array": ("cpu", {"time": "2", "tasks": "2"}, ["handling input-0", "handling input-1"]),
    "benchmark": ("cpu", {"time": "3", "ntasks": "2", "benchmarks": "pingpong"}, ["result document:"]),
}


def test_every_shipped_template_has_a_small_run_here(app):
    with app.app_context():
        assert set(job_templates()[0]) == set(SMALL)


def _final_state(app, job_id: int):
    with app.app_context():
        job = db.session.get(SubmittedJob, job_id)
        refresh_states([job])
        db.session.commit()
        return job.last_state if JobState(job.last_state).is_final else None


@pytest.mark.parametrize("name", sorted(SMALL))
def test_template_runs_to_completion_and_its_output_is_readable(app, cluster_job_world, name):
    world = cluster_job_world
    partition, values, expected_output = SMALL[name]
    with app.app_context():
        if partition == "gpu" and ("gpu" not in world.partition_ids or world.partition("gpu").gpus_per_node == 0):
            pytest.skip("the test cluster has no 'gpu' partition with GPUs, so GPU templates cannot run here")
        template = job_templates()[0][name]
        plan = plan_job(world.user(), template, world.project(), world.partition(partition), values, f"t-{name}")
        assert plan.ok, plan.errors
        directives = [line for line in plan.script.splitlines() if line.startswith("#SBATCH")]
        assert directives[:4] == [f"#SBATCH --job-name=t-{name}", f"#SBATCH --account={world.account}_{partition}",
                                  f"#SBATCH --partition={partition}", f"#SBATCH --time={values['time']}"]
        job = submit_job(plan, world.user())
        db.session.commit()
        job_id, slurm_id = job.id, job.slurm_job_id
    state = wait_for(lambda: _final_state(app, job_id), timeout=240, what=f"{name} job {slurm_id} to finish")
    client = app.test_client()
    sign_in(client, world.member[1], world.member[2])
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert state == "COMPLETED", page
    for text in expected_output:
        assert text in page
    assert "done" in page or "result document" in page
    if name == "benchmark":
        import pathlib

        assert (pathlib.Path(world_workdir(app, job_id)) / f"benchmark-{slurm_id}.json").stat().st_size > 0


def world_workdir(app, job_id: int) -> str:
    with app.app_context():
        return db.session.get(SubmittedJob, job_id).workdir
