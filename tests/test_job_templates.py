"""Loading templates, the exact #SBATCH lines they render, and refusals with numbers."""
from __future__ import annotations

import pytest

from portal.jobs.operations import job_templates, plan_job
from portal.jobs.templates import SHIPPED_DIR, load_templates, sbatch_directives

SHIPPED = ["array", "benchmark", "container", "gpu", "hybrid", "mpi", "multigpu", "openmp", "pytorch", "serial"]


def sbatch_lines(script: str) -> list[str]:
    return [line for line in script.splitlines() if line.startswith("#SBATCH")]


def test_every_shipped_template_loads():
    templates, problems = load_templates([SHIPPED_DIR])
    assert problems == []
    assert sorted(templates) == SHIPPED


def header(name, account, partition, time, out, *, nodes=1, ntasks=1, cpus=1, extra=()):
    return [f"#SBATCH --job-name={name}", f"#SBATCH --account={account}", f"#SBATCH --partition={partition}",
            f"#SBATCH --time={time}", f"#SBATCH --nodes={nodes}", f"#SBATCH --ntasks={ntasks}",
            f"#SBATCH --cpus-per-task={cpus}", *extra, f"#SBATCH --output={out}"]


@pytest.mark.parametrize("name, partition, values, expected", [
    ("serial", "cpu", {"time": "7", "mem": "300"}, dict(time=7, extra=["#SBATCH --mem=300M"])),
    ("openmp", "cpu", {"threads": "2", "time": "0:02:30"}, dict(time=3, cpus=2)),
    ("mpi", "cpu", {"ntasks": "2"}, dict(time=5, ntasks=2)),
    ("hybrid", "cpu", {"ntasks": "1", "threads": "2"}, dict(time=5, ntasks=1, cpus=2)),
    ("gpu", "gpu", {}, dict(time=5, extra=["#SBATCH --gpus=1"])),
    ("multigpu", "gpu", {"gpus": "2", "ntasks": "2"},
     dict(time=5, ntasks=2, extra=["#SBATCH --ntasks-per-node=2", "#SBATCH --gpus-per-node=2"])),
    ("array", "cpu", {"tasks": "3", "time": "2"}, dict(time=2, extra=["#SBATCH --array=0-2"], array=True)),
    ("array", "cpu", {"tasks": "100", "throttle": "10", "time": "2"},
     dict(time=2, extra=["#SBATCH --array=0-99%10"], array=True)),
    ("mpi", "cpu", {"ntasks": "2", "per_node": "2", "exclusive": "true", "mail": "END,FAIL"},
     dict(time=5, ntasks=2, extra=["#SBATCH --ntasks-per-node=2", "#SBATCH --exclusive", "#SBATCH --mail-type=END,FAIL",
                                   "#SBATCH --mail-user={email}"])),
    ("container", "cpu", {"image": "img/x.sif", "nv": "true", "binds": "data:/data:ro,/scratch"}, dict(time=5)),
    ("benchmark", "cpu", {"ntasks": "2", "time": "10"}, dict(time=10, ntasks=2)),
    ("pytorch", "gpu", {"gpus": "2", "cpus": "2"},
     dict(time=10, cpus=2, extra=["#SBATCH --ntasks-per-node=1", "#SBATCH --gpus-per-node=2"])),
])
def test_rendered_sbatch_lines_are_exactly_the_validated_values(app_ctx, job_world, name, partition, values, expected):
    templates, _ = job_templates()
    plan = plan_job(job_world.user(), templates[name], job_world.project(), job_world.partition(partition),
                    values, f"my-{name}")
    assert plan.errors == {}
    out = f"{plan.workdir}/" + ("slurm-%A_%a.out" if expected.pop("array", False) else "slurm-%j.out")
    assert plan.workdir.endswith("/jobs/jobtester")
    expected["extra"] = [line.format(email=job_world.user().email) for line in expected.get("extra", ())]
    assert sbatch_lines(plan.script) == header(f"my-{name}", f"jobs_test_{partition}", partition, out=out, **expected)
    assert sbatch_directives(plan.script) == sbatch_lines(plan.script)
    assert plan.script.startswith("#!/bin/bash\n#SBATCH --job-name=")


