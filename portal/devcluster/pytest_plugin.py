"""pytest fixtures for a real Slurm cluster: ``pytest_plugins = ["portal.devcluster.pytest_plugin"]``.

The cluster lives in a fixed folder with its own name and ports, so it never touches a demo
cluster. A cluster that cannot start fails the tests that need it: skipping would hide it.

Under pytest-xdist (``-n N``) every worker shares the one cluster: the first to need it
starts it (the others wait on a lock) and the controller stops it at the end if this run
started it. A test marked ``disturbs_slurm`` (it stops, freezes or reconfigures a daemon)
gets a second cluster of the same shape instead, which such tests have one at a time: the
tests running beside it never see their Slurm go away.
"""
from __future__ import annotations

import fcntl
import os
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import pytest

from portal.devcluster.cluster import ClusterError, LocalCluster
from portal.slurm.writelock import ACCOUNTING_LOCK_VARIABLE

# One test cluster per checkout (the tag of this file's path): two worktrees' sessions, or a
# session beside `make demo`, never share a folder, name, ports or database. Sessions of one
# checkout share it (the first one up leaves it running for the next).
_CHECKOUT_TAG = f"{zlib.crc32(str(Path(__file__).resolve().parents[2]).encode()):08x}"
TEST_CLUSTER_DIR = Path(os.environ.get("PORTAL_TEST_SLURM_DIR", f"/var/tmp/portal-test-slurm-{_CHECKOUT_TAG}"))
TEST_CLUSTER_NAME = os.environ.get("PORTAL_TEST_SLURM_NAME", f"portaltest_{_CHECKOUT_TAG}")
# Two slurmd on this host, so multi-node jobs (MPI, torchrun) really span nodes.
TEST_CLUSTER_NODES = int(os.environ.get("PORTAL_TEST_SLURM_NODES", "2"))
# CPUs per node as Slurm sees them, more than this host has: the suite's jobs mostly sleep, and
# with the host's two cores the parallel run's jobs queued behind each other for minutes.
TEST_CLUSTER_CPUS = int(os.environ.get("PORTAL_TEST_SLURM_CPUS", "8"))
# The parallel run's cluster for tests that stop its daemons: its own folder, name and ports.
FAULT_CLUSTER_DIR = TEST_CLUSTER_DIR.with_name(f"{TEST_CLUSTER_DIR.name}-faults")
FAULT_CLUSTER_NAME = f"{TEST_CLUSTER_NAME}_faults"
# Beside the folders, not in them: destroying a cluster of another shape removes its folder.
_LOCKS = TEST_CLUSTER_DIR.parent / f".{TEST_CLUSTER_DIR.name}.locks"
# Set by the controller of a parallel run before its workers start; they inherit it.
RUN_ID_VARIABLE = "PORTAL_TEST_RUN_ID"
T = TypeVar("T")


@contextmanager
def _locked(name: str, mode: int = fcntl.LOCK_EX) -> Iterator[None]:
    """An flock on a file of ``_LOCKS``, released when the block ends (or the process dies)."""
    _LOCKS.mkdir(parents=True, exist_ok=True)
    with open(_LOCKS / name, "a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _xdist_worker() -> bool:
    return "PYTEST_XDIST_WORKER" in os.environ


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "disturbs_slurm: stops, freezes or reconfigures a Slurm daemon; in a "
                                       "parallel run it gets a cluster of its own, one such test at a time")
    if not hasattr(config, "workerinput"):
        os.environ.setdefault(RUN_ID_VARIABLE, uuid.uuid4().hex)
    # Tests (and the processes they start) change the cluster's accounts at the same time in a
    # parallel run: one writer at a time, as slurmdbd needs (portal/slurm/writelock.py).
    _LOCKS.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault(ACCOUNTING_LOCK_VARIABLE, str(_LOCKS / "slurmdbd-writes"))


def pytest_sessionfinish(session) -> None:
    """The controller of a parallel run stops the clusters its workers started."""
    if hasattr(session.config, "workerinput") or not getattr(session.config.option, "numprocesses", None):
        return
    for folder, name in ((TEST_CLUSTER_DIR, TEST_CLUSTER_NAME), (FAULT_CLUSTER_DIR, FAULT_CLUSTER_NAME)):
        marker = _LOCKS / f"started-by-{name}"
        with _locked(f"start-{name}"):
            if marker.exists() and marker.read_text() == os.environ.get(RUN_ID_VARIABLE):
                marker.unlink()
                LocalCluster(folder, name).stop()


