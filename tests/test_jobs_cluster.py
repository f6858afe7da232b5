"""Every shipped template, rendered with the user's own program and run on the real test cluster.

Also on the cluster: sbatch --test-only accepts every rendered script (hostile values
included) and reads no directive the portal did not write; an array's throttle shows in
``scontrol show job``; a dependent job starts only after its parent completed.
"""
from __future__ import annotations

import os
import pwd
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from portal.devcluster.pytest_plugin import wait_for
from portal.extensions import db
from portal.jobs.models import SubmittedJob
from portal.jobs.operations import _user_workdir, job_templates, plan_job, refresh_states, submit_job
from portal.slurm.types import JobRequest, JobState
from tests.conftest import sign_in
from tests.hostile import HOSTILE

MPI_PROGRAM = '''cat > hello_mpi.py <<'EOF'
import sys
from mpi4py import MPI
c = MPI.COMM_WORLD
print(f"user program rank {c.rank} of {c.size}: {sys.argv[1]} sum {c.allreduce(c.rank + 1)}", flush=True)
EOF'''
SMALL = {
    "serial": ("cpu", {"time": "2", "label": "run7", "command": 'name="it\'s $RUN_LABEL"\n'
                       'printf "%s\\n" "user says: $name" | tr a-z A-Z\npython3 -c \'print(6 * 7)\''},
               ["USER SAYS: IT'S RUN7", "42", "commands finished with status 0"]),
    "openmp": ("cpu", {"time": "2", "threads": "2", "program": 'echo "threads=$OMP_NUM_THREADS bind=$OMP_PROC_BIND"'},
               ["threads=2 bind=close", "OMP_SCHEDULE=static"]),
    "mpi": ("cpu", {"time": "2", "ntasks": "2", "per_node": "2", "setup": MPI_PROGRAM,
                    "program": '"$PYTHON" hello_mpi.py "a b"'},
            ["user program rank 0 of 2: a b sum 3", "user program rank 1 of 2: a b sum 3"]),
    "hybrid": ("cpu", {"time": "2", "ntasks": "1", "threads": "2", "places": "threads", "bind": "spread",
                       "program": 'echo "rank $SLURM_PROCID threads $OMP_NUM_THREADS places $OMP_PLACES"'},
               ["rank 0 threads 2 places threads", "OMP_PROC_BIND=spread"]),
    "gpu": ("gpu", {"time": "2", "program": 'echo "my GPU program sees ${CUDA_VISIBLE_DEVICES:-none}"'},
            ["my GPU program sees"]),
    "multigpu": ("gpu", {"time": "2", "gpus": "2", "ntasks": "2", "program": 'echo "my task $SLURM_PROCID"'},
                 ["my task 0", "my task 1"]),
    "array": ("cpu", {"time": "2", "tasks": "2", "throttle": "1", "inputs": "inputs/*.txt",
                      "program": 'echo "counted $(wc -l < "$1") lines in $INPUT_FILE"'},
              ["counted 1 lines in inputs/a.txt", "counted 2 lines in inputs/b.txt"]),
    "benchmark": ("cpu", {"time": "3", "ntasks": "2", "benchmarks": "pingpong"}, ["result document:"]),
    # The shipped tiny model, trained by two processes with gloo (the test cluster's GPUs are fake).
    "pytorch": ("gpu", {"time": "5", "gpus": "2"}, ["trained on 2 processes", "weight 3.000 bias 2.000",
                                                    "training finished with status 0"]),
}
CANNOT_RUN_HERE = {"container": "neither apptainer nor singularity is installed (apt-cache shows no package)"}


def test_every_shipped_template_has_a_small_run_here(app):
    with app.app_context():
        assert set(job_templates()[0]) == set(SMALL) | set(CANNOT_RUN_HERE)


def _final_state(app, job_id: int):
    with app.app_context():
        job = db.session.get(SubmittedJob, job_id)
        refresh_states([job])
        db.session.commit()
        return job.last_state if JobState(job.last_state).is_final else None


