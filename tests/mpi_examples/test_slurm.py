"""mpi_examples under the local Slurm cluster: srun --mpi=pmix -n 2."""
import json
import os
import subprocess
import sys

import pytest

from mpi_examples.results import validate
from portal.devcluster.pytest_plugin import wait_for
from portal.slurm import make_scheduler

from .conftest import REPO

# The project's venv is made from /usr/bin/python3 (scripts/setup.sh), so jobs can read it.
PYTHON = sys.executable
ACCOUNT = "mpitest"


def _slurm(cluster, *cmd, timeout=60):
    return subprocess.run(list(cmd), env={**os.environ, **cluster.env},
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.slurm
def test_every_interconnect_benchmark_under_srun(slurm_cluster):
    # "Nothing new added" on a second run is fine: the database outlives test sessions.
    # Through the adapter: its writes take turns with the session's others (writelock.py).
    scheduler = make_scheduler("cli", env=slurm_cluster.env)
    scheduler.sacctmgr(["add", "account", ACCOUNT])
    scheduler.sacctmgr(["add", "user", "root", f"account={ACCOUNT}"])
    wait_for(lambda: f"Account={ACCOUNT}" in _slurm(
        slurm_cluster, "scontrol", "show", "assoc_mgr", "flags=assoc",
        f"accounts={ACCOUNT}", "users=root").stdout, what="the mpitest association")
    out = slurm_cluster.jobs_dir / "mpi_examples-result.json"
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        ["srun", "--mpi=pmix", "-n", "2", f"--account={ACCOUNT}", "--time=5",
         f"--chdir={REPO}", PYTHON, "-m", "mpi_examples", "suite",
         "--references", "mpi_examples/references/devcluster.json", "--system", "devcluster",
         "--benchmarks", "pingpong,bibw,allreduce,alltoall", "--quick", "--array", "numpy", "--json", str(out)],
        env={**os.environ, **slurm_cluster.env}, capture_output=True, text=True,
        timeout=180, check=False)
    assert out.exists(), proc.stdout + proc.stderr
    doc = json.loads(out.read_text())
    assert validate(doc) == [] and doc["errors"] == []
    assert doc["ranks"] == 2 and doc["slurm_job_id"]
    assert doc["partition"] != "default"  # taken from SLURM_JOB_PARTITION
    assert {r["benchmark"] for r in doc["metrics"]} == {"pingpong", "bibw", "allreduce", "alltoall"}
    # Timings on 2 shared cores are not asserted; the suite ran and judged something.
    assert doc["suite"]["key"] == "devcluster:*"
    assert any(r["status"] in ("pass", "fail") for r in doc["suite"]["results"])
