"""Interconnect benchmarks: ping-pong, bidirectional bandwidth, allreduce, alltoall.

Each size: buffers written with a rank-dependent pattern, a per-iteration check that the
message really arrived (outside the timed region), a Barrier, warm-up iterations excluded,
and the whole received buffer verified at the end. Point-to-point receivers mark their
first byte with a value the message cannot carry there and check it was overwritten; the
collectives stamp the iteration into what they send.
Collective bandwidth follows nccl-tests: algbw = bytes / time; busbw = algbw * 2(n-1)/n
for allreduce and algbw * (n-1)/n for alltoall.
"""
import numpy as np
from mpi4py import MPI

from . import checks
from .buffers import written_zeros
from .registry import INTERCONNECT, benchmark
from .results import metric, rate_stats, scaled, stats

LARGE, HUGE = 1 << 14, 1 << 20


def message_sizes(args, minimum: int = 1) -> list[int]:
    """Powers of two from --min-size to --max-size (at least ``minimum``)."""
    lo = max(args.min_size, minimum)
    return [1 << i for i in range(64) if lo <= 1 << i <= args.max_size]


def iterations(args, nbytes: int) -> tuple[int, int]:
    """(warm-up, timed) iterations: fewer above 16 KiB and again above 1 MiB."""
    if nbytes <= LARGE:
        return args.warmup, args.iters
    div = 10 if nbytes <= HUGE else 50
    return max(args.warmup // div, 1), max(args.iters // div, 2)


def busbw_factor(collective: str, nranks: int) -> float:
    """nccl-tests' bus bandwidth factor."""
    if nranks == 1:
        return 1.0
    return {"allreduce": 2 * (nranks - 1) / nranks, "alltoall": (nranks - 1) / nranks}[collective]


def _stamp(arr, it: int, every: int = 0) -> int:
    """Write the iteration stamp into the first byte (of each chunk when ``every``)."""
    value = it & 0xFF
    if every:
        arr[0::every] = value
    else:
        arr[0] = value
    return value


class _Case:
    """One message size of one benchmark on this rank."""

    name = ""
    collective = False  # True: report the slowest rank's time per iteration

    def __init__(self, comm, args, nbytes):
        self.comm, self.args, self.nbytes = comm, args, nbytes
        self.xb, self.tr = args.backend, args.transport
        self.rank, self.size = comm.Get_rank(), comm.Get_size()

    def measure(self, warmup: int, iters: int) -> np.ndarray:
        """Time ``iters`` iterations after ``warmup`` untimed ones, one ``step`` each."""
        times = np.zeros(iters)
        for it in range(warmup + iters):
            t = self.step(it)
            if t is not None and it >= warmup:
                times[it - warmup] = t
        return times

    def step(self, it: int) -> float | None:  # None: this rank takes no part
        raise NotImplementedError

    def verify(self) -> str | None:
        raise NotImplementedError

    def rows(self, times) -> list[dict]:
        raise NotImplementedError

    def row(self, name, unit, summary, note=None):
        return metric(self.name, name, unit, summary, array=self.tr.label, size=self.nbytes,
                      note=note)


def _sweep(comm, args, case_class, sizes) -> list[dict]:
    rows = []
    for nbytes in sizes:
        case = case_class(comm, args, nbytes)
        warmup, iters = iterations(args, nbytes)
        comm.Barrier()
        times = case.measure(warmup, iters)
        problem = case.stamp_problem
        if case.collective:
            comm.Allreduce(MPI.IN_PLACE, times, op=MPI.MAX)
        problem = problem or case.verify()
        checks.agree(comm, problem, case.name)
        case.tr.release()
        if comm.Get_rank() == 0:
            rows += case.rows(times)
    return rows


class _PointToPoint(_Case):
    """Ranks 0 and 1 (or rank 0 with itself when alone) exchange ``nbytes``."""

    def __init__(self, comm, args, nbytes):
        super().__init__(comm, args, nbytes)
        self.active = self.rank < 2
        self.peer = (1 - self.rank) if self.size > 1 else self.rank
        self.send = self.xb.pattern(nbytes, seed=self.rank + 1)
        self.recv = written_zeros(self.xb.xp, nbytes)
        # Explicit message specs and bound methods, as mpi4py.bench uses them.
        self.smsg, self.rmsg = [self.send, nbytes, MPI.BYTE], [self.recv, nbytes, MPI.BYTE]
        self.mpi_send, self.mpi_recv = comm.Send, comm.Recv
        self.stamp_problem = None
        # The receiver, not the sender, marks each iteration. A stamp written into the send
        # buffer dirties a cache line that the peer then pulls across cores: above the 4 KiB
        # eager limit Open MPI's shared-memory transport reads the sender's buffer directly
        # (CMA), and that one line cost 4-5 % of a 4 KiB round trip against mpi4py.bench,
        # which never writes between iterations. Marking the receive buffer costs nothing
        # the transfer does not already do there, and still catches a receive that
        # completes without new data.
        self.expected_first = int(self.xb.to_host(self.xb.pattern(1, seed=self.peer + 1))[0])
        self.mark = self.expected_first ^ 0xFF

    def arm(self):
        """Mark the receive buffer's first byte before an iteration."""
        self.recv[0] = self.mark

    def check_arrived(self):
        got = int(self.recv[0])
        if got != self.expected_first and self.stamp_problem is None:
            self.stamp_problem = (f"size {self.nbytes}: no data arrived in an iteration (first byte {got}, "
                                  f"expected {self.expected_first})")

    def verify(self):
        if not self.active:
            return None
        expected = self.xb.to_host(self.xb.pattern(self.nbytes, seed=self.peer + 1))
        return checks.mismatch(f"{self.name} size {self.nbytes} from rank {self.peer}",
                               self.xb.to_host(self.recv), expected)


class _PingPong(_PointToPoint):
    name = "pingpong"

    def measure(self, warmup, iters):
        if self.active and self.size > 1 and self.xb.xp is np and not self.tr.staged:
            return self._host_loop(warmup, iters)
        return super().measure(warmup, iters)

    def _host_loop(self, warmup: int, iters: int) -> np.ndarray:
        """Host buffers between two ranks: the same calls as mpi4py.bench, in one tight loop.

        Whatever a rank does between two round trips is time its peer may spend waiting:
        at 1 B a round trip is about 1 us, and the generic loop (a method call per
        iteration, NumPy scalar reads and writes for the arrival check, a NumPy store of
        the time) cost 0.5-0.8 us there on each rank, enough for the echoing rank to miss
        the next message now and then: 1-6 % below mpi4py.bench up to 1 KiB. Here the
        arrival check goes through a memoryview (tens of ns) and nothing but the two MPI
        calls sits between the clock reads; measured in one process against mpi4py.bench
        with written buffers, 1.00-1.09 from 1 B to 4 KiB, where the generic loop gave
        0.94-0.99.
        """
        # Rank 0 sends first and rank 1 answers: the same two calls, in the other order.
        first_call, first_msg, then_call, then_msg = (
            (self.mpi_send, self.smsg, self.mpi_recv, self.rmsg) if self.rank == 0
            else (self.mpi_recv, self.rmsg, self.mpi_send, self.smsg))
        wtime, peer = MPI.Wtime, self.peer
        received = memoryview(self.recv).cast("B")
        expected, mark = self.expected_first, self.mark
        times = [0.0] * (warmup + iters)
        missing = 0
        for it in range(warmup + iters):
            received[0] = mark
            t0 = wtime()
            first_call(first_msg, peer, 0)
            then_call(then_msg, peer, 0)
            t1 = wtime()
            times[it] = t1 - t0
            if received[0] != expected:
                missing += 1
        if missing:
            self.stamp_problem = (f"size {self.nbytes}: no data arrived in {missing} of "
                                  f"{warmup + iters} iterations (first byte left at {mark})")
        return np.array(times[warmup:]) / 2

    def step(self, it):
        if not self.active:
            return None
        comm, tr, send, recv = self.comm, self.tr, self.send, self.recv
        self.arm()
        self.xb.sync()  # nothing is queued on the device from here to the end of the round trip
        t0 = MPI.Wtime()
        if self.size == 1:
            comm.Sendrecv(tr.send_buf(send), 0, 0, tr.recv_buf(recv), 0, 0)
            tr.received(recv)
        elif self.rank == 0:
            comm.Send(tr.send_buf(send), 1, 0)
            comm.Recv(tr.recv_buf(recv), 1, 0)
            tr.received(recv)
        else:
            comm.Recv(tr.recv_buf(recv), 0, 0)
            tr.received(recv)
            comm.Send(tr.send_buf(send), 0, 0)
        elapsed = (MPI.Wtime() - t0) / 2
        self.check_arrived()
        return elapsed

    def rows(self, times):
        return [self.row("latency", "us", scaled(stats(times), 1e6)),
                self.row("bandwidth", "MB/s", rate_stats(times, self.nbytes / 1e6))]


class _BiBW(_PointToPoint):
    name = "bibw"

    def step(self, it):
        if not self.active:
            return None
        tr = self.tr
        self.arm()
        self.xb.sync()
        t0 = MPI.Wtime()
        reqs = [self.comm.Irecv(tr.recv_buf(self.recv), self.peer, 1),
                self.comm.Isend(tr.send_buf(self.send), self.peer, 1)]
        MPI.Request.Waitall(reqs)
        tr.received(self.recv)
        elapsed = MPI.Wtime() - t0
        self.check_arrived()
        return elapsed

    def rows(self, times):
        both = 2 if self.size > 1 else 1
        return [self.row("bandwidth", "MB/s", rate_stats(times, both * self.nbytes / 1e6),
                         note="both directions together")]


class _Collective(_Case):
    collective = True

    def __init__(self, comm, args, nbytes):
        super().__init__(comm, args, nbytes)
        self.stamp_problem = None

    def timed(self, func) -> float:
        self.xb.sync()
        t0 = MPI.Wtime()
        func()
        return MPI.Wtime() - t0

    def rows(self, times):
        algbw = rate_stats(times, self.nbytes / 1e9)
        return [self.row("time", "us", scaled(stats(times), 1e6)),
                self.row("algbw", "GB/s", algbw),
                self.row("busbw", "GB/s", scaled(algbw, busbw_factor(self.name, self.size)))]


class _Allreduce(_Collective):
    name = "allreduce"

    def __init__(self, comm, args, nbytes):
        super().__init__(comm, args, nbytes)
        xp, count = self.xb.xp, nbytes // 8
        # Small integers in float64: sums are exact whatever the reduction order.
        self.weights = xp.arange(count, dtype=xp.float64) % 13 + 1
        self.send = self.weights * (self.rank + 1)
        self.recv = xp.zeros(count, xp.float64)
        self.op = MPI.SUM

    def step(self, it):
        self.send[0] = it + self.rank
        tr = self.tr
        elapsed = self.timed(lambda: self.comm.Allreduce(tr.send_buf(self.send),
                                                         tr.recv_buf(self.recv), op=self.op))
        tr.received(self.recv)
        n = self.size
        expected = n * it + n * (n - 1) // 2
        got = float(self.recv[0])
        if got != expected and self.stamp_problem is None:
            self.stamp_problem = f"size {self.nbytes} iteration {it}: element 0 is {got}, expected the sum {expected}"
        return elapsed

    def verify(self):
        n = self.size
        expected = self.xb.to_host(self.weights * (n * (n + 1) // 2))
        return checks.mismatch(f"allreduce size {self.nbytes} (sum over {n} ranks)",
                               self.xb.to_host(self.recv)[1:], expected[1:])


class _Alltoall(_Collective):
    name = "alltoall"

    def __init__(self, comm, args, nbytes):
        super().__init__(comm, args, nbytes)
        self.chunk = nbytes // self.size
        self.nbytes = self.chunk * self.size  # whole chunks only
        self.send = self.xb.pattern(self.chunk * self.size, seed=self.rank + 1)
        self.recv = written_zeros(self.xb.xp, self.chunk * self.size)
        self.last = 0

    def step(self, it):
        self.last = _stamp(self.send, it, self.chunk)
        tr = self.tr
        elapsed = self.timed(lambda: self.comm.Alltoall(tr.send_buf(self.send),
                                                        tr.recv_buf(self.recv)))
        tr.received(self.recv)
        if int(self.recv[0]) != self.last and self.stamp_problem is None:
            self.stamp_problem = f"size {self.nbytes} iteration {it}: stale data (stamp {int(self.recv[0])})"
        return elapsed

    def verify(self):
        c, me = self.chunk, self.rank
        parts = []
        for src in range(self.size):
            part = self.xb.to_host(self.xb.pattern(c * self.size, seed=src + 1))[me * c:(me + 1) * c]
            part[0] = self.last
            parts.append(part)
        return checks.mismatch(f"alltoall size {self.nbytes}", self.xb.to_host(self.recv),
                               np.concatenate(parts))


@benchmark(INTERCONNECT)
def pingpong(comm, args):
    """Ping-pong latency and bandwidth between ranks 0 and 1 (blocking Send/Recv)."""
    return _sweep(comm, args, _PingPong, message_sizes(args))


@benchmark(INTERCONNECT)
def bibw(comm, args):
    """Bidirectional bandwidth between ranks 0 and 1 (Isend/Irecv both ways)."""
    return _sweep(comm, args, _BiBW, message_sizes(args))


@benchmark(INTERCONNECT)
def allreduce(comm, args):
    """Allreduce (sum of float64) time, algbw and busbw over all ranks."""
    return _sweep(comm, args, _Allreduce, message_sizes(args, minimum=8))


@benchmark(INTERCONNECT)
def alltoall(comm, args):
    """Alltoall time, algbw and busbw; size is the bytes each rank sends in total."""
    return _sweep(comm, args, _Alltoall, message_sizes(args, minimum=comm.Get_size()))
