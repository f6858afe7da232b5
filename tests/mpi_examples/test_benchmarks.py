"""Every benchmark under mpirun with 2 ranks on NumPy buffers; schema; injected faults."""
import json
import subprocess
import sys

import pytest

from mpi_examples.interconnect import busbw_factor
from mpi_examples.results import validate

from .conftest import REPO

SMALL = ["--quick", "--array", "numpy", "--max-size", "4K", "--iters", "5", "--warmup", "1"]
EXPECTED = {
    "pingpong": {"latency", "bandwidth"},
    "bibw": {"bandwidth"},
    "allreduce": {"time", "algbw", "busbw"},
    "alltoall": {"time", "algbw", "busbw"},
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_interconnect_two_ranks(run_examples, name):
    run = run_examples(name, *SMALL)
    assert run.returncode == 0, run.stdout + run.stderr
    doc = run.doc
    assert validate(doc) == []
    assert doc["ranks"] == 2 and doc["errors"] == []
    rows = doc["metrics"]
    assert {r["metric"] for r in rows} == EXPECTED[name]
    assert {r["array"] for r in rows} == {"numpy (host)"}
    assert max(r["size"] for r in rows) == 4096
    assert all(r["samples"] >= 2 and r["min"] <= r["mean"] <= r["max"] for r in rows)
    # rank 0 alone prints: one header per benchmark
    assert run.stdout.count(f"# mpi_examples {name} |") == 1
    if name in ("allreduce", "alltoall"):
        algbw = {r["size"]: r["mean"] for r in rows if r["metric"] == "algbw"}
        for r in (r for r in rows if r["metric"] == "busbw"):
            assert r["mean"] == pytest.approx(algbw[r["size"]] * busbw_factor(name, 2))


def test_gpu_benchmarks_on_numpy(run_examples):
    run = run_examples("suite", "--references", "mpi_examples/references/devcluster.json",
                       "--system", "devcluster", "--benchmarks", "gpu", "--quick",
                       "--array", "numpy")
    doc = run.doc
    assert validate(doc) == [], doc
    assert doc["errors"] == []
    by_bench = {}
    for r in doc["metrics"]:
        by_bench.setdefault(r["benchmark"], set()).add((r["metric"], r["precision"]))
        assert r["array"] == "numpy (host)"
    assert by_bench["gemm"] == {("tflops", p) for p in ("fp64", "fp32", "fp16")}
    assert {m for m, _ in by_bench["stream"]} == {"copy", "scale", "add", "triad", "memcpy"}
    assert {m for m, _ in by_bench["hostcopy"]} == {"h2d", "d2h"}
    skipped = {s["precision"]: s["reason"] for s in doc["skipped"]}
    assert set(skipped) == {"tf32", "bf16"} and "NumPy" in skipped["bf16"]
    assert "# skipped gemm bf16" in run.stdout


FAULTS = [("pingpong", "pingpong-corrupt"), ("bibw", "bibw-corrupt"),
          ("allreduce", "allreduce-wrong"), ("alltoall", "alltoall-corrupt"),
          ("gemm", "gemm-wrong"), ("stream", "stream-wrong"), ("hostcopy", "hostcopy-corrupt")]


@pytest.mark.parametrize("name,fault", FAULTS)
def test_injected_fault_is_caught(run_examples, name, fault):
    run = run_examples(name, *SMALL, inject=fault)
    assert run.returncode != 0
    assert f"# mpi_examples {name} | ERROR: {name}: correctness check failed" in run.stdout
    if name == "allreduce":
        assert "expected the sum" in run.stdout
    doc = run.doc
    assert validate(doc) == []
    assert doc["metrics"] == [] and doc["errors"][0]["benchmark"] == name


def _references(tmp_path, refs: dict):
    path = tmp_path / "refs.json"
    path.write_text(json.dumps({"schema": "mpi_examples/references/v1",
                                "systems": {"testsys:*": {"references": refs}}}))
    return str(path)


def test_suite_passes_and_fails(run_examples, tmp_path):
    ok = _references(tmp_path, {"pingpong/latency/1": [1e6, None, 0.0, "us"],
                                "allreduce/busbw/1024": [1.0, -1.0, None, "GB/s"]})
    args = ["--system", "testsys", "--benchmarks", "pingpong,allreduce", *SMALL]
    run = run_examples("suite", "--references", ok, *args)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 pass, 0 fail" in run.stdout and "PASSED" in run.stdout
    assert run.doc["suite"]["passed"] is True and validate(run.doc) == []

    bad = _references(tmp_path, {"pingpong/latency/1": [1e6, None, 0.0, "us"],
                                 "pingpong/bandwidth/1024": [1e12, -0.1, None, "MB/s"]})
    run = run_examples("suite", "--references", bad, *args)
    assert run.returncode == 1
    line = next(row for row in run.stdout.splitlines() if "pingpong/bandwidth/1024" in row)
    assert line.rstrip().endswith("FAIL") and "-100.0%" in line
    verdict = run.doc["suite"]
    assert verdict["passed"] is False and verdict["key"] == "testsys:*"


def test_json_to_stdout_keeps_table_on_stderr():
    """--json -: stdout holds the document alone (one rank, started without mpirun)."""
    proc = subprocess.run([sys.executable, "-m", "mpi_examples", "pingpong", *SMALL,
                           "--json", "-"], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "mpi_examples/result/v1" and validate(doc) == []
    assert doc["ranks"] == 1 and "# mpi_examples pingpong" in proc.stderr


def test_suite_without_references_for_the_system_stops_every_rank_with_a_message(run_examples):
    run = run_examples("suite", "--references", "mpi_examples/references/devcluster.json",
                       "--system", "nowhere", "--benchmarks", "pingpong", "--quick", "--array", "numpy")
    assert run.returncode != 0  # and it returned at all: no rank is left waiting
    assert "no references for nowhere" in run.stderr
    assert not run.json_path.exists()
