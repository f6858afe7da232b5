"""sacctmgr against a slurmdbd on this host, with and without delayed ACKs on loopback.

Starts a throwaway dev cluster (or uses ``--dir`` of a running one), then times ``sacctmgr
show cluster`` and an ``add account`` / ``delete account`` pair, alternating the loopback
routes between ``quickack 0`` (Linux's delayed ACKs, 40 ms) and ``quickack 1``, and prints
the medians and their ratio. The routes are left with quick ACKs, as the dev cluster sets
them. Needs root and iproute2.

    python bench/sacctmgr_roundtrip.py [--rounds 5] [--dir /tmp/some-devcluster]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from portal.devcluster.cluster import LocalCluster, set_loopback_quickack


def timed(argv: list[str], env: dict) -> float:
    began = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, timeout=60)
    return time.perf_counter() - began


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", help="a running dev cluster's folder (default: a new one, destroyed after)")
    args = parser.parse_args()
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-sacctmgr-"))
    cluster = LocalCluster(folder)
    started = not cluster.is_running()
    cluster.start(timeout=90)
    env = {**os.environ, **cluster.env}
    name = cluster.cluster_name
    samples: dict[tuple[str, bool], list[float]] = {}
    try:
        for round_ in range(args.rounds):
            for on in ((False, True) if round_ % 2 == 0 else (True, False)):
                set_loopback_quickack(on)
                samples.setdefault(("show cluster", on), []).append(
                    timed(["sacctmgr", "-n", "show", "cluster"], env))
                add = timed(["sacctmgr", "-i", "add", "account", "benchrt", f"cluster={name}"], env)
                delete = timed(["sacctmgr", "-i", "delete", "account", "benchrt"], env)
                samples.setdefault(("add + delete account", on), []).append(add + delete)
    finally:
        set_loopback_quickack(True)
        if started and not args.dir:
            cluster.destroy()
            shutil.rmtree(folder, ignore_errors=True)
    print(f"# sacctmgr against slurmdbd on this host, median of {args.rounds} (seconds)")
    print(f"  {'command':24} {'delayed ACK':>12} {'quick ACK':>10} {'ratio':>7}")
    for what in ("show cluster", "add + delete account"):
        slow, fast = statistics.median(samples[(what, False)]), statistics.median(samples[(what, True)])
        print(f"  {what:24} {slow:12.3f} {fast:10.3f} {slow / fast:7.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
