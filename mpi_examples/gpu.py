"""GPU benchmarks: GEMM TFLOP/s per precision, STREAM on the device, host-device copies.

With ``--array numpy`` the same code runs on the host through NumPy (labelled so), which
lets the tests exercise every path without a GPU. Each rank measures its own device;
rank 0 reports the samples of all ranks pooled.
"""
import math

import numpy as np

from . import checks
from .buffers import pattern
from .registry import GPU, benchmark
from .results import metric, rate_stats

PRECISIONS = ("fp64", "fp32", "tf32", "bf16", "fp16")
# Unit roundoff of (input rounding, output storage, accumulation) per precision.
ROUNDOFF = {"fp64": (0.0, 2**-53, 2**-53), "fp32": (0.0, 2**-24, 2**-24),
            "tf32": (2**-11, 2**-24, 2**-24), "bf16": (0.0, 2**-8, 2**-24),
            "fp16": (0.0, 2**-11, 2**-24)}
# cudaDataType_t and cublasComputeType_t values (library_types.h, cublas_api.h).
_CUDA_TYPE = {"fp64": 1, "fp32": 0, "tf32": 0, "fp16": 2, "bf16": 14}
_COMPUTE = {"fp64": 70, "fp32": 68, "tf32": 77, "fp16": 68, "bf16": 68}
_STORAGE = {"fp64": np.float64, "fp32": np.float32, "tf32": np.float32, "fp16": np.float16,
            "bf16": np.uint16}


class Unsupported(Exception):
    """This backend cannot run this precision; the reason is reported as a skip."""


