"""Helpers to run ``python -m mpi_examples`` under mpirun as a subprocess."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def mpirun_prefix(ranks: int) -> list[str]:
    mpirun = shutil.which("mpirun")
    assert mpirun, "mpirun is not installed (apt-get install openmpi-bin)"
    cmd = [mpirun, "--oversubscribe", "-n", str(ranks)]
    if os.geteuid() == 0:
        cmd.insert(1, "--allow-run-as-root")
    return cmd


class Run:
    def __init__(self, proc: subprocess.CompletedProcess, json_path: Path):
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        self.json_path = json_path

    @property
    def doc(self) -> dict:
        return json.loads(self.json_path.read_text())


@pytest.fixture
def run_examples(tmp_path):
    """run_examples(*args, ranks=2, env=None, inject=None) -> Run, with --json written to tmp_path;
    ``inject`` names a fault that tests/mpi_examples/inject.py puts in first."""

    def run(*args, ranks: int = 2, env: dict | None = None, inject: str | None = None) -> Run:
        out = tmp_path / f"result-{len(list(tmp_path.iterdir()))}.json"
        program = ["tests.mpi_examples.inject", inject] if inject else ["mpi_examples"]
        cmd = [*mpirun_prefix(ranks), sys.executable, "-m", *program, *args, "--json", str(out)]
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120,
                              env={**os.environ, **(env or {})}, check=False)
        return Run(proc, out)

    return run
