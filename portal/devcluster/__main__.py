"""Command line: ``python -m portal.devcluster {start,stop,status,env,destroy} --dir DIR``."""
from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from portal.devcluster.cluster import MAX_NODES, ClusterError, LocalCluster
from portal.devcluster.restd import write_token_file

DEFAULT_DIR = Path("/var/tmp/portal-devcluster")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="portal-devcluster", description=__doc__)
    parser.add_argument("action", choices=["start", "stop", "status", "env", "destroy", "token"])
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="cluster folder")
    parser.add_argument("--name", help="Slurm cluster name (default: from the folder)")
    parser.add_argument("--nodes", type=int, default=None,
                        help=f"Slurm nodes on this host, 1 to {MAX_NODES} (one slurmd each;"
                             " default: as the folder was created, else 1)")
    parser.add_argument("--rest", action="store_true",
                        help="also run slurmrestd with JWT (for the rest scheduler adapter);"
                             " a folder made with it keeps it")
    parser.add_argument("--user", default="root", help="token: the user it is made for (default root)")
    parser.add_argument("--lifespan", type=int, default=86400, help="token: seconds it is valid")
    parser.add_argument("--out", type=Path, help="token: the file to write (mode 0600)")
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    try:
        cluster = LocalCluster(args.dir, args.name, nodes=args.nodes, rest=args.rest)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        if args.action == "start":
            LocalCluster.install_packages()
            began = time.monotonic()
            cluster.start(timeout=args.timeout)
            print(f"cluster {cluster.cluster_name} ready in {time.monotonic() - began:.1f} s;"
                  f" nodes {','.join(cluster.node_names)};"
                  f" use: export SLURM_CONF={shlex.quote(str(cluster.conf_path))}")
            print(cluster.network_note)
            if cluster.rest:
                print(f"slurmrestd at {cluster.rest_url} (JWT; key {cluster.root}/etc/jwt_hs256.key)")
        elif args.action == "stop":
            cluster.stop()
        elif args.action == "destroy":
            cluster.destroy()
        elif args.action == "token":
            if not cluster.rest:
                parser.error("this cluster has no slurmrestd: start it with --rest on a new folder")
            out = write_token_file(args.out or cluster.root / "etc" / f"rest-{args.user}.token",
                                   cluster.token(args.user, args.lifespan))
            print(f"token for {args.user} in {out}; a site using it: flask sites add NAME --cluster"
                  f" {cluster.cluster_name} --adapter rest --rest-url {cluster.rest_url}"
                  f" --rest-token-file {out} --slurm-conf {cluster.conf_path}")
        elif args.action == "env":
            for key, value in cluster.env.items():
                print(f"export {key}={shlex.quote(value)}")
        else:
            for daemon, pid in cluster.status().items():
                print(f"{daemon:10} {'running pid ' + str(pid) if pid else 'stopped'}")
            return 0 if cluster.is_running() else 3
    except ClusterError as exc:
        print(f"portal-devcluster: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
