"""Writes to slurmdbd go one at a time through the accounting lock (portal/slurm/writelock.py).

slurmdbd 22.05 on MariaDB loses or dies on account changes made at the same moment (four
``sacctmgr -i add account`` at once deadlocked its database and it exited within two seconds
here), so every adapter write takes the lock a deployment names in PORTAL_SLURM_ACCOUNTING_LOCK.
"""
from __future__ import annotations

import fcntl
import os
import subprocess
import threading
import time

import pytest

from portal.devcluster.pytest_plugin import unique_name
from portal.slurm import SchedulerUnreachable, make_scheduler
from portal.slurm.writelock import accounting_writes


def test_a_writer_waits_for_the_lock_and_says_who_held_it_too_long(tmp_path):
    lock = tmp_path / "slurmdbd.lock"
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        began = time.monotonic()
        with pytest.raises(SchedulerUnreachable, match=r"another process held the Slurm accounting lock .* for more than 0.3 s"):
            with accounting_writes(str(lock), timeout=0.3):
                pass
        assert 0.3 <= time.monotonic() - began < 2
    with accounting_writes(str(lock), timeout=0.3):  # released: taken at once
        pass


def test_writes_of_one_process_wait_while_another_holds_the_lock(tmp_path):
    lock = tmp_path / "slurmdbd.lock"
    holder = subprocess.Popen(["flock", str(lock), "sleep", "1"])
    try:
        time.sleep(0.2)
        began = time.monotonic()
        with accounting_writes(str(lock), timeout=10):
            waited = time.monotonic() - began
    finally:
        holder.wait(timeout=10)
    assert 0.5 < waited < 5, f"waited {waited:.2f} s for a lock held about 0.8 s more"


@pytest.mark.slurm
def test_reconcilers_of_four_sites_writing_at_once_all_reach_slurm(slurm_cluster):
    """Four writers at once, as four service hosts of one deployment: every account lands and
    slurmdbd keeps running (without the lock this killed slurmdbd here). The lock is the test
    session's (the plugin names it), which every other writer of the session takes too."""
    lock = os.environ["PORTAL_SLURM_ACCOUNTING_LOCK"]
    tops = [unique_name("lk") for _ in range(4)]
    failures: list[BaseException] = []

    def write(top: str) -> None:
        scheduler = make_scheduler("cli", env=slurm_cluster.env)
        assert scheduler.runner.accounting_lock == lock
        try:
            scheduler.sacctmgr_batch([
                ["add", "account", top, f"cluster={slurm_cluster.cluster_name}"],
                ["add", "account", f"{top}_cpu,{top}_gpu", f"cluster={slurm_cluster.cluster_name}", f"parent={top}",
                 "GrpTRESMins=cpu=6000"],
                ["add", "user", "root", f"account={top}_cpu", f"cluster={slurm_cluster.cluster_name}"],
            ])
        except BaseException as exc:  # reported below, with the others
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(top,)) for top in tops]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures
    names = ",".join(f"{top}{suffix}" for top in tops for suffix in ("", "_cpu", "_gpu"))
    shown = subprocess.run(["sacctmgr", "-nP", "show", "account", names, "format=account"], env=slurm_cluster.env,
                           capture_output=True, text=True, timeout=30, check=True).stdout.split()
    assert sorted(shown) == sorted(names.split(","))
    users = subprocess.run(["sacctmgr", "-nP", "show", "assoc", "where", f"account={','.join(t + '_cpu' for t in tops)}",
                            "user=root", "format=account"], env=slurm_cluster.env, capture_output=True, text=True,
                           timeout=30, check=True).stdout.split()
    assert sorted(users) == sorted(f"{top}_cpu" for top in tops)
    assert slurm_cluster.daemon_pid("slurmdbd") is not None
    cleanup = make_scheduler("cli", env=slurm_cluster.env)
    cleanup.sacctmgr(["delete", "account", ",".join(f"{t}_cpu,{t}_gpu" for t in tops)])
    cleanup.sacctmgr(["delete", "account", ",".join(tops)])
