"""mpi_examples with one fault put in from outside its kernels, to show each check catches it.

    mpirun -n 2 python -m tests.mpi_examples.inject FAULT BENCHMARK [options...]

The benchmarks hold no test hooks: each fault here replaces one method or function of the
package in this process, as a broken transfer, reduction or kernel would behave, and then runs
the ordinary command line (``mpi_examples.cli.main``).
"""
from __future__ import annotations

import sys
from collections.abc import Callable


def _corrupt_point_to_point(name: str) -> None:
    """The last byte-half of the largest message arrives with one byte flipped."""
    from mpi_examples import interconnect

    verify = interconnect._PointToPoint.verify

    def corrupted(self):
        if self.active and self.name == name and self.nbytes == self.args.max_size:
            self.recv[self.nbytes // 2] ^= 0xFF
        return verify(self)

    interconnect._PointToPoint.verify = corrupted


def _wrong_reduction() -> None:
    """Allreduce takes the maximum where the sum was asked for."""
    from mpi4py import MPI

    from mpi_examples import interconnect

    init = interconnect._Allreduce.__init__

    def wrong(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.op = MPI.MAX

    interconnect._Allreduce.__init__ = wrong


def _corrupt_alltoall() -> None:
    from mpi_examples import interconnect

    verify = interconnect._Alltoall.verify

    def corrupted(self):
        if self.nbytes == self.args.max_size:
            self.recv[-1] ^= 0xFF
        return verify(self)

    interconnect._Alltoall.verify = corrupted


def _wrong_product() -> None:
    """Every element of the product has one bit flipped in each byte."""
    from mpi_examples import gpu

    check = gpu.Gemm.check

    def wrong(self, *args, **kwargs):
        self.c = self.c.copy()
        flipped = self.c.view(self.xb.xp.uint8)
        flipped ^= 0x40
        return check(self, *args, **kwargs)

    gpu.Gemm.check = wrong


def _wrong_triad() -> None:
    """The triad kernel writes one element off by one."""
    from mpi_examples import gpu

    kernels = gpu._stream_kernels

    def with_wrong_triad(xb):
        found = dict(kernels(xb))
        triad, moved = found["triad"]

        def wrong(a, b, c, s):
            triad(a, b, c, s)
            a[len(a) // 3] += 1.0

        found["triad"] = (wrong, moved)
        return found

    gpu._stream_kernels = with_wrong_triad


def _corrupt_byte_copies() -> None:
    """Every copy of bytes (host to device, device to host) flips the middle byte."""
    from mpi_examples import buffers

    for backend in (buffers.Backend, buffers.CupyBackend):
        copy = backend.copy

        def corrupted(self, dst, src, copy=copy):
            copy(self, dst, src)
            if dst.dtype.itemsize == 1 and dst.size:
                dst[dst.size // 2] ^= 0xFF

        backend.copy = corrupted


FAULTS: dict[str, Callable[[], None]] = {
    "pingpong-corrupt": lambda: _corrupt_point_to_point("pingpong"),
    "bibw-corrupt": lambda: _corrupt_point_to_point("bibw"),
    "allreduce-wrong": _wrong_reduction,
    "alltoall-corrupt": _corrupt_alltoall,
    "gemm-wrong": _wrong_product,
    "stream-wrong": _wrong_triad,
    "hostcopy-corrupt": _corrupt_byte_copies,
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in FAULTS:
        print(f"usage: inject FAULT BENCHMARK [options]; faults: {', '.join(FAULTS)}", file=sys.stderr)
        return 2
    FAULTS[argv[0]]()
    from mpi_examples.cli import main as run

    return run(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