def test_environment_feeds_are_exported_quoted(app_ctx, job_world):
    templates, _ = job_templates()
    plan = plan_job(job_world.user(), templates["openmp"], job_world.project(), job_world.partition("cpu"),
                    {"schedule": "dynamic", "places": "threads"})
    assert "export OMP_SCHEDULE=dynamic\nexport OMP_PLACES=threads\nexport OMP_PROC_BIND=close\n" in plan.script


def test_cost_is_shown_beside_the_remaining_hours(app_ctx, job_world):
    templates, _ = job_templates()
    plan = plan_job(job_world.user(), templates["mpi"], job_world.project(), job_world.partition("cpu"),
                    {"ntasks": "2", "time": "30"})
    assert plan.ok
    assert plan.cost_minutes == 2 * 30
    assert plan.remaining_minutes == 100 * 60
    gpu = plan_job(job_world.user(), templates["multigpu"], job_world.project(), job_world.partition("gpu"),
                   {"gpus": "2", "time": "10"})
    assert gpu.ok and gpu.cost_minutes == 2 * 10 and gpu.remaining_minutes == 50 * 60
    array = plan_job(job_world.user(), templates["array"], job_world.project(), job_world.partition("cpu"),
                     {"tasks": "4", "time": "10"})
    assert array.cost_minutes == 4 * 10


@pytest.mark.parametrize("name, partition, values, where, message", [
    ("serial", "debug", {"time": "90"}, "time", "--time 90 min exceeds partition debug's MaxTime of 10 min"),
    ("serial", "cpu", {"time": "1-00:00:00"}, "time", "--time 1440 min exceeds partition cpu's MaxTime of 60 min"),
    ("mpi", "cpu", {"nodes": "2", "ntasks": "2"}, "nodes", "--nodes 2 exceeds partition cpu's MaxNodes of 1"),
    ("mpi", "cpu", {"ntasks": "4"}, "ntasks", "4 CPUs (--ntasks x --cpus-per-task) exceed partition cpu's 2 CPUs on 1 node(s)"),
    ("openmp", "cpu", {"threads": "8"}, "threads", "--cpus-per-task 8 exceeds partition cpu's 2 CPUs per node"),
    ("multigpu", "gpu", {"gpus": "4", "ntasks": "2"}, "gpus", "--gpus-per-node 4 exceeds partition gpu's 2 GPUs per node"),
    ("serial", "cpu", {"mem": "9000"}, "mem", "--mem 9000 MB exceeds partition cpu's 6026 MB per node"),
    ("serial", "gpu", {}, "partition", "partition gpu counts gpu time; this template needs a cpu partition"),
    ("serial", "cpu", {"time": "0"}, "time", "time: 0 min is below the template's minimum of 1 min"),
    ("openmp", "cpu", {"threads": "300"}, "threads", "threads: 300 exceeds the template's maximum of 256"),
    ("openmp", "cpu", {"schedule": "auto"}, "schedule", "schedule: auto is not one of static, dynamic, guided"),
])
def test_requests_over_limits_are_refused_naming_limit_and_value(app_ctx, job_world, name, partition, values,
                                                                 where, message):
    templates, _ = job_templates()
    plan = plan_job(job_world.user(), templates[name], job_world.project(), job_world.partition(partition), values)
    assert not plan.ok
    assert message in plan.errors[where]


def test_a_request_larger_than_the_grant_left_is_refused_with_both_numbers(app, make_user, tmp_path, monkeypatch):
    from tests.job_world import build_job_world

    monkeypatch.setitem(app.config, "JOB_WORKDIR_ROOT", str(tmp_path))
    world = build_job_world(app, make_user, hours={"cpu": 1.0, "debug": 1.0, "gpu": 0.1})
    with app.app_context():
        templates, _ = job_templates()
        plan = plan_job(world.user(), templates["mpi"], world.project(), world.partition("cpu"),
                        {"ntasks": "2", "time": "31"})
        assert plan.errors["partition"] == [
            "this job may use up to 1.03 core-hours, more than the 1 core-hours the grant still allows on cpu"
            " (after 0 core-hours held by jobs already queued)"]
        gpu = plan_job(world.user(), templates["gpu"], world.project(), world.partition("gpu"), {"time": "7"})
        assert gpu.errors["partition"] == [
            "this job may use up to 0.12 GPU-hours, more than the 0.1 GPU-hours the grant still allows on gpu"
            " (after 0 GPU-hours held by jobs already queued)"]
        assert plan_job(world.user(), templates["mpi"], world.project(), world.partition("cpu"),
                        {"ntasks": "2", "time": "30"}).ok