def _input_files(app, world) -> None:
    """The array's inputs, in the user's job folder as the user would have put them."""
    with app.app_context():
        folder = Path(_user_workdir(str(Path(app.config["JOB_WORKDIR_ROOT"]) / world.unix_user), world.unix_user))
    account = pwd.getpwnam(world.unix_user)
    (folder / "inputs").mkdir(exist_ok=True)
    for name, text in (("a.txt", "one\n"), ("b.txt", "one\ntwo\n")):
        (folder / "inputs" / name).write_text(text)
    for path in [folder / "inputs", *(folder / "inputs").iterdir()]:
        os.chown(path, account.pw_uid, account.pw_gid)


@pytest.mark.parametrize("site_adapter", ["rest"])
@pytest.mark.parametrize("name", ["serial", "mpi"])
def test_templates_run_the_same_through_slurmrestd(app, cluster_job_world, name):
    """The portal's job flow (plan with its budget check, submit, follow the state, show the
    output) with the site on the rest adapter."""
    test_template_runs_the_users_program_to_completion_and_its_output_is_readable(app, cluster_job_world, name)


def _submit(app, world, name: str, partition: str, values: dict, job_name: str) -> tuple[int, str]:
    with app.app_context():
        plan = plan_job(world.user(), job_templates()[0][name], world.project(), world.partition(partition), values,
                        job_name)
        assert plan.ok, plan.errors
        job = submit_job(plan, world.user())
        db.session.commit()
        return job.id, job.slurm_job_id


@pytest.mark.parametrize("name", sorted(SMALL))
def test_template_runs_the_users_program_to_completion_and_its_output_is_readable(app, cluster_job_world, name):
    world = cluster_job_world
    partition, values, expected_output = SMALL[name]
    with app.app_context():
        if partition == "gpu" and ("gpu" not in world.partition_ids or world.partition("gpu").gpus_per_node == 0):
            pytest.skip("the test cluster has no 'gpu' partition with GPUs, so GPU templates cannot run here")
    if name == "array":
        _input_files(app, world)
    job_id, slurm_id = _submit(app, world, name, partition, values, f"t-{name}")
    state = wait_for(lambda: _final_state(app, job_id), timeout=240, what=f"{name} job {slurm_id} to finish")
    client = app.test_client()
    sign_in(client, world.member[1], world.member[2])
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert state == "COMPLETED", page
    for text in expected_output:
        assert text.replace("'", "&#39;") in page
    if name == "benchmark":
        with app.app_context():
            workdir = db.session.get(SubmittedJob, job_id).workdir
        assert (Path(workdir) / f"benchmark-{slurm_id}.json").stat().st_size > 0


def _test_only(slurm_scheduler, script: str, world, partition: str) -> subprocess.CompletedProcess:
    """sbatch --test-only with the argv the portal would use: Slurm's own reading of the script."""
    request = JobRequest(script=script, account=f"{world.account}_{partition}", partition=partition,
                         job_name="test-only", workdir="/tmp", time_limit_minutes=1, user=world.unix_user)
    argv, env = slurm_scheduler._sbatch_command(request)
    argv = [argv[0], "--test-only"] + [a for a in argv[1:] if not a.startswith(("--time=", "--partition="))]
    return subprocess.run(argv, input=script, capture_output=True, text=True, timeout=30, check=False,
                          env={**slurm_scheduler.runner.base_env(), **env})


