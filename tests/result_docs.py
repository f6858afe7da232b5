"""Builders of mpi_examples result documents (schema mpi_examples/result/v1) for portal tests."""
from __future__ import annotations

from datetime import UTC, datetime


def metric(benchmark: str, name: str, unit: str, mean: float, *, size=None, precision=None, stdev=0.0):
    return {"benchmark": benchmark, "metric": name, "unit": unit, "size": size, "precision": precision,
            "array": "numpy (host)", "mean": mean, "stdev": stdev, "samples": 10,
            "min": mean - stdev, "max": mean + stdev}


def result_document(*, system="devcluster", partition="cpu", when: datetime | None = None,
                    bandwidth=11000.0, latency=0.6, errors=()) -> dict:
    when = when or datetime.now(UTC)
    return {
        "schema": "mpi_examples/result/v1", "system": system, "partition": partition,
        "nodes": 1, "ranks": 2, "hostnames": ["localhost"], "array": "numpy (host)",
        "gpu_aware_mpi": "not applicable: host buffers", "devices": [],
        "versions": {"mpi_examples": "1", "python": "3.11", "numpy": "2", "cupy": None,
                     "mpi4py": "4", "mpi_library": "Open MPI v4.1.4"},
        "slurm_job_id": None, "timestamp": when.isoformat(timespec="seconds"),
        "metrics": [metric("pingpong", "latency", "us", latency, size=8, stdev=0.05),
                    metric("pingpong", "bandwidth", "MB/s", bandwidth, size=1048576, stdev=300.0)],
        "errors": [{"benchmark": b, "message": m} for b, m in errors], "skipped": [],
    }


REFERENCES = {
    "devcluster:*": {
        "pingpong/bandwidth/1048576": {"value": 10000.0, "lower": -0.2, "upper": None, "unit": "MB/s"},
        "pingpong/latency/8": {"value": 0.7, "lower": None, "upper": 0.5, "unit": "us"},
    }
}
