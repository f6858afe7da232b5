"""Correctness checks shared by the benchmarks.

Tests show that each check catches a fault by putting one in from outside the benchmarks
(tests/mpi_examples/inject.py): nothing here or in the kernels knows about tests.
"""


class CheckError(Exception):
    """A benchmark's result failed its correctness check; nothing may be reported."""


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