@contextmanager
def _running_cluster(folder: Path, name: str) -> Iterator[LocalCluster]:
    """The cluster in ``folder``, started unless it runs; stopped at the end by whoever started it."""
    # One starter at a time: the workers of a parallel run, and sessions of one checkout.
    with _locked(f"start-{name}"):
        shape = {"nodes": TEST_CLUSTER_NODES, "rest": True, "cpus": TEST_CLUSTER_CPUS}
        try:
            cluster = LocalCluster(folder, name, **shape)
        except ValueError:  # a throwaway test cluster of another shape from an earlier run: make it anew
            LocalCluster(folder, name).destroy()
            cluster = LocalCluster(folder, name, **shape)
        # A cluster that was already up (another test session, a developer's shell) is shared
        # and left running; only a session that started it stops it.
        already_running = cluster.is_running()
        began = time.monotonic()
        try:
            LocalCluster.install_packages()
            cluster.start(timeout=90)
        except (ClusterError, OSError) as exc:
            pytest.fail(f"the test Slurm cluster in {folder} did not start: {exc}", pytrace=False)
        cluster.start_seconds = time.monotonic() - began  # type: ignore[attr-defined]
        if _xdist_worker() and not already_running:
            # Other workers may still use it when this one ends: the controller stops it.
            (_LOCKS / f"started-by-{name}").write_text(os.environ.get(RUN_ID_VARIABLE, ""))
    yield cluster
    if not already_running and not _xdist_worker():
        cluster.stop()


@pytest.fixture(scope="session")
def shared_slurm_cluster() -> Iterator[LocalCluster]:
    with _running_cluster(TEST_CLUSTER_DIR, TEST_CLUSTER_NAME) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def fault_slurm_cluster() -> Iterator[LocalCluster]:
    with _running_cluster(FAULT_CLUSTER_DIR, FAULT_CLUSTER_NAME) as cluster:
        yield cluster


@pytest.fixture
def slurm_cluster(request) -> Iterator[LocalCluster]:
    """The test cluster; for a ``disturbs_slurm`` test in a parallel run, the fault cluster,
    which it has alone until it ends (whatever it stopped is running again by then)."""
    if not (_xdist_worker() and request.node.get_closest_marker("disturbs_slurm")):
        yield request.getfixturevalue("shared_slurm_cluster")
        return
    # The lock first: a worker's first use starts the cluster, which must not happen while
    # another worker's test has a daemon stopped on purpose.
    with _locked(f"use-{FAULT_CLUSTER_NAME}"):
        cluster = request.getfixturevalue("fault_slurm_cluster")
        cluster.start(timeout=90)  # an earlier test may have left a daemon down
        yield cluster


def unique_name(prefix: str = "t") -> str:
    """An account name no other test (or earlier run) uses: the database outlives runs."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def worker_user_name(base: str) -> str:
    """A Unix user for jobs that is this worker's alone in a parallel run (``jobuser5``,
    ``jobuser5gw1``, ...): a test that removes a user's last association removes the user from
    Slurm whole, which must not take another worker's associations of a shared name with it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    return f"{base}{worker}" if worker and worker != "gw0" else base


def wait_for(probe: Callable[[], T | None], timeout: float = 30, what: str = "condition") -> T:
    """Poll until probe() is truthy; Slurm applies many changes a scheduler pass later."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.5)


@pytest.fixture
def slurm_scheduler(slurm_cluster: LocalCluster):
    from portal.slurm import make_scheduler

    return make_scheduler("cli", env=slurm_cluster.env)


def rest_token_file(cluster: LocalCluster, user: str = "root", lifespan: int = 6 * 3600) -> Path:
    """A token file for the rest adapter, made once a session (as an operator would rotate it)."""
    from portal.devcluster.restd import write_token_file

    return write_token_file(cluster.root / "etc" / f"rest-{user}.token", cluster.token(user, lifespan))


def make_test_scheduler(adapter: str, cluster: LocalCluster, **options):
    """The test cluster through ``adapter``: ``cli``, or ``rest`` with sacctmgr as its limits fallback."""
    from portal.slurm import make_scheduler

    if adapter == "rest":
        return make_scheduler("rest", url=cluster.rest_url, token_file=str(rest_token_file(cluster)),
                              cluster=cluster.cluster_name, **{"limits_fallback": {"env": cluster.env}, **options})
    return make_scheduler("cli", env=cluster.env, **options)