def test_sbatch_test_only_accepts_every_rendered_script_and_reads_only_the_portals_header(
        app, cluster_job_world, slurm_scheduler):
    world = cluster_job_world
    with app.app_context():
        templates = job_templates()[0]
        scripts: dict[tuple[str, str], tuple[str, str]] = {}  # (script, partition) -> what made it
        for template in templates.values():
            partition = "gpu" if template.kind == "gpu" else "cpu"
            args = (world.user(), template, world.project(), world.partition(partition))
            for param in template.params.values():
                for value in ["", *HOSTILE[:8], "x" * 10_000]:
                    plan = plan_job(*args, {param.name: value} if value else {})
                    if plan.ok:
                        scripts.setdefault((plan.script, partition), (template.name, value))
        assert len(scripts) > 100
        # Each check is an sbatch process answered by slurmctld: several at once, as users would.
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = pool.map(lambda key: _test_only(slurm_scheduler, key[0], world, key[1]), scripts)
            for made_by, result in zip(scripts.values(), results):
                assert result.returncode == 0 and "to start at" in result.stderr, (made_by, result)
        # A directive after the first command is ignored by sbatch; the same line before it is read.
        script = plan_job(*args, {}).script
        ignored = script + "#SBATCH --partition=nonexistent\n"
        assert _test_only(slurm_scheduler, ignored, world, "cpu").returncode == 0
        read = script.replace("\nexport PORTAL_TEMPLATE=", "\n#SBATCH --partition=nonexistent\nexport PORTAL_TEMPLATE=", 1)
        refused = _test_only(slurm_scheduler, read, world, "cpu")
        assert refused.returncode != 0 and "invalid partition" in refused.stderr.lower()


def test_the_container_template_passes_sbatch_test_only_though_apptainer_is_absent(app, cluster_job_world,
                                                                                 slurm_scheduler):
    world = cluster_job_world
    with app.app_context():
        plan = plan_job(world.user(), job_templates()[0]["container"], world.project(), world.partition("cpu"),
                        {"image": "images/app.sif", "binds": "data:/data:ro", "nv": "true",
                         "program": 'python3 train.py --epochs 3 "$HOME"'})
        assert plan.ok, plan.errors
        assert "options+=(--nv)\noptions+=(--bind data:/data:ro)\n" in plan.script
        assert subprocess.run(["bash", "-n"], input=plan.script, text=True, check=False).returncode == 0
        assert _test_only(slurm_scheduler, plan.script, world, "cpu").returncode == 0


def test_array_throttle_shows_in_scontrol(app, cluster_job_world, slurm_scheduler):
    world = cluster_job_world
    _input_files(app, world)
    job_id, slurm_id = _submit(app, world, "array", "cpu",
                               {"time": "2", "tasks": "4", "throttle": "1", "inputs": "inputs/*.txt",
                                "program": "sleep 1"}, "t-throttle")
    shown = slurm_scheduler.runner.run(["scontrol", "show", "job", slurm_id])
    assert "ArrayTaskThrottle=1" in shown
    wait_for(lambda: _final_state(app, job_id), timeout=240, what="the throttled array to finish")


def test_a_dependent_job_starts_only_after_its_parent_completed(app, cluster_job_world, slurm_scheduler):
    world = cluster_job_world
    _parent_id, parent = _submit(app, world, "serial", "cpu", {"time": "2", "command": "sleep 6; echo parent done"},
                                "t-parent")
    child_id, child = _submit(app, world, "serial", "cpu", {"time": "2", "after": parent, "command": "echo child"},
                              "t-child")
    waiting = wait_for(lambda: (s := slurm_scheduler.job(child)).state is JobState.PENDING and s.reason and s,
                       timeout=30, what="the child to wait")
    assert waiting.reason == "Dependency"
    wait_for(lambda: _final_state(app, child_id), timeout=240, what="the child to finish")
    first, second = slurm_scheduler.job(parent), slurm_scheduler.job(child)
    assert first.state is JobState.COMPLETED and second.state is JobState.COMPLETED
    assert second.start_time >= first.end_time


