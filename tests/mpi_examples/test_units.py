"""Unit tests: bandwidth maths, reference comparison, schema validation, GEMM checks."""
import json

import numpy as np
import pytest

from mpi_examples import cli, suite
from mpi_examples.buffers import Backend
from mpi_examples.gpu import Gemm, from_bf16, to_bf16
from mpi_examples.interconnect import busbw_factor, iterations, message_sizes
from mpi_examples.results import metric, metric_key, rate_stats, scaled, stats, validate


@pytest.mark.parametrize("n,allreduce,alltoall", [(1, 1.0, 1.0), (2, 1.0, 0.5),
                                                  (4, 1.5, 0.75), (8, 1.75, 0.875)])
def test_busbw_factors_follow_nccl_tests(n, allreduce, alltoall):
    assert busbw_factor("allreduce", n) == allreduce
    assert busbw_factor("alltoall", n) == alltoall


def test_rate_stats_and_scaling():
    r = rate_stats([1.0, 2.0, 3.0], 6.0)
    assert (r["mean"], r["min"], r["max"], r["samples"]) == (3.0, 2.0, 6.0, 3)
    assert r["stdev"] == pytest.approx(3.0 * 1.0 / 2.0)
    assert scaled(stats([1.0, 3.0]), 10)["mean"] == 20.0


def test_sizes_and_iterations():
    args = cli.build_parser().parse_args(["pingpong", "--max-size", "16M"])
    cli.resolve(args, on_device=False)
    sizes = message_sizes(args)
    assert sizes[0] == 1 and sizes[-1] == 16 << 20 and len(sizes) == 25
    assert iterations(args, 1) == (100, 1000)
    assert iterations(args, 1 << 20) == (10, 100)
    assert iterations(args, 16 << 20) == (2, 20)
    assert cli.size("64K") == 65536 and cli.size("2M") == 2 << 20 and cli.size("7") == 7


def _ref(value, lower, upper, unit="MB/s"):
    return {"value": value, "lower": lower, "upper": upper, "unit": unit}


def test_judge_bounds_and_margin():
    assert suite.judge(9000, _ref(10000, -0.2, None)) == (True, pytest.approx(-0.1))
    assert suite.judge(7000, _ref(10000, -0.2, None))[0] is False
    assert suite.judge(1.4, _ref(1.0, None, 0.5))[0] is True
    assert suite.judge(1.6, _ref(1.0, None, 0.5))[0] is False


def _row(bench, name, value, unit="MB/s", size=None):
    return metric(bench, name, unit, stats([value]), array="numpy (host)", size=size)


def test_compare_statuses():
    table = {"pingpong/bandwidth/1024": _ref(100, -0.5, None),
             "pingpong/latency/1": _ref(1.0, None, 1.0, "us"),
             "pingpong/bandwidth/2048": _ref(100, -0.5, None),
             "gemm/tflops/fp64": _ref(50, -0.2, None, "TFLOP/s")}
    rows = [_row("pingpong", "bandwidth", 80, size=1024),
            _row("pingpong", "latency", 3.0, "MB/s", size=1),
            _row("pingpong", "bandwidth", 1, size=4096)]
    results = {r["key"]: r for r in suite.compare(rows, table, {"pingpong"})}
    assert results["pingpong/bandwidth/1024"]["status"] == "pass"
    assert "unit" in results["pingpong/latency/1"]["message"]
    assert results["pingpong/bandwidth/2048"]["status"] == "missing"
    assert results["pingpong/bandwidth/4096"]["status"] == "unreferenced"
    assert "gemm/tflops/fp64" not in results  # gemm did not run
    assert not suite.passed(list(results.values()))
    assert not suite.passed([])  # nothing compared is not a pass
    assert "FAILED" in suite.report(list(results.values()), "x:*")


def test_select_most_specific_system_key():
    refs = {"a:gpu": {1: 1}, "a:*": {2: 2}, "*": {3: 3}}
    assert suite.select(refs, "a", "gpu")[0] == "a:gpu"
    assert suite.select(refs, "a", "cpu")[0] == "a:*"
    assert suite.select(refs, "b", "cpu")[0] == "*"
    with pytest.raises(suite.ReferenceError):
        suite.select({"a:gpu": {}}, "b", "x")


@pytest.mark.parametrize("bad", [[100, 0.2, None, "us"], [100, None, -1, "us"], [0, None, None, "us"],
                                 [100, None, None], {"value": 1, "lower": None, "upper": None}])
def test_malformed_references_are_refused(tmp_path, bad):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"schema": suite.REFERENCES_SCHEMA,
                                "systems": {"s": {"references": {"k": bad}}}}))
    with pytest.raises(suite.ReferenceError):
        suite.load_references(path)


@pytest.mark.parametrize("name", ["devcluster.json", "h100-node.json"])
def test_shipped_reference_files_load(name):
    from pathlib import Path

    import mpi_examples

    refs = suite.load_references(Path(mpi_examples.__file__).with_name("references") / name)
    assert all(refs.values())


def _doc():
    return {"schema": "mpi_examples/result/v1", "system": "s", "partition": "p", "nodes": 1,
            "ranks": 2, "hostnames": ["h"], "array": "numpy (host)", "devices": [],
            "versions": {"python": "3", "numpy": "2", "cupy": None, "mpi4py": "4",
                         "mpi_library": "Open MPI"},
            "timestamp": "2025-01-01T00:00:00+00:00", "errors": [], "skipped": [],
            "metrics": [_row("pingpong", "latency", 1.0, "us", size=1)]}


