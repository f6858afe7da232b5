"""pytest fixtures for a real Slurm cluster: ``pytest_plugins = ["portal.devcluster.pytest_plugin"]``.

The cluster lives in a fixed folder with its own name and ports, so it never touches a demo
cluster. A cluster that cannot start fails the tests that need it: skipping would hide it.
"""
from __future__ import annotations

import os
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from portal.devcluster.cluster import ClusterError, LocalCluster

# One test cluster per checkout (the tag of this file's path): two worktrees' sessions, or a
# session beside `make demo`, never share a folder, name, ports or database. Sessions of one
# checkout share it (the first one up leaves it running for the next).
_CHECKOUT_TAG = f"{zlib.crc32(str(Path(__file__).resolve().parents[2]).encode()):08x}"
TEST_CLUSTER_DIR = Path(os.environ.get("PORTAL_TEST_SLURM_DIR", f"/var/tmp/portal-test-slurm-{_CHECKOUT_TAG}"))
TEST_CLUSTER_NAME = os.environ.get("PORTAL_TEST_SLURM_NAME", f"portaltest_{_CHECKOUT_TAG}")
# Two slurmd on this host, so multi-node jobs (MPI, torchrun) really span nodes.
TEST_CLUSTER_NODES = int(os.environ.get("PORTAL_TEST_SLURM_NODES", "2"))
T = TypeVar("T")


def unique_name(prefix: str = "t") -> str:
    """An account name no other test (or earlier run) uses: the database outlives runs."""
    return f"{prefix}{uuid.uuid4().hex[:10]}"


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


@pytest.fixture(scope="session")
def slurm_cluster() -> Iterator[LocalCluster]:
    try:
        cluster = LocalCluster(TEST_CLUSTER_DIR, TEST_CLUSTER_NAME, nodes=TEST_CLUSTER_NODES, rest=True)
    except ValueError:  # a throwaway test cluster of another shape from an earlier run: make it anew
        LocalCluster(TEST_CLUSTER_DIR, TEST_CLUSTER_NAME).destroy()
        cluster = LocalCluster(TEST_CLUSTER_DIR, TEST_CLUSTER_NAME, nodes=TEST_CLUSTER_NODES, rest=True)
    # A cluster that was already up (another test session, a developer's shell) is shared
    # and left running; only a session that started it stops it.
    already_running = cluster.is_running()
    began = time.monotonic()
    try:
        LocalCluster.install_packages()
        cluster.start(timeout=90)
    except (ClusterError, OSError) as exc:
        pytest.fail(f"the test Slurm cluster in {TEST_CLUSTER_DIR} did not start: {exc}",
                    pytrace=False)
    cluster.start_seconds = time.monotonic() - began  # type: ignore[attr-defined]
    yield cluster
    if not already_running:
        cluster.stop()


@pytest.fixture(scope="session")
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
