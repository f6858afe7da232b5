"""Counts, not times: how mpi_examples' ping-pong buffers compare with mpi4py.bench's written ones.

Per message size and rank: page faults during the warm-up and during the timed iterations,
where each buffer lives (glibc's brk heap or a fresh mmap) and the share of its pages backed
by transparent huge pages (pagemap + kpageflags: needs root). Counts hold on a busy machine,
where wall-clock ratios do not.

    mpirun -n 2 python bench/pingpong_buffers.py ours|mpi4py [--max-size 16M]
"""
import argparse
import resource
import struct
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
KPF_THP = 22


def thp_share(addr: int, nbytes: int) -> float | None:
    """Share of the buffer's present 4 KiB pages that belong to a transparent huge page."""
    first, last = addr >> 12, (addr + nbytes - 1) >> 12
    try:
        with open("/proc/self/pagemap", "rb") as pm, open("/proc/kpageflags", "rb") as kf:
            pm.seek(first * 8)
            huge = total = 0
            for (entry,) in struct.iter_unpack("<Q", pm.read((last - first + 1) * 8)):
                total += 1
                if entry >> 63:  # present
                    kf.seek((entry & ((1 << 55) - 1)) * 8)
                    huge += struct.unpack("<Q", kf.read(8))[0] >> KPF_THP & 1
            return huge / total
    except OSError:
        return None  # not root


def placement(addr: int) -> str:
    for line in open("/proc/self/maps"):
        lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
        if lo <= addr < hi:
            return "heap" if "[heap]" in line else "mmap"
    return "?"


def faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def describe(buf, nbytes) -> str:
    share = thp_share(buf.ctypes.data, nbytes)
    return f"{placement(buf.ctypes.data)} thp {'-' if share is None else f'{share:.2f}'}"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("harness", choices=["ours", "mpi4py"])
    p.add_argument("--max-size", default="16M")
    opts = p.parse_args()
    from mpi_examples import cli, interconnect
    from mpi_examples.buffers import Transport, make_backend

    comm = MPI.COMM_WORLD
    args = cli.build_parser().parse_args(["pingpong", "--array", "numpy", "--max-size", opts.max_size])
    args.backend = make_backend("numpy", 0)
    cli.resolve(args, False)
    args.transport = Transport(args.backend, "auto")
    rows = []
    for n in interconnect.message_sizes(args, 1 << 14):
        warm, iters = interconnect.iterations(args, n)  # the same schedule as the comparison's mpi4py.bench
        if opts.harness == "ours":
            case = interconnect._PingPong(comm, args, n)
            send, recv, step = case.send, case.recv, case.step
        else:
            send, recv = np.empty(n, "B"), np.empty(n, "B")
            send.fill(0x5A)
            recv.fill(0x5A)
            smsg, rmsg = [send, n, MPI.BYTE], [recv, n, MPI.BYTE]

            def step(_it, smsg=smsg, rmsg=rmsg):
                if comm.rank == 0:
                    comm.Send(smsg, 1, 0)
                    comm.Recv(rmsg, 1, 0)
                else:
                    comm.Recv(rmsg, 0, 0)
                    comm.Send(smsg, 0, 0)
        comm.Barrier()
        start = faults()
        for it in range(warm + iters):
            if it == warm:
                warmed = faults()
            step(it)
        rows.append(f"{n:>9} faults warm-up {warmed - start:>4} timed {faults() - warmed:>3}   "
                    f"send {describe(send, n)}, recv {describe(recv, n)}")
    every = comm.gather(rows)
    if comm.rank == 0:
        print(f"# {opts.harness}: per size, rank 0 | rank 1")
        for mine, theirs in zip(*every):
            print(mine, "|", theirs.split(None, 1)[1])


if __name__ == "__main__":
    main()