def test_validate_accepts_and_rejects():
    doc = _doc()
    assert validate(doc) == []
    doc["metrics"][0]["unit"] = "furlongs"
    doc["metrics"][0]["extra"] = 1
    del doc["ranks"]
    doc["schema"] = "v0"
    problems = " ".join(validate(doc))
    for word in ("furlongs", "extra", "ranks", "v0"):
        assert word in problems


def test_metric_key():
    assert metric_key(_row("pingpong", "bandwidth", 1, size=8)) == "pingpong/bandwidth/8"
    row = metric("gemm", "tflops", "TFLOP/s", stats([1.0]), array="x", precision="bf16")
    assert metric_key(row) == "gemm/tflops/bf16"


def test_bf16_round_trip_and_rounding():
    x = np.array([1.0, -2.5, 3.140625, 1 + 2**-8, 1 + 3 * 2**-8], np.float32)
    back = from_bf16(np, to_bf16(np, x))
    assert back[:3].tolist() == [1.0, -2.5, 3.140625]
    assert back[3] == 1.0 and back[4] == 1 + 2**-6  # ties to even
    assert back.dtype == np.float32


def test_gemm_check_passes_and_catches_wrong_entries():
    g = Gemm(Backend(), "fp32", 48)
    g.run()
    assert g.check() is None
    g.c[:] += 1e-3  # far above fp32 rounding for n=48
    assert "sampled entries off" in g.check()


def test_an_unknown_fault_is_refused_with_the_list_of_known_ones(capsys):
    from tests.mpi_examples.inject import FAULTS, main

    assert main(["no-such-fault", "pingpong"]) == 2
    assert ", ".join(FAULTS) in capsys.readouterr().err


def test_pattern_repeats_every_64_kib_and_is_the_same_bytes_as_computed_whole():
    from mpi_examples.buffers import PATTERN_PERIOD, pattern

    for n in (1, 300, PATTERN_PERIOD, 3 * PATTERN_PERIOD + 77):
        i = np.arange(n, dtype=np.uint64)
        whole = ((i * 7 + (i >> 8) * 13 + 2 * 101) & 0xFF).astype(np.uint8)
        assert np.array_equal(pattern(np, n, 2), whole)
    assert not np.array_equal(pattern(np, 1000, 1), pattern(np, 1000, 2))


def test_provenance_versions_and_options(tmp_path):
    from mpi_examples.results import _cuda_version, nvidia_driver, options

    assert _cuda_version(12040) == "12.4" and _cuda_version(13000) == "13.0"
    proc = tmp_path / "version"
    proc.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build  "
                    "(dvs-builder@U16-I3-B03-4-3)  Tue Jul 15 17:44:12 UTC 2025\nGCC version:  gcc 12.2.0\n")
    assert nvidia_driver(str(proc)) == "580.65.06"
    assert nvidia_driver(str(tmp_path / "absent")) is None
    args = cli.build_parser().parse_args(["suite", "--benchmarks", "pingpong", "--quick"])
    cli.resolve(args, False)
    assert options(args) == {"quick": True, "min_size": 1, "max_size": 64 << 10, "iters": 20, "warmup": 2,
                             "array": "auto", "staging": "auto", "benchmarks": "pingpong"}


def test_schema_takes_the_provenance_fields_and_documents_without_them():
    from tests.result_docs import result_document

    old = result_document()
    assert validate(old) == []
    new = dict(old, options={"quick": True, "max_size": 65536}, slurm={"job_id": "7", "nodelist": "n[1-2]"})
    new["versions"] = dict(old["versions"], cuda_runtime="12.4", cuda_driver="13.0", nvidia_driver="580.65.06")
    assert validate(new) == []
    assert validate(dict(old, slurm={"job_id": 7})) != []  # typed like the environment gives it


def test_nvidia_driver_of_the_proprietary_module(tmp_path):
    from mpi_examples.results import nvidia_driver

    proc = tmp_path / "version"
    proc.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.183.01  Sun May 12 19:39:15 UTC 2024\n")
    assert nvidia_driver(str(proc)) == "535.183.01"


class _EchoPeer:
    """Rank 0's view of a two-rank communicator whose peer answers every message with its
    pattern, except in the iterations listed in ``silent`` (the receive completes, no data)."""

    def __init__(self, silent=()):
        self.silent, self.calls = set(silent), 0

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 2

    def Send(self, msg, dest, tag):
        pass

    def Recv(self, msg, source, tag):
        from mpi_examples.buffers import pattern

        buf, n = msg[0], msg[1]
        if self.calls not in self.silent:
            buf[:n] = pattern(np, n, seed=source + 1)
        self.calls += 1


def _pingpong_case(comm, nbytes=64):
    from mpi_examples.buffers import Transport, make_backend
    from mpi_examples.interconnect import _PingPong

    args = cli.build_parser().parse_args(["pingpong", "--array", "numpy"])
    args.backend = make_backend("numpy", 0)
    cli.resolve(args, False)
    args.transport = Transport(args.backend, "auto")
    return _PingPong(comm, args, nbytes)


def test_pingpong_reports_a_receive_that_brought_no_data():
    healthy = _pingpong_case(_EchoPeer())
    times = healthy.measure(2, 10)
    assert len(times) == 10 and healthy.stamp_problem is None and healthy.verify() is None

    broken = _pingpong_case(_EchoPeer(silent={5, 7}))
    broken.measure(2, 10)
    assert broken.stamp_problem == ("size 64: no data arrived in 2 of 12 iterations "
                                    f"(first byte left at {broken.mark})")