def test_the_preview_says_when_slurm_is_not_ready_for_the_project_yet(app, cluster_job_world, slurm_scheduler):
    world = cluster_job_world
    account = f"{world.account}_debug"
    slurm_scheduler.remove_user(account, world.unix_user)
    wait_for(lambda: not slurm_scheduler.association_ready(account, world.unix_user), timeout=30,
             what="the controller to forget the association")
    try:
        with app.app_context():
            plan = plan_job(world.user(), job_templates()[0]["serial"], world.project(), world.partition("debug"),
                            {"time": "2"})
            assert not plan.ok
            assert plan.errors["partition"] == [
                f"Slurm is not ready for project {world.project().code} yet: {world.unix_user} in account {account} is"
                " waiting for Slurm (the portal applies the change within a minute); try again shortly"]
    finally:
        slurm_scheduler.add_user(account, world.unix_user, partition="debug")
    slurm_scheduler.wait_for_association(account, world.unix_user)
    with app.app_context():
        assert plan_job(world.user(), job_templates()[0]["serial"], world.project(), world.partition("debug"),
                        {"time": "2"}).ok


def test_qos_and_features_are_checked_against_this_cluster(app, cluster_job_world, slurm_scheduler):
    world = cluster_job_world
    slurm_scheduler.sacctmgr(["add", "qos", "tpltshort", "MaxWall=3", "MaxTRES=cpu=1"])
    names = sorted(q.name for q in slurm_scheduler.qos())
    assert "normal" in names and "tpltshort" in names
    with app.app_context():
        args = (world.user(), job_templates()[0]["mpi"], world.project(), world.partition("cpu"))
        unknown = plan_job(*args, {"qos": "nosuch"})
        assert unknown.errors["qos"] == [f"--qos nosuch: Slurm has no such QOS (it has: {', '.join(names)})"]
        short = plan_job(*args, {"qos": "tpltshort", "time": "5", "ntasks": "2"})
        assert short.errors["time"] == ["--time 5 min exceeds QOS tpltshort's MaxWall of 3 min"]
        assert short.errors["qos"] == ["cpu 2 exceeds QOS tpltshort's MaxTRES of cpu=1"]
        assert plan_job(*args, {"qos": "normal"}).ok
        featureless = plan_job(*args, {"constraint": "a100"})
        assert featureless.errors["constraint"] == [
            "--constraint a100: no node of partition cpu has feature a100 (features there: -)"]


def test_working_and_output_folders_of_the_users_choice(app, cluster_job_world):
    world = cluster_job_world
    job_id, slurm_id = _submit(app, world, "serial", "cpu",
                               {"time": "2", "workdir": "runs/r1", "output": "logs", "command": 'echo "in $PWD"'},
                               "t-folders")
    assert wait_for(lambda: _final_state(app, job_id), timeout=120, what="the job to finish") == "COMPLETED"
    with app.app_context():
        folder = Path(db.session.get(SubmittedJob, job_id).workdir)
    text = (folder / "logs" / f"slurm-{slurm_id}.out").read_text()
    assert f"in {folder}/runs/r1\n" in text
    assert (folder / "runs" / "r1").stat().st_uid == pwd.getpwnam(world.unix_user).pw_uid
    client = app.test_client()
    sign_in(client, world.member[1], world.member[2])
    assert f"in {folder}/runs/r1" in client.get(f"/jobs/{job_id}").get_data(as_text=True)


def test_pytorch_trains_across_two_nodes_with_gloo(app, cluster_job_world):
    """torchrun on each of two nodes, meeting at the rendezvous on the first (the test cluster
    runs two slurmd on this host; their GPUs are fake, so the processes use gloo on CPUs)."""
    world = cluster_job_world
    with app.app_context():
        nodes = world.partition("gpu").total_nodes
    assert nodes >= 2, "the test cluster should have two nodes (portal.devcluster --nodes 2)"
    job_id, slurm_id = _submit(app, world, "pytorch", "gpu", {"time": "5", "nodes": "2", "gpus": "1"}, "t-ddp")
    state = wait_for(lambda: _final_state(app, job_id), timeout=240, what=f"torchrun job {slurm_id} to finish")
    client = app.test_client()
    sign_in(client, world.member[1], world.member[2])
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert state == "COMPLETED", page
    assert "2 node(s) x 1 process(es)" in page and "weight 3.000 bias 2.000" in page
    trained = next(line for line in page.splitlines() if "trained on 2 processes" in line)
    assert "n1/0" in trained and "n2/0" in trained  # one process on each node
