"""With the controller down, the adapter fails fast with SchedulerUnreachable."""
import time

import pytest

from portal.slurm import SchedulerUnreachable

pytestmark = pytest.mark.slurm


def test_controller_down_is_unreachable_then_recovers(slurm_cluster, slurm_scheduler):
    slurm_cluster.stop_daemon("slurmctld")
    try:
        for call in (slurm_scheduler.ping, slurm_scheduler.jobs, slurm_scheduler.partitions):
            began = time.monotonic()
            with pytest.raises(SchedulerUnreachable):
                call()
            elapsed = time.monotonic() - began
            print(f"{call.__name__} raised SchedulerUnreachable after {elapsed:.1f} s")
            assert elapsed < 20  # a sanity ceiling, not a performance target
    finally:
        slurm_cluster.start(timeout=60)  # later tests need a healthy cluster
    slurm_scheduler.ping()
    assert slurm_scheduler.jobs() is not None
