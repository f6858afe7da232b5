"""Array backends (NumPy on the host, CuPy on a device) and how MPI sees their buffers.

CuPy is imported only when asked for. Every result row carries ``Backend.label`` so a
host figure is never mistaken for a device one.
"""
import ctypes
import mmap
import os
import shutil
import subprocess
import time

import numpy as np

PATTERN_PERIOD = 1 << 16  # 7*i and 13*(i >> 8) both wrap modulo 256 after 65536 bytes


def pattern(xp, n: int, seed: int):
    """``n`` bytes of a seed-dependent pattern (every byte written, none constant).

    Byte i is ``(7 i + 13 (i >> 8) + 101 seed) mod 256``, which repeats every 64 KiB: one
    period is computed and copied into the buffer. Computing all of it in uint32 held about
    16 times the message at once (256 MiB for 16 MiB) just before the timed loop; the buffers
    then sat in a heap those temporaries had grown, after a sweep through memory that a
    mpi4py.bench buffer (np.empty, written once) never has.
    """
    # uint16 wraps modulo 65536, a multiple of 256: the low byte is exact, and the temporaries
    # (128 KiB) stay at glibc's first mmap threshold instead of raising it for later buffers.
    i = xp.arange(min(n, PATTERN_PERIOD), dtype=xp.uint16)
    period = ((i * 7 + (i >> 8) * 13 + (seed * 101) % 256) & 0xFF).astype(xp.uint8)
    out = aligned_empty(xp, n, xp.uint8)
    if n <= PATTERN_PERIOD:
        out[...] = period
        return out
    whole = n // PATTERN_PERIOD * PATTERN_PERIOD
    out[:whole].reshape(-1, PATTERN_PERIOD)[...] = period  # broadcast copy: no temporary
    out[whole:] = period[:n - whole]
    return out


PAGE = mmap.PAGESIZE


def aligned_empty(xp, n: int, dtype=np.uint8):
    """An uninitialised array; on the host it starts on a page boundary.

    As OSU's micro-benchmarks do: where a buffer starts decides how many pages a message
    spans, and above the 4 KiB eager limit Open MPI's shared-memory transport reads the
    peer's buffer page by page (CMA). A 4 KiB message from np.empty (16-byte aligned)
    spans two pages and measured 10 % slower than the same message on one page, so an
    unaligned buffer made the 4 KiB figure depend on where malloc happened to put it.
    Device arrays (CuPy) are already aligned by their allocator.
    """
    if xp is not np:
        return xp.empty(n, dtype)
    itemsize = np.dtype(dtype).itemsize
    raw = np.empty(n * itemsize + PAGE, np.uint8)
    start = -raw.ctypes.data % PAGE
    return raw[start:start + n * itemsize].view(dtype)


def written_zeros(xp, n: int, dtype=np.uint8):
    """A buffer of zeros whose pages are all written now (np.zeros of a large size maps
    untouched zero pages, which the first transfer would fault in)."""
    out = aligned_empty(xp, n, dtype)
    out.fill(0)
    return out


class Backend:
    """NumPy on the host. ``CupyBackend`` overrides the device-specific parts."""

    name = "numpy"
    on_device = False

    def __init__(self):
        self.xp = np
        self.device_name = None

    @property
    def label(self) -> str:
        return "numpy (host)"

    def sync(self) -> None:
        """Wait for queued device work; a no-op on the host."""

    def to_host(self, a) -> np.ndarray:
        return np.asarray(a)

    def pattern(self, n: int, seed: int):
        """``n`` bytes of a seed-dependent pattern, written on the backend's memory."""
        return pattern(self.xp, n, seed)

    def host_empty(self, n: int, dtype=np.uint8) -> np.ndarray:
        """Host memory that device copies can use at full speed (pinned on CuPy)."""
        return np.empty(n, dtype)

    def copy(self, dst, src) -> None:
        """Copy between any two contiguous arrays of this backend or the host."""
        np.copyto(dst, src)

    def timeit(self, func) -> float:
        """Seconds that ``func()`` took, device work included."""
        t0 = time.perf_counter()
        func()
        return time.perf_counter() - t0

    def uniform(self, shape, seed: int, dtype):
        return np.random.RandomState(seed).uniform(-1.0, 1.0, shape).astype(dtype)


