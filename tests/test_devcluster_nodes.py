"""A devcluster with two Slurm nodes on one host: two slurmd, and jobs that span both.

The cluster is its own (own folder, name, ports and database), not the session's test
cluster, and is destroyed at the end.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

from portal.devcluster.cluster import LocalCluster, _pid_alive
from portal.devcluster.pytest_plugin import wait_for

MPI_PROGRAM = (
    "import os; from mpi4py import MPI; c = MPI.COMM_WORLD; "
    "print('rank', c.rank, c.size, os.environ['SLURMD_NODENAME'], c.allreduce(c.rank + 1))"
)


def _srun(cluster: LocalCluster, *argv: str) -> list[str]:
    proc = subprocess.run(["srun", *argv], capture_output=True, text=True, timeout=120,
                          env={**cluster.env, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"},
                          check=False)
    assert proc.returncode == 0, (f"srun {' '.join(argv)} exited {proc.returncode}\n"
                                  f"{proc.stdout}\n{proc.stderr}\n"
                                  + cluster.log_tail("slurmd"))
    return sorted(proc.stdout.splitlines())


@pytest.mark.slurm
def test_two_nodes_on_one_host_run_one_job_across_both(tmp_path: Path) -> None:
    # A short folder: PMIx and munge put unix sockets under it (108-byte path limit).
    root = Path(tempfile.mkdtemp(prefix="tn", dir="/var/tmp"))
    cluster = LocalCluster(root, f"tn{uuid.uuid4().hex[:10]}", nodes=2)
    pids: list[int] = []
    job_pids = tmp_path / "job-pids"  # outside the cluster's folder, which destroy() removes
    try:
        LocalCluster.install_packages()
        cluster.start(timeout=90)
        status = cluster.status()
        pids = [pid for pid in status.values() if pid]
        assert list(status) == ["munged", "slurmdbd", "slurmctld", "slurmd-n1", "slurmd-n2"]
        assert len(set(pids)) == 5, status
        # Another process (no nodes= given) finds every slurmd from the config.
        again = LocalCluster(root)
        assert again.nodes == 2 and again.status() == status and again.is_running()

        nodes = subprocess.run(["sinfo", "-h", "-N", "-p", "cpu", "-o", "%N %t"],
                               capture_output=True, text=True, env=cluster.env, check=True)
        assert nodes.stdout.split() == ["n1", "idle", "n2", "idle"]

        # One task per node: each reports the Slurm node it landed on.
        assert _srun(cluster, "-N2", "-l", "bash", "-c", "echo $SLURMD_NODENAME") == [
            "0: n1", "1: n2"]
        # MPI over PMIx: the two ranks form one communicator across the two nodes.
        lines = _srun(cluster, "--mpi=pmix", "-N2", "-n2", "-l", sys.executable,
                      "-c", MPI_PROGRAM)
        assert lines == ["0: rank 0 2 n1 3", "1: rank 1 2 n2 3"], lines

        # Stopping "slurmd" stops every node's slurmd; starting it brings both back.
        cluster.stop_daemon("slurmd")
        assert cluster.status()["slurmd-n1"] is None and cluster.status()["slurmd-n2"] is None
        assert not cluster.is_running()
        cluster.start(timeout=60)
        assert cluster.is_running()
        pids += [pid for pid in cluster.status().values() if pid]

        # A job still running when the cluster goes: its processes on both nodes go with it.
        subprocess.run(["sbatch", "-N2", "-o", str(tmp_path / "job.out"), "--wrap",
                        f"srun -N2 /bin/bash -c 'echo $$ >> {job_pids}; exec sleep 600'"],
                       env={**cluster.env, "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}, check=True, capture_output=True,
                       timeout=30)
        try:
            wait_for(lambda: job_pids.exists() and len(job_pids.read_text().split()) == 2,
                     timeout=60, what="the job's two tasks")
        except AssertionError:
            queue = subprocess.run(["squeue", "-o", "%i %T %r"], env=cluster.env, capture_output=True, text=True)
            output = (tmp_path / "job.out").read_text() if (tmp_path / "job.out").exists() else "(no output)"
            raise AssertionError(f"the job's tasks never started:\n{queue.stdout}\n{output}") from None
    finally:
        pids += [pid for pid in cluster.status().values() if pid]
        cluster.destroy()
        shutil.rmtree(root, ignore_errors=True)
    assert not [pid for pid in pids if _pid_alive(pid)], "a daemon outlived destroy()"
    tasks = [int(pid) for pid in job_pids.read_text().split()]
    assert not [pid for pid in tasks if _pid_alive(pid)], "a job's process outlived its cluster"
    assert not root.exists()


def test_node_count_is_checked_and_remembered(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="1 to 4"):
        LocalCluster(tmp_path / "a", "tnbad", nodes=5)
    conf = tmp_path / "b" / "etc" / "slurm.conf"
    conf.parent.mkdir(parents=True)
    conf.write_text("ClusterName=tnconf\nNodeName=n1 Port=1\nNodeName=n2 Port=2\n")
    cluster = LocalCluster(tmp_path / "b")
    assert (cluster.cluster_name, cluster.nodes) == ("tnconf", 2)
    assert cluster.daemons[-2:] == ("slurmd-n1", "slurmd-n2")
    with pytest.raises(ValueError, match="2-node cluster, not 1"):
        LocalCluster(tmp_path / "b", nodes=1)
    single = LocalCluster(tmp_path / "c", "tnone")
    assert single.nodes == 1 and single.node_names == ("localhost",)
    assert single.daemons == ("munged", "slurmdbd", "slurmctld", "slurmd")
