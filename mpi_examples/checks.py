"""Correctness checks shared by the benchmarks, and the testing-only fault hook."""
import os

FAULT_ENV = "MPI_EXAMPLES_INJECT_FAULT"
FAULTS = ("pingpong-corrupt", "bibw-corrupt", "allreduce-wrong", "alltoall-corrupt",
          "gemm-wrong", "stream-wrong", "hostcopy-corrupt")

_injected: set[str] = set()


class CheckError(Exception):
    """A benchmark's result failed its correctness check; nothing may be reported."""


def set_faults(spec: str | None) -> None:
    """Testing only: choose faults from ``--inject-fault`` or $MPI_EXAMPLES_INJECT_FAULT."""
    _injected.clear()
    for name in filter(None, (spec or os.environ.get(FAULT_ENV, "")).split(",")):
        if name not in FAULTS:
            raise ValueError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        _injected.add(name)


def fault(name: str) -> bool:
    return name in _injected


def mismatch(what: str, got, expected) -> str | None:
    """Compare two host arrays exactly; describe the first difference, or None."""
    import numpy as np

    if got.shape != expected.shape:
        return f"{what}: shape {got.shape} != expected {expected.shape}"
    bad = np.flatnonzero(got != expected)
    if bad.size == 0:
        return None
    i = int(bad[0])
    return (f"{what}: {bad.size} of {got.size} elements differ, first at index {i}: "
            f"got {got.flat[i].item()!r}, expected {expected.flat[i].item()!r}")


def agree(comm, problem: str | None, benchmark: str) -> None:
    """Collective: raise CheckError on every rank if any rank found a problem."""
    problems = comm.allgather(problem)
    found = [f"rank {r}: {p}" for r, p in enumerate(problems) if p]
    if found:
        raise CheckError(f"{benchmark}: correctness check failed: " + "; ".join(found))
