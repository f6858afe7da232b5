"""Result rows, statistics, the human table and the versioned JSON document."""
import datetime
import json
import math
import os
import platform
import re
import statistics
import sys
from pathlib import Path

from . import SCHEMA_ID, __version__
from .jsonschema_lite import check as _check_schema

SCHEMA_PATH = Path(__file__).with_name("schema") / "result-v1.json"


def stats(values) -> dict:
    """mean, stdev, samples, min, max of plain samples."""
    values = [float(v) for v in values]
    return {"mean": statistics.fmean(values),
            "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
            "samples": len(values), "min": min(values), "max": max(values)}


def rate_stats(times, work: float) -> dict:
    """Statistics of ``work / time`` from timed samples, as mpi4py.bench reports them.

    The mean is ``work / mean(time)`` (not the mean of the rates), min and max come from
    the slowest and fastest sample, and the stdev is propagated from the times.
    """
    t = stats(times)
    mean = work / t["mean"]
    return {"mean": mean, "stdev": mean * t["stdev"] / t["mean"], "samples": t["samples"],
            "min": work / t["max"], "max": work / t["min"]}


def metric(benchmark, name, unit, summary, *, array, size=None, precision=None, note=None):
    row = {"benchmark": benchmark, "metric": name, "unit": unit, "size": size,
           "precision": precision, "array": array}
    row.update(summary)
    if note:
        row["note"] = note
    return row


def scaled(summary: dict, factor: float) -> dict:
    """The same statistics multiplied by a constant (e.g. algbw -> busbw, s -> us)."""
    out = dict(summary)
    for key in ("mean", "stdev", "min", "max"):
        out[key] = summary[key] * factor
    return out


def metric_key(row: dict) -> str:
    """benchmark/metric[/size][/precision]: the key used in reference files."""
    parts = [row["benchmark"], row["metric"]]
    if row.get("size") is not None:
        parts.append(str(row["size"]))
    if row.get("precision") is not None:
        parts.append(row["precision"])
    return "/".join(parts)


def _cuda_version(number: int) -> str:
    """12040 -> '12.4' (CUDA's encoding: 1000 * major + 10 * minor)."""
    return f"{number // 1000}.{number % 1000 // 10}"


def nvidia_driver(path: str = "/proc/driver/nvidia/version") -> str | None:
    """The NVIDIA kernel driver's version (e.g. '580.65.06'), read without running a program."""
    try:
        text = Path(path).read_text()
    except OSError:
        return None
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  ..." or "... Open Kernel Module for x86_64  580.65.06 ..."
    line = next((row for row in text.splitlines() if row.startswith("NVRM version:")), "")
    found = re.search(r"\s(\d+\.\d+(?:\.\d+)?)\s", line + " ")
    return found.group(1) if found else None


def _versions() -> dict:
    import mpi4py
    import numpy
    from mpi4py import MPI

    # Open MPI ends the string with a NUL, which JSON carries as \u0000 and web servers refuse.
    library = MPI.Get_library_version().replace("\0", "").strip()
    versions = {"mpi_examples": __version__, "python": platform.python_version(),
                "numpy": numpy.__version__, "mpi4py": mpi4py.__version__,
                "mpi_library": library.splitlines()[0], "mpi_library_full": " ".join(library.split())[:500],
                "mpi_standard": "{}.{}".format(*MPI.Get_version()), "cupy": None}
    if "cupy" in sys.modules:
        cupy = sys.modules["cupy"]
        versions["cupy"] = cupy.__version__
        try:
            versions["cuda_runtime"] = _cuda_version(cupy.cuda.runtime.runtimeGetVersion())
            versions["cuda_driver"] = _cuda_version(cupy.cuda.runtime.driverGetVersion())
        except Exception:
            pass
    driver = nvidia_driver()
    if driver:
        versions["nvidia_driver"] = driver
    return versions


SLURM_VARIABLES = {"job_id": "SLURM_JOB_ID", "cluster": "SLURM_CLUSTER_NAME", "partition": "SLURM_JOB_PARTITION",
                   "nodelist": "SLURM_JOB_NODELIST", "ntasks": "SLURM_NTASKS", "account": "SLURM_JOB_ACCOUNT",
                   "user": "SLURM_JOB_USER"}


def slurm_context() -> dict | None:
    """The Slurm job this ran in, as its environment says; None outside Slurm."""
    found = {key: os.environ[name] for key, name in SLURM_VARIABLES.items() if os.environ.get(name)}
    return found or None


def options(args) -> dict:
    """The options that decide what was measured (sizes, iterations, buffers)."""
    return {"quick": bool(args.quick), "min_size": args.min_size, "max_size": args.max_size, "iters": args.iters,
            "warmup": args.warmup, "array": args.array, "staging": args.staging,
            "benchmarks": getattr(args, "benchmarks", args.command)}


def environment(comm, args, backend, transport_reason: str) -> dict:
    """Collective: where and with what the benchmarks ran."""
    from mpi4py import MPI

    hosts = comm.allgather(MPI.Get_processor_name())
    devices = comm.allgather(backend.device_name)
    env = {
        "system": args.system or os.environ.get("SLURM_CLUSTER_NAME") or "local",
        "partition": args.partition or os.environ.get("SLURM_JOB_PARTITION") or "default",
        "nodes": len(set(hosts)), "ranks": comm.Get_size(), "hostnames": sorted(set(hosts)),
        "array": backend.label, "gpu_aware_mpi": transport_reason,
        "devices": sorted({d for d in devices if d}),
        "versions": _versions(), "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "options": options(args),
    }
    slurm = slurm_context()
    if slurm:
        env["slurm"] = slurm
    return env


def document(env: dict, metrics: list, errors: list, skipped: list, suite=None) -> dict:
    doc = {"schema": SCHEMA_ID, **env, "metrics": metrics, "errors": errors, "skipped": skipped}
    if suite is not None:
        doc["suite"] = suite
    return doc


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validate(doc: dict) -> list[str]:
    """Problems of ``doc`` against schema/result-v1.json; an empty list means valid.

    Uses ``jsonschema`` when it is importable, else a small validator for the keywords
    this schema uses.
    """
    schema = load_schema()
    try:
        import jsonschema
    except ImportError:
        return _check_schema(doc, schema)
    validator = jsonschema.Draft202012Validator(schema)
    return [f"{'/'.join(map(str, e.path)) or '$'}: {e.message}" for e in validator.iter_errors(doc)]


def write_json(doc: dict, target: str) -> None:
    text = json.dumps(doc, indent=2, allow_nan=False) + "\n"
    if target == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        Path(target).write_text(text)


def _num(x: float) -> str:
    if x is None or not math.isfinite(x):
        return f"{'-':>11}"
    return f"{x:11.4g}" if abs(x) < 1e7 else f"{x:11.4e}"


def table(benchmark: str, rows: list, header: str) -> str:
    lines = [f"# mpi_examples {benchmark} | {header}",
             f"# {'metric':<12}{'size [B]':>11} {'precision':>9}{'mean':>11}{'stdev':>11}"
             f"{'min':>11}{'max':>11}{'n':>7}  unit"]
    for r in rows:
        size = "-" if r["size"] is None else str(r["size"])
        lines.append(f"  {r['metric']:<12}{size:>11} {r['precision'] or '-':>9}{_num(r['mean'])}"
                     f"{_num(r['stdev'])}{_num(r['min'])}{_num(r['max'])}{r['samples']:>7}  "
                     f"{r['unit']}" + (f"  ({r['note']})" if r.get("note") else ""))
    return "\n".join(lines)