def test_outsiders_and_unmapped_users_are_refused(app_ctx, job_world):
    templates, _ = job_templates()
    plan = plan_job(job_world.user("outsider"), templates["serial"], job_world.project(), job_world.partition("cpu"), {})
    assert any("not a member of project" in m for m in plan.errors["project"])
    assert any("not linked to a Unix account" in m for m in plan.errors["project"])


def test_a_broken_template_is_reported_with_file_and_line_and_the_others_load(app_ctx, tmp_path, monkeypatch):
    (tmp_path / "badjson.json").write_text('{\n  "title": "x",\n  "params": {,}\n}\n')
    (tmp_path / "badjinja.json").write_text('{"params": {"time": {"type": "duration", "default": "5", "feeds": "--time"}}}')
    (tmp_path / "badjinja.sh.j2").write_text("echo ok\necho {{ p.time \n")
    (tmp_path / "badtype.json").write_text('{\n "params": {\n  "time": {"type": "duration", "default": "5", "feeds": "--time"},\n'
                                          '  "n": {"type": "float"}\n }\n}\n')
    (tmp_path / "badtype.sh.j2").write_text("echo ok\n")
    (tmp_path / "sneaky.json").write_text('{"params": {"time": {"type": "duration", "default": "5", "feeds": "--time"}}}')
    (tmp_path / "sneaky.sh.j2").write_text("\n#SBATCH --uid=0\necho ok\n")
    (tmp_path / "quoted.json").write_text('{"params": {"time": {"type": "duration", "default": "5", "feeds": "--time"}}}')
    (tmp_path / "quoted.sh.j2").write_text('echo ok\necho "note: {{ p.time }}"\n')
    (tmp_path / "site_extra.json").write_text('{"title": "Site extra", "params": {"time": {"type": "duration", "default": "5", "feeds": "--time"}}}')
    (tmp_path / "site_extra.sh.j2").write_text("echo site template\n")
    monkeypatch.setitem(app_ctx.config, "JOB_TEMPLATES_DIR", str(tmp_path))
    templates, problems = job_templates()
    assert sorted(templates) == sorted(SHIPPED + ["site_extra"])
    found = {p.path.rsplit("/", 1)[-1]: (p.line, p.message) for p in problems}
    assert found["badjson.json"][0] == 3 and "not valid JSON" in found["badjson.json"][1]
    assert found["badjinja.sh.j2"][0] == 2 and "Jinja syntax error" in found["badjinja.sh.j2"][1]
    assert found["badtype.json"] == (4, "parameter n: unknown type 'float' (use one of int, str, choice, bool, duration, script, path)")
    assert found["sneaky.sh.j2"][0] == 2
    assert found["quoted.sh.j2"][0] == 2 and "inside a double-quoted string" in found["quoted.sh.j2"][1]


def test_a_misspelt_parameter_is_refused_naming_what_the_template_takes(app_ctx, job_world):
    templates, _ = job_templates()
    plan = plan_job(job_world.user(), templates["mpi"], job_world.project(), job_world.partition("cpu"), {"tme": "600"})
    assert plan.errors == {"tme": ["unknown parameter 'tme'; this template takes: time, nodes, ntasks, per_node, "
                                   "exclusive, program, setup, workdir, output, mail, after, qos, constraint"]}
    assert plan.script is None


@pytest.mark.parametrize("values, where, message", [
    ({"per_node": "1", "ntasks": "2", "nodes": "1"}, "ntasks", "--ntasks 2 exceeds --ntasks-per-node 1 x --nodes 1"),
    ({"per_node": "3"}, "per_node", "--ntasks-per-node 3 x --cpus-per-task 1 exceed partition cpu's 2 CPUs per node"),
    ({"after": "123456"}, "after", "--dependency: job 123456 is not one of your jobs on Dev cluster"),
    ({"workdir": "../etc"}, "workdir", "workdir: ../etc is not a folder inside your job folder"),
    ({"output": "/etc"}, "output", "output: /etc is not a folder inside your job folder"),
    ({"qos": "fast"}, "qos", "--qos/--constraint could not be checked against Slurm"),
])
def test_header_options_are_refused_naming_the_limit_and_the_value(app_ctx, job_world, values, where, message):
    templates, _ = job_templates()
    plan = plan_job(job_world.user(), templates["mpi"], job_world.project(), job_world.partition("cpu"), values)
    assert any(m.startswith(message) for m in plan.errors[where]), plan.errors


