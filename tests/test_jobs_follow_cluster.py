"""Following a job on the real test cluster: its efficiency as sacct has it, and submitting it again."""
from __future__ import annotations

import os
import re
import subprocess

import pytest

from portal.devcluster.pytest_plugin import wait_for
from portal.extensions import db
from portal.jobs.models import SubmittedJob
from portal.jobs.operations import job_template, jobs_to_follow, plan_job, plan_resubmission, refresh_states, resubmit_job, submit_job
from tests.conftest import csrf_token_from, sign_in

# Holds 64 MiB for at least 8 s (longer than Slurm's 5 s memory sampling) and burns 4 s of CPU time
# on one of its two CPUs: CPU time, not wall time, so a busy host (the tests run side by side)
# stretches the job but not what sacct counts.
COMMAND = """python3 -c 'import time
x = bytearray(64 * 2**20)
for i in range(0, len(x), 4096): x[i] = 1
t, c = time.time(), time.process_time()
while time.process_time() - c < 4: pass
time.sleep(max(0, 8 - (time.time() - t)))
print("held", len(x) >> 20, "MiB")'
echo "to stderr" >&2"""


def _sacct(slurm_cluster, job_id: str) -> list[dict[str, str]]:
    fields = ["JobID", "State", "ExitCode", "ElapsedRaw", "TimelimitRaw", "AllocCPUS", "TotalCPU", "CPUTimeRAW",
              "MaxRSS", "ReqMem", "AllocTRES"]
    out = subprocess.run(["sacct", "-P", "-n", "-j", job_id, f"--format={','.join(fields)}"], check=True,
                         capture_output=True, text=True, env={**os.environ, **slurm_cluster.env}).stdout
    return [dict(zip(fields, line.split("|"))) for line in out.splitlines() if line]


def _ms(total_cpu: str) -> int:  # "00:06.697" or "01:00:06.697", as sacct prints TotalCPU
    *hm, sec = total_cpu.split(":")
    minutes = sum(int(p) * 60 ** i for i, p in enumerate(reversed(hm)))
    return round((minutes * 60 + float(sec)) * 1000)


def _efficiency_read(app, job_id: int):
    with app.app_context():
        refresh_states(jobs_to_follow())  # what the reconciler service's job-state duty does
        db.session.commit()
        return db.session.get(SubmittedJob, job_id).efficiency is not None



def _shown_percent(text: str) -> float:
    """The CPU efficiency a page or the CLI shows, e.g. "25.28% of 0:00:16 core-walltime": two
    decimals, rounded half to even (the exact ratio's binary float may round the other way)."""
    return float(re.search(r"([0-9]+\.[0-9]{2})% of [0-9:]+ core-walltime", text).group(1))


