"""One writer at a time to slurmdbd, across every process of a deployment that shares a lock file.

slurmdbd 22.05 on MariaDB deadlocks when two clients change accounts and associations at the
same moment; it retries ten times at once and then exits (seen here: four ``sacctmgr -i add
account`` at once killed slurmdbd within two seconds, and half of the adds that did not kill
it were lost with "Parent account doesn't exist"). The reconciler service writes one site at
a time, but two service hosts, a CLI command beside the service, or several sites on one
slurmdbd can write at once: every accounting write of both adapters first takes the lock
named by ``PORTAL_SLURM_ACCOUNTING_LOCK`` (a file every writer can reach; flock works on a
local disk and on NFSv4). Unset, writes are not serialised (one writing process, as in a
single-host deployment).
"""
from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from portal.slurm.errors import SchedulerUnreachable

ACCOUNTING_LOCK_VARIABLE = "PORTAL_SLURM_ACCOUNTING_LOCK"


def configured_lock() -> str | None:
    """The lock file this process's adapters use unless they are given one."""
    return os.environ.get(ACCOUNTING_LOCK_VARIABLE) or None


@contextmanager
def accounting_writes(lock_file: str | None, timeout: float) -> Iterator[None]:
    """Hold the accounting lock for one write; waiting for it counts against ``timeout``."""
    if not lock_file:
        yield
        return
    try:
        handle = open(lock_file, "a")  # closed below, after the write
    except OSError as exc:
        raise SchedulerUnreachable(f"cannot open the Slurm accounting lock {lock_file}: {exc.strerror}") from exc
    with handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SchedulerUnreachable(f"another process held the Slurm accounting lock {lock_file}"
                                               f" for more than {timeout:g} s") from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