def test_exclusive_jobs_cost_whole_nodes_and_folders_stay_in_the_job_folder(app_ctx, job_world):
    templates, _ = job_templates()
    plan = plan_job(job_world.user(), templates["serial"], job_world.project(), job_world.partition("cpu"),
                    {"time": "10", "workdir": "runs/a", "output": "logs"})
    assert plan.ok, plan.errors
    assert f"#SBATCH --chdir={plan.workdir}/runs/a" in sbatch_lines(plan.script)
    assert f"#SBATCH --output={plan.workdir}/logs/slurm-%j.out" in sbatch_lines(plan.script)
    mpi = plan_job(job_world.user(), templates["mpi"], job_world.project(), job_world.partition("cpu"),
                   {"time": "10", "ntasks": "1", "exclusive": "yes"})
    assert mpi.cost_minutes == 2 * 10


class _FakeSlurm:
    def __getattr__(self, name):  # everything but the two live reads: Slurm does not answer
        from portal.slurm.errors import SchedulerUnreachable

        raise SchedulerUnreachable("no Slurm in this test")

    def qos(self):
        from portal.slurm.types import QosInfo

        return [QosInfo("normal"), QosInfo("short", max_wall_minutes=3, max_tres_per_job={"cpu": 1})]

    def node_features(self, partition):
        from portal.slurm.types import NodeFeatures

        return [NodeFeatures("n1", frozenset({"ib", "avx512"})), NodeFeatures("n2", frozenset({"a100"}))]


@pytest.mark.parametrize("values, where, message", [
    ({"qos": "fast"}, "qos", "--qos fast: Slurm has no such QOS (it has: normal, short)"),
    ({"qos": "short", "time": "5"}, "time", "--time 5 min exceeds QOS short's MaxWall of 3 min"),
    ({"qos": "short", "time": "2"}, "qos", "cpu 2 exceeds QOS short's MaxTRES of cpu=1"),
    ({"constraint": "gpu80"}, "constraint",
     "--constraint gpu80: no node of partition cpu has feature gpu80 (features there: a100, avx512, ib)"),
    ({"constraint": "ib&a100"}, "constraint", "--constraint ib&a100: no single node of partition cpu has all of a100, ib"),
])
def test_qos_and_constraint_are_checked_against_what_slurm_reports(app_ctx, job_world, monkeypatch, values, where,
                                                                   message):
    import portal.jobs.operations as operations

    monkeypatch.setattr(operations, "scheduler_for", lambda site: _FakeSlurm())
    templates, _ = job_templates()
    plan = plan_job(job_world.user(), templates["mpi"], job_world.project(), job_world.partition("cpu"), values)
    assert message in plan.errors[where], plan.errors
    good = plan_job(job_world.user(), templates["mpi"], job_world.project(), job_world.partition("cpu"),
                    {"qos": "normal", "constraint": "ib&avx512|a100"})
    assert "#SBATCH --qos=normal" in good.script and "#SBATCH --constraint=ib&avx512|a100" in good.script


def test_qos_and_node_features_are_parsed_from_slurm_output():
    from portal.slurm.parsing import node_features_from_sinfo, qos_from_sacctmgr

    qos = qos_from_sacctmgr("normal|||\nlong|2-00:00:00|cpu=8,node=2|gres/gpu=1\n")
    assert [(q.name, q.max_wall_minutes, dict(q.max_tres_per_job), dict(q.max_tres_per_node)) for q in qos] == [
        ("normal", None, {}, {}), ("long", 2880, {"cpu": 8, "node": 2}, {"gres/gpu": 1})]
    nodes = node_features_from_sinfo("n1|(null)\nn2|a100,ib\n")
    assert [(n.node, sorted(n.features)) for n in nodes] == [("n1", []), ("n2", ["a100", "ib"])]