@pytest.mark.slow
def test_the_portals_efficiency_is_what_sacct_says_and_a_resubmission_gets_the_new_time(
        app, cluster_job_world, slurm_cluster):
    world = cluster_job_world
    with app.app_context():
        plan = plan_job(world.user(), job_template("serial"), world.project(), world.partition("cpu"),
                        {"time": "2", "cpus": "2", "mem": "300", "command": COMMAND}, "follow-eff")
        assert plan.ok, plan.errors
        job = submit_job(plan, world.user())
        db.session.commit()
        job_id, slurm_id = job.id, job.slurm_job_id
    wait_for(lambda: _efficiency_read(app, job_id), timeout=120, what=f"job {slurm_id}'s efficiency")

    rows = _sacct(slurm_cluster, slurm_id)
    allocation = next(r for r in rows if r["JobID"] == slurm_id)
    steps = [r for r in rows if r["JobID"].startswith(slurm_id + ".")]
    with app.app_context():
        job = db.session.get(SubmittedJob, job_id)
        eff = job.efficiency.value()
        assert job.last_state == allocation["State"] == eff.state.value == "COMPLETED"
        assert eff.exit_code == allocation["ExitCode"] == "0:0"
        assert eff.elapsed_seconds == int(allocation["ElapsedRaw"]) >= 8
        assert eff.time_limit_minutes == int(allocation["TimelimitRaw"]) == 2
        assert eff.alloc_cpus == int(allocation["AllocCPUS"]) == 2
        assert eff.cpu_time_seconds == int(allocation["CPUTimeRAW"]) == 2 * eff.elapsed_seconds
        assert eff.total_cpu_ms == _ms(allocation["TotalCPU"]) == sum(_ms(s["TotalCPU"]) for s in steps)
        assert eff.total_cpu_ms >= 4000  # the CPU time the program burned, whatever the host's load
        # seff's CPU efficiency from sacct's own numbers; one busy process of two CPUs: at most half.
        assert eff.cpu_efficiency == pytest.approx(_ms(allocation["TotalCPU"]) / 1000 / int(allocation["CPUTimeRAW"]))
        assert 0 < eff.cpu_efficiency < 0.55
        assert eff.max_rss_kib == max(int(s["MaxRSS"].rstrip("K")) for s in steps if s["MaxRSS"])
        assert 64 * 1024 < eff.max_rss_kib < 300 * 1024
        assert allocation["ReqMem"] == "300M" and eff.requested_mem_kib == 300 * 1024
        assert "gres/gpu" not in allocation["AllocTRES"] and eff.gpu_seconds == 0
        summary = (f"job {slurm_id}: elapsed {eff.elapsed_seconds} s, TotalCPU {allocation['TotalCPU']},"
                   f" CPUTime {eff.cpu_time_seconds} s, CPU efficiency {eff.cpu_efficiency:.2%},"
                   f" MaxRSS {eff.max_rss_kib} KiB of {eff.requested_mem_kib} KiB")
        print(summary)

    client = app.test_client()
    sign_in(client, world.member[1], world.member[2])
    page = client.get(f"/jobs/{job_id}").get_data(as_text=True)
    assert _shown_percent(page) == pytest.approx(eff.cpu_efficiency * 100, abs=0.0051)
    assert "held 64 MiB" in page and "to stderr" in page
    assert re.search(r"as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", page)
    api = client.get(f"/api/jobs/{job_id}").get_json()
    assert api["efficiency"]["max_rss_kib"] == eff.max_rss_kib
    assert api["efficiency"]["cpu_efficiency"] == eff.cpu_efficiency
    assert api["efficiency"]["total_cpu_seconds"] == eff.total_cpu_ms / 1000
    shown = app.test_cli_runner().invoke(args=["jobs", "show", str(job_id), "--email", world.member[1]])
    assert shown.exit_code == 0, shown.output
    assert _shown_percent(shown.output) == pytest.approx(eff.cpu_efficiency * 100, abs=0.0051)
    assert "held 64 MiB" in shown.output

    # Submit again with a longer time: page form pre-filled, then API and command line.
    form = client.get(f"/jobs/new/serial?from={job_id}").get_data(as_text=True)
    assert 'value="follow-eff"' in form and "held" in form
    token = csrf_token_from(form)
    again = client.post(f"/api/jobs/{job_id}/resubmit", json={"values": {"time": "4"}}, headers={"X-CSRFToken": token})
    assert again.status_code == 201, again.get_json()
    dry = app.test_cli_runner().invoke(args=["jobs", "resubmit", str(job_id), "--email", world.member[1],
                                             "--set", "time=3", "--dry-run"])
    assert dry.exit_code == 0 and "#SBATCH --time=3\n" in dry.output, dry.output
    with app.app_context():
        source = db.session.get(SubmittedJob, job_id)
        plan = plan_resubmission(world.user(), source, {"time": "5"})
        assert plan.ok, plan.errors
        by_operation = resubmit_job(plan, world.user(), source)
        db.session.commit()
        new_jobs = [db.session.get(SubmittedJob, again.get_json()["id"]), by_operation]
        for new, minutes in zip(new_jobs, (4, 5)):
            assert new.slurm_job_id != slurm_id and f"#SBATCH --time={minutes}\n" in new.script
            assert new.script.replace(f"--time={minutes}", "--time=2") == source.script
            shown = subprocess.run(["scontrol", "show", "job", new.slurm_job_id], capture_output=True, text=True,
                                   env={**os.environ, **slurm_cluster.env}).stdout
            assert f"TimeLimit=00:0{minutes}:00" in shown
            subprocess.run(["scancel", new.slurm_job_id], env={**os.environ, **slurm_cluster.env}, check=True)
