"""Command line: ``python -m mpi_examples <benchmark>|suite|list [options]``."""
import argparse
import sys
import traceback

from . import checks, registry, suite
from .results import document, environment, table, validate, write_json

MiB = 1 << 20
GROUPS = {"interconnect": registry.INTERCONNECT, "gpu": registry.GPU}
# option: (default on the host, default on a device, --quick)
DEFAULTS = {
    "min_size": (1, 1, 1), "max_size": (16 * MiB, 16 * MiB, 64 << 10),
    "iters": (1000, 1000, 20), "warmup": (100, 100, 2),
    "gemm_n": (512, 8192, 64), "gemm_iters": (10, 20, 2), "gemm_warmup": (2, 3, 1),
    "stream_n": (1 << 22, 1 << 27, 1 << 16), "stream_iters": (10, 20, 2),
    "copy_size": (16 * MiB, 256 * MiB, MiB), "copy_iters": (10, 20, 2),
}


def size(text: str) -> int:
    """Bytes, with an optional K, M or G suffix (powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().rstrip("B") or "0"
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def _common() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--array", choices=["auto", "numpy", "cupy"], default="auto",
                   help="buffers: cupy on a GPU, numpy on the host (default: cupy if a GPU is present)")
    p.add_argument("--json", metavar="FILE", help="write the JSON result document ('-': stdout)")
    p.add_argument("--system", help="system name (default: $SLURM_CLUSTER_NAME or 'local')")
    p.add_argument("--partition", help="partition (default: $SLURM_JOB_PARTITION or 'default')")
    p.add_argument("--quick", action="store_true", help="small sizes and few iterations")
    p.add_argument("--staging", choices=["auto", "host", "direct"], default="auto",
                   help="device buffers: direct needs CUDA-aware MPI; auto detects it")
    p.add_argument("--precisions", default=",".join(_gpu_precisions()),
                   help="GEMM precisions, comma-separated")
    p.add_argument("--min-size", type=size)
    p.add_argument("--max-size", type=size, help="largest message (default 16M)")
    p.add_argument("--iters", type=int, help="timed iterations up to 16 KiB (fewer above)")
    p.add_argument("--warmup", type=int, help="warm-up iterations up to 16 KiB (fewer above)")
    for opt in ("gemm-n", "gemm-iters", "gemm-warmup", "stream-n", "stream-iters",
                "copy-iters"):
        p.add_argument(f"--{opt}", type=int)
    p.add_argument("--copy-size", type=size)
    return p


def _gpu_precisions():
    from .gpu import PRECISIONS

    return PRECISIONS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mpi_examples", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="<command>")
    common = _common()
    for name in registry.names():
        sub.add_parser(name, parents=[common], help=registry.get(name).help)
    sp = sub.add_parser("suite", parents=[common], help="run a set and judge it against references")
    sp.add_argument("--references", metavar="FILE",
                    help="references JSON file; without it the document carries no verdict (a portal judges it)")
    sp.add_argument("--benchmarks", default="all",
                    help="comma-separated benchmarks or groups (interconnect, gpu, all)")
    sub.add_parser("list", help="list the benchmarks")
    return parser


def resolve(args, on_device: bool) -> None:
    """Fill unset options from DEFAULTS for the backend (or --quick)."""
    column = 2 if args.quick else int(on_device)
    for option, values in DEFAULTS.items():
        if getattr(args, option) is None:
            setattr(args, option, values[column])
    args.precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    unknown = set(args.precisions) - set(_gpu_precisions())
    if unknown:
        raise SystemExit(f"unknown precisions: {', '.join(sorted(unknown))}")


def selection(args) -> list[str]:
    if args.command != "suite":
        return [args.command]
    chosen = []
    for item in args.benchmarks.split(","):
        item = item.strip()
        if item == "all":
            chosen += registry.names()
        elif item in GROUPS:
            chosen += registry.names(GROUPS[item])
        elif item in registry.names():
            chosen.append(item)
        else:
            raise SystemExit(f"unknown benchmark {item!r}; see 'python -m mpi_examples list'")
    return list(dict.fromkeys(chosen))


def _run_all(comm, args, names, out):
    """Run each benchmark; a failed check is recorded and the next one runs."""
    rank, metrics, errors = comm.Get_rank(), [], []
    where = f"ranks: {comm.Get_size()} | {args.env['system']}:{args.env['partition']}"
    for name in names:
        bench = registry.get(name)
        if bench.kind == registry.INTERCONNECT:
            header = f"array: {args.transport.label} | {where} | {args.transport.reason}"
        else:
            header = f"array: {args.backend.label} | {where}"
        try:
            rows = bench.func(comm, args)
        except checks.CheckError as exc:
            errors.append({"benchmark": name, "message": str(exc)})
            if rank == 0:
                print(f"# mpi_examples {name} | ERROR: {exc}", file=out, flush=True)
            continue
        if rank == 0:
            print(table(name, rows, header), file=out, flush=True)
            metrics += rows
    return metrics, errors


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        for name in registry.names():
            print(f"{name:<12}{registry.get(name).kind:<14}{registry.get(name).help}")
        return 0
    names = selection(args)
    references = suite.load_references(args.references) if args.command == "suite" and args.references else None

    from mpi4py import MPI

    from .buffers import Transport, local_rank, make_backend

    comm = MPI.COMM_WORLD
    try:
        args.backend = make_backend(args.array, local_rank(comm))
        resolve(args, args.backend.on_device)
        args.transport = Transport(args.backend, args.staging)
        args.skipped = []
        args.env = environment(comm, args, args.backend, args.transport.reason)
        out = sys.stderr if args.json == "-" else sys.stdout
        if references is not None:
            # Chosen before anything runs and on every rank alike (the environment is the
            # same everywhere): a missing entry stops all ranks at once instead of leaving
            # the others waiting for rank 0 until the job's time limit.
            try:
                args.reference_entry = suite.select(references, args.env["system"], args.env["partition"])
            except suite.ReferenceError as exc:
                if comm.Get_rank() == 0:
                    print(f"# ERROR: {exc}", file=sys.stderr, flush=True)
                return 2
        metrics, errors = _run_all(comm, args, names, out)
    except Exception:  # an unexpected error on one rank would hang the others
        traceback.print_exc()
        sys.stderr.flush()
        comm.Abort(2)
    status = 1 if errors else 0
    if comm.Get_rank() == 0:
        status = max(status, _finish(args, names, references, metrics, errors, out))
    return comm.bcast(status, root=0)


def _finish(args, names, references, metrics, errors, out) -> int:
    """Rank 0: skips, suite verdict, schema check and JSON output; the exit status."""
    status = 0
    for skip in args.skipped:
        print(f"# skipped {skip['benchmark']} {skip.get('precision') or ''}: {skip['reason']}",
              file=out)
    verdict = None
    if references is not None:
        key, refs = args.reference_entry
        results = suite.compare(metrics, refs, set(names))
        verdict = {"references": args.references, "key": key,
                   "passed": suite.passed(results) and not errors, "results": results}
        print(suite.report(results, key), file=out, flush=True)
        status = 0 if verdict["passed"] else 1
    doc = document(args.env, metrics, errors, args.skipped, verdict)
    problems = validate(doc)
    if problems:
        print("# ERROR: result document does not match its schema: " + "; ".join(problems),
              file=sys.stderr)
        status = 1
    if args.json:
        write_json(doc, args.json)
    return status