def to_bf16(xp, x):
    """float32 -> bfloat16 bit patterns (uint16), rounding to nearest even."""
    u = xp.ascontiguousarray(x, dtype=xp.float32).view(xp.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(xp.uint16)


def from_bf16(xp, bits):
    return (xp.ascontiguousarray(bits).astype(xp.uint32) << 16).view(xp.float32)


def _pooled(comm, samples):
    """All ranks' samples on rank 0 (None elsewhere)."""
    gathered = comm.gather(list(samples), root=0)
    return None if gathered is None else [s for part in gathered for s in part]


class Gemm:
    """C = A @ B of n x n matrices stored in ``precision`` on the backend."""

    def __init__(self, xb, precision: str, n: int):
        self.xb, self.precision, self.n = xb, precision, n
        xp = xb.xp
        storage = _STORAGE[precision]
        if not xb.on_device and precision in ("tf32", "bf16"):
            raise Unsupported(f"{precision} needs tensor cores; NumPy has no {precision} matmul")
        a = xb.uniform((n, n), 1, np.float32)
        b = xb.uniform((n, n), 2, np.float32)
        cast = (lambda x: to_bf16(xp, x)) if precision == "bf16" else (lambda x: x.astype(storage))
        self.a, self.b = cast(a), cast(b)
        self.c = xp.zeros((n, n), storage)
        self.method = "numpy.matmul" if not xb.on_device else "cublasGemmEx"

    def run(self):
        if self.method == "cublasGemmEx":
            self._gemm_ex()
        else:
            self.xb.xp.matmul(self.a, self.b, out=self.c)

    def _gemm_ex(self):
        from cupy.cuda import cublas, device

        n, p = self.n, self.precision
        scalar = np.float64 if p == "fp64" else np.float32
        one, zero = np.ones(1, scalar), np.zeros(1, scalar)
        t = _CUDA_TYPE[p]
        # Row-major C = A B is column-major C^T = B^T A^T: pass B first.
        cublas.gemmEx(device.get_cublas_handle(), 0, 0, n, n, n, one.ctypes.data,
                      self.b.data.ptr, t, n, self.a.data.ptr, t, n, zero.ctypes.data,
                      self.c.data.ptr, t, n, _COMPUTE[p], -1)

    def start(self):
        """First call; falls back to cupy.matmul where cublasGemmEx is not usable."""
        try:
            self.run()
            self.xb.sync()
        except Exception as exc:
            if self.method != "cublasGemmEx" or self.precision in ("tf32", "bf16"):
                raise Unsupported(f"{self.precision}: {type(exc).__name__}: {exc}") from exc
            self.method = f"cupy.matmul (cublasGemmEx failed: {exc})"
            self.run()

    def _host(self, x):
        x = self.xb.to_host(x)
        return from_bf16(np, x).astype(np.float64) if self.precision == "bf16" else x.astype(np.float64)

    def check(self, samples: int = 16) -> str | None:
        """Compare sampled entries with a float64 reference of the same inputs."""
        xp, n = self.xb.xp, self.n
        rng = np.random.default_rng(12345)
        rows = np.sort(rng.choice(n, size=min(n, samples), replace=False))
        cols = np.sort(rng.choice(n, size=min(n, samples), replace=False))
        a = self._host(xp.take(self.a, xp.asarray(rows), axis=0))
        b = self._host(xp.take(self.b, xp.asarray(cols), axis=1))
        got = self._host(xp.take(xp.take(self.c, xp.asarray(rows), axis=0), xp.asarray(cols), axis=1))
        ref = a @ b
        rss = np.sqrt((a * a) @ (b * b))
        u_in, u_out, u_acc = ROUNDOFF[self.precision]
        tol = 16 * (u_out * np.abs(ref) + (2 * u_in + u_acc * math.sqrt(n)) * rss) + 1e-300
        err = np.abs(got - ref)
        bad = np.argwhere(~(err <= tol))
        if bad.size == 0:
            return None
        i, j = bad[0]
        return (f"gemm {self.precision} n={n}: {len(bad)} of {got.size} sampled entries off, "
                f"C[{rows[i]},{cols[j]}] = {got[i, j]:.17g}, reference {ref[i, j]:.17g}, "
                f"tolerance {tol[i, j]:.3g}")


@benchmark(GPU)
def gemm(comm, args):
    """Matrix multiply TFLOP/s per precision, checked against a float64 reference."""
    xb, rows = args.backend, []
    for precision in args.precisions:
        try:
            g = Gemm(xb, precision, args.gemm_n)
            g.start()
            reason = None
        except Unsupported as exc:
            g, reason = None, str(exc)
        reasons = comm.allgather(reason)
        if any(reasons):
            if comm.Get_rank() == 0:
                args.skipped.append({"benchmark": "gemm", "precision": precision,
                                     "reason": next(r for r in reasons if r)})
            continue
        times = [xb.timeit(g.run) for _ in range(args.gemm_warmup + args.gemm_iters)]
        checks.agree(comm, g.check(), "gemm")
        pooled = _pooled(comm, times[args.gemm_warmup:])
        if pooled is not None:
            rows.append(metric("gemm", "tflops", "TFLOP/s", rate_stats(pooled, 2 * g.n**3 / 1e12),
                               array=xb.label, precision=precision,
                               note=f"n={g.n}, {g.method}"))
        del g
    return rows


def _stream_kernels(xb):
    """name -> (function(a, b, c, s), arrays moved per element), as in STREAM."""
    if xb.on_device:
        ek = xb.cupy.ElementwiseKernel
        k_copy = ek("float64 x", "float64 y", "y = x", "stream_copy")
        k_scale = ek("float64 x, float64 s", "float64 y", "y = s * x", "stream_scale")
        k_add = ek("float64 x, float64 y", "float64 z", "z = x + y", "stream_add")
        k_triad = ek("float64 x, float64 y, float64 s", "float64 z", "z = x + s * y", "stream_triad")
        return {"copy": (lambda a, b, c, s: k_copy(a, c), 2),
                "scale": (lambda a, b, c, s: k_scale(c, s, b), 2),
                "add": (lambda a, b, c, s: k_add(a, b, c), 3),
                "triad": (lambda a, b, c, s: k_triad(b, c, s, a), 3)}

    def triad(a, b, c, s):  # two passes in NumPy; bytes counted as STREAM does
        np.multiply(c, s, out=a)
        np.add(a, b, out=a)

    return {"copy": (lambda a, b, c, s: np.copyto(c, a), 2),
            "scale": (lambda a, b, c, s: np.multiply(c, s, out=b), 2),
            "add": (lambda a, b, c, s: np.add(a, b, out=c), 3),
            "triad": (triad, 3)}


def _stream_expected(rounds: int, s: float):
    a, b, c = 1.0, 2.0, 0.0
    for _ in range(rounds):
        c = a
        b = s * c
        c = a + b
        a = b + s * c
    return a, b, c


@benchmark(GPU)
def stream(comm, args):
    """STREAM copy, scale, add, triad on float64 arrays, and a plain memcpy for scale."""
    xb, xp, n, s = args.backend, args.backend.xp, args.stream_n, 3.0
    a, b, c = xp.full(n, 1.0), xp.full(n, 2.0), xp.zeros(n)
    kernels = _stream_kernels(xb)
    times = {name: [] for name in kernels}
    rounds = args.stream_iters + 1  # the first round is a warm-up
    for r in range(rounds):
        for name, (func, _) in kernels.items():
            t = xb.timeit(lambda func=func: func(a, b, c, s))
            if r:
                times[name].append(t)
    problem = None
    for arr, name, want in zip((a, b, c), "abc", _stream_expected(rounds, s)):
        worst = float(xp.abs(arr - want).max()) / abs(want)
        if not worst <= 1e-13:
            problem = problem or f"stream: array {name} off by {worst:.3g} (relative) from {want}"
    memcpy = [xb.timeit(lambda: xb.copy(c, a)) for _ in range(args.stream_iters + 1)][1:]
    if problem is None and not bool(xp.array_equal(c, a)):
        problem = "stream: memcpy destination differs from its source"
    checks.agree(comm, problem, "stream")
    times["memcpy"] = memcpy
    moved = {name: k for name, (_, k) in kernels.items()} | {"memcpy": 2}
    note = {"memcpy": "device-to-device copy, read+write counted" if xb.on_device
            else "host copy, read+write counted"}
    rows = []
    for name, samples in times.items():
        pooled = _pooled(comm, samples)
        if pooled is not None:
            rows.append(metric("stream", name, "GB/s", rate_stats(pooled, moved[name] * 8 * n / 1e9),
                               array=xb.label, note=note.get(name, f"n={n} float64")))
    return rows


@benchmark(GPU)
def hostcopy(comm, args):
    """Host-to-device and device-to-host copy bandwidth from pinned host memory."""
    xb, xp, rows = args.backend, args.backend.xp, []
    note = "pinned host memory" if xb.on_device else "host-to-host copy (NumPy)"
    for nbytes in sorted({min(1 << 20, args.copy_size), args.copy_size}):
        host = xb.host_empty(nbytes)
        host[:] = pattern(np, nbytes, comm.Get_rank() + 1)
        back = xb.host_empty(nbytes)
        back[:] = 0
        dev = xp.zeros(nbytes, xp.uint8)
        reps = range(args.copy_iters + 1)
        h2d = [xb.timeit(lambda dev=dev, host=host: xb.copy(dev, host)) for _ in reps][1:]
        d2h = [xb.timeit(lambda back=back, dev=dev: xb.copy(back, dev)) for _ in reps][1:]
        problem = (checks.mismatch(f"hostcopy h2d {nbytes} B", xb.to_host(dev), host)
                   or checks.mismatch(f"hostcopy d2h {nbytes} B", back, host))
        checks.agree(comm, problem, "hostcopy")
        for name, samples in (("h2d", h2d), ("d2h", d2h)):
            pooled = _pooled(comm, samples)
            if pooled is not None:
                rows.append(metric("hostcopy", name, "GB/s", rate_stats(pooled, nbytes / 1e9),
                                   array=xb.label, size=nbytes, note=note))
    return rows
