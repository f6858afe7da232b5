"""Benchmark registry, in the style of mpi4py's bench.py: one function per benchmark.

A benchmark is ``func(comm, args) -> list[dict]`` returning metric rows (see
``results.metric``). It must call ``checks.agree`` on its correctness checks so every
rank raises the same ``CheckError`` together.
"""
from collections.abc import Callable
from dataclasses import dataclass

INTERCONNECT = "interconnect"
GPU = "gpu"


@dataclass(frozen=True)
class Benchmark:
    name: str
    kind: str
    func: Callable
    help: str


BENCHMARKS: dict[str, Benchmark] = {}


def benchmark(kind: str):
    """Register ``func`` under its own name as a benchmark of ``kind``."""

    def register(func):
        doc = (func.__doc__ or "").strip().splitlines()
        BENCHMARKS[func.__name__] = Benchmark(func.__name__, kind, func, doc[0] if doc else "")
        return func

    return register


def names(kind: str | None = None) -> list[str]:
    _load()
    return [b.name for b in BENCHMARKS.values() if kind is None or b.kind == kind]


def get(name: str) -> Benchmark:
    _load()
    return BENCHMARKS[name]


def _load():
    # Importing the modules runs their decorators.
    from . import gpu, interconnect  # noqa: F401