class CupyBackend(Backend):
    name = "cupy"
    on_device = True

    def __init__(self, device_index: int = 0):
        import cupy

        self.xp = cupy
        self.cupy = cupy
        cupy.cuda.Device(device_index).use()
        props = cupy.cuda.runtime.getDeviceProperties(device_index)
        name = props["name"]
        self.device_name = name.decode() if isinstance(name, bytes) else str(name)
        self.device_index = device_index

    @property
    def label(self) -> str:
        return f"cupy (device {self.device_name})"

    def sync(self) -> None:
        self.cupy.cuda.get_current_stream().synchronize()

    def to_host(self, a) -> np.ndarray:
        return self.cupy.asnumpy(a) if isinstance(a, self.cupy.ndarray) else np.asarray(a)

    def host_empty(self, n: int, dtype=np.uint8) -> np.ndarray:
        nbytes = n * np.dtype(dtype).itemsize
        mem = self.cupy.cuda.alloc_pinned_memory(nbytes)
        return np.frombuffer(mem, dtype, n)

    def _on_device(self, a) -> bool:
        return isinstance(a, self.cupy.ndarray)

    def _ptr(self, a) -> int:
        return a.data.ptr if self._on_device(a) else a.ctypes.data

    def copy(self, dst, src) -> None:
        rt = self.cupy.cuda.runtime
        kinds = {(False, True): rt.memcpyHostToDevice, (True, False): rt.memcpyDeviceToHost,
                 (True, True): rt.memcpyDeviceToDevice, (False, False): rt.memcpyHostToHost}
        kind = kinds[(self._on_device(src), self._on_device(dst))]
        assert dst.nbytes == src.nbytes
        rt.memcpyAsync(self._ptr(dst), self._ptr(src), src.nbytes, kind,
                       self.cupy.cuda.get_current_stream().ptr)

    def timeit(self, func) -> float:
        start, end = self.cupy.cuda.Event(), self.cupy.cuda.Event()
        start.record()
        func()
        end.record()
        end.synchronize()
        return self.cupy.cuda.get_elapsed_time(start, end) / 1e3

    def uniform(self, shape, seed: int, dtype):
        rs = self.cupy.random.RandomState(seed)
        return rs.uniform(-1.0, 1.0, shape, dtype=np.float64).astype(dtype)


def cupy_device_count() -> int:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount()
    except Exception:  # no CuPy, no driver, or no device
        return 0


def make_backend(array: str, local_rank: int) -> Backend:
    """``array`` is numpy, cupy or auto (CuPy when a GPU is present)."""
    if array == "auto":
        array = "cupy" if cupy_device_count() > 0 else "numpy"
    if array == "numpy":
        return Backend()
    count = cupy_device_count()
    if count == 0:
        raise SystemExit("--array cupy: CuPy or a CUDA device is not available here")
    return CupyBackend(local_rank % count)


def local_rank(comm) -> int:
    for var in ("OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"):
        if var in os.environ:
            return int(os.environ[var])
    from mpi4py import MPI

    return comm.Split_type(MPI.COMM_TYPE_SHARED).Get_rank()


def mpi_gpu_support() -> tuple[bool, str]:
    """Whether the MPI library takes device pointers, and how that was found out."""
    env = os.environ.get("MPI_EXAMPLES_GPU_AWARE")
    if env in ("0", "1"):
        return env == "1", f"forced by MPI_EXAMPLES_GPU_AWARE={env}"
    from mpi4py import MPI

    query = getattr(MPI, "Query_cuda_support", None)
    if query is not None:
        return bool(query()), "MPI.Query_cuda_support()"
    try:  # Open MPI's extension, exported by libmpi that mpi4py loaded globally
        func = ctypes.CDLL(None).MPIX_Query_cuda_support
        func.restype = ctypes.c_int
        return bool(func()), "MPIX_Query_cuda_support()"
    except (AttributeError, OSError):
        pass
    if shutil.which("ompi_info"):
        out = subprocess.run(["ompi_info", "--parsable", "--all"], capture_output=True,
                             text=True, check=False).stdout
        built = "mpi_built_with_cuda_support:value:true" in out
        return built, "ompi_info mpi_built_with_cuda_support"
    return False, "no way to ask this MPI library; assumed not CUDA-aware"


class Transport:
    """How a benchmark hands an array to MPI.

    Host arrays and device arrays on a CUDA-aware MPI go directly (the stream is
    synchronised before every MPI call). Otherwise device data is staged through pinned
    host buffers, and the copies are inside the timed region, labelled as such.
    """

    def __init__(self, backend: Backend, mode: str = "auto"):
        self.backend = backend
        self.staged = False
        self.reason = "host memory"
        if backend.on_device:
            aware, how = mpi_gpu_support()
            if mode == "host" or (mode == "auto" and not aware):
                self.staged = True
            self.reason = f"CUDA-aware MPI: {'yes' if aware else 'no'} ({how})"
        self._mirrors: dict[int, np.ndarray] = {}

    @property
    def label(self) -> str:
        if self.staged:
            return f"{self.backend.label} staged through host"
        return self.backend.label

    def _mirror(self, arr):
        key = id(arr)
        if key not in self._mirrors:
            self._mirrors[key] = self.backend.host_empty(arr.size, arr.dtype)
        return self._mirrors[key]

    def send_buf(self, arr):
        """The buffer to pass to MPI as data to send."""
        if self.staged:
            host = self._mirror(arr)
            self.backend.copy(host, arr)
            self.backend.sync()
            return host
        self.backend.sync()
        return arr

    def recv_buf(self, arr):
        """The buffer to pass to MPI to receive into; call ``received`` afterwards."""
        if self.staged:
            return self._mirror(arr)
        self.backend.sync()
        return arr

    def received(self, arr) -> None:
        if self.staged:
            self.backend.copy(arr, self._mirror(arr))
            self.backend.sync()

    def release(self) -> None:
        self._mirrors.clear()
