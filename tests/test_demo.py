"""The README's two commands side by side: two `make demo` at once beside the test session's
own Slurm cluster, each serving with its own cluster (name, ports, MariaDB database and user),
folder and web port; none of them disturbs another's Slurm."""
from __future__ import annotations

import http.cookiejar
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from portal.demo import DEMO_LOGINS
from portal.devcluster import LocalCluster
from portal.devcluster.pytest_plugin import unique_name
from tests.conftest import csrf_token_from

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slurm


class Demo:
    """One `make demo` in its own folder; ``stop`` ends it and destroys its Slurm cluster."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "demo.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.folder.mkdir(parents=True)
        env = {**os.environ, "PORTAL_DEMO_DIR": str(self.folder)}
        # As a newcomer types it: no port, no database, no cluster name given.
        for name in ("PORT", "DATABASE_URL", "PORTAL_DEMO_NAME"):
            env.pop(name, None)
        # Output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server.
        with self.log.open("w") as out:
            self.process = subprocess.Popen(["make", "demo"], cwd=REPO, env=env, stdout=out,
                                            stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_until_serving(self, timeout: float) -> str:
        """The URL the demo printed, once its health page answers there."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"demo in {self.folder} exited with {self.process.returncode}:\n"
                                     f"{self.output()[-5000:]}")
            printed = re.search(r"The portal is at (http://\S+?)/ ", self.output())
            if printed:
                try:
                    urllib.request.urlopen(f"{printed[1]}/healthz", timeout=2)
                    return printed[1]
                except OSError:
                    pass
            time.sleep(1)
        raise AssertionError(f"demo in {self.folder} did not serve within {timeout} s:\n"
                             f"{self.output()[-3000:]}")

    def cluster(self) -> LocalCluster:
        return LocalCluster(self.folder / "slurm")  # name, ports, database: from its config

    def _signal_group(self, signum: int) -> None:
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:  # the group ended meanwhile: nothing left to stop
            pass

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.process.wait(timeout=10)
        if (self.folder / "slurm" / "etc" / "slurm.conf").exists():
            self.cluster().destroy()


def stop_all(demos: list[Demo], failed: bool) -> None:
    """Stop every demo; a clean-up error is raised only when the test itself passed, so it
    never hides the test's own first error."""
    problems = []
    for demo in demos:
        try:
            demo.stop()
        except Exception as exc:  # noqa: BLE001 (reported below, after the other demos stop)
            problems.append(f"stopping the demo in {demo.folder}: {exc!r}")
    if problems and not failed:
        raise AssertionError("\n".join(problems))
    for problem in problems:
        print(problem, file=sys.stderr)


def sign_in_over_http(base: str, email: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login").read().decode()
    form = urllib.parse.urlencode({"email": email, "password": password,
                                   "csrf_token": csrf_token_from(page)}).encode()
    opener.open(f"{base}/login", data=form)
    return opener.open(f"{base}/sites/").read().decode()


def sacctmgr(cluster: LocalCluster, *argv: str) -> str:
    done = subprocess.run(["sacctmgr", *argv], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **cluster.env}, check=False)
    assert done.returncode == 0, f"sacctmgr {' '.join(argv)} on {cluster.cluster_name}: {done.stderr}"
    return done.stdout


def assert_takes_new_accounts(cluster: LocalCluster) -> None:
    """What the portal does when it opens a project: add an account to the cluster's accounting."""
    account = unique_name("side")
    sacctmgr(cluster, "-i", "add", "account", account, f"cluster={cluster.cluster_name}")
    assert sacctmgr(cluster, "-n", "-P", "show", "account", account, "format=account").split() == [account]
    sacctmgr(cluster, "-i", "delete", "account", account)
    slurmdbd_log = (cluster.root / "log" / "slurmdbd.log").read_text(errors="replace")
    assert "Access denied" not in slurmdbd_log, f"{cluster.cluster_name} lost its database password"


def test_two_demos_beside_the_test_cluster_each_serve_their_own_slurm(slurm_cluster):
    # Not under pytest's tmp_path: another session's pytest prunes old base folders, and munge's
    # socket path must stay short (108 bytes).
    root = Path(tempfile.mkdtemp(prefix="demo", dir="/var/tmp"))
    first, second = Demo(root / "first"), Demo(root / "second")
    failed = True
    try:
        first.start()
        first_url = first.wait_until_serving(timeout=600)
        second.start()
        second_url = second.wait_until_serving(timeout=600)
        # Two web servers: at most one of them on 5000, the other on a port picked free.
        assert first_url != second_url
        # A folder serves one demo at a time: a third in the first one's folder is refused.
        third = subprocess.run(["make", "demo"], cwd=REPO, capture_output=True, text=True, timeout=600,
                               env={**os.environ, "PORTAL_DEMO_DIR": str(first.folder)})
        assert third.returncode != 0
        assert f"A demo is already running in {first.folder}" in third.stderr

        clusters = [first.cluster(), second.cluster(), slurm_cluster]
        for attribute in ("cluster_name", "ports", "db_name", "db_user", "munge_socket"):
            values = [getattr(cluster, attribute) for cluster in clusters]
            assert len(set(values)) == 3, f"{attribute} shared between instances: {values}"
        for demo, url in ((first, first_url), (second, second_url)):
            assert demo.cluster().is_running()
            for login in DEMO_LOGINS:
                page = sign_in_over_http(url, login.email, login.password)
                assert login.name in page, f"{login.email} could not sign in at {url}"
                # The partitions were read from this demo's own cluster.
                assert "<td>debug" in page and "<td>cpu" in page
                assert demo.cluster().cluster_name in page

        # The second demo's start did not take the first one's database user away.
        assert_takes_new_accounts(first.cluster())
        assert_takes_new_accounts(slurm_cluster)
        # Nor does destroying it (its own database and user only).
        second.stop()
        assert not (second.folder / "slurm").exists()
        assert_takes_new_accounts(first.cluster())
        assert_takes_new_accounts(slurm_cluster)
        assert urllib.request.urlopen(f"{first_url}/healthz", timeout=5).status == 200
        failed = False
    finally:
        stop_all([first, second], failed)
        outputs = [demo.output() for demo in (first, second)]
        shutil.rmtree(root, ignore_errors=True)
    for output in outputs:
        for login in DEMO_LOGINS:
            assert login.email in output and login.password in output
    # The test cluster outlives both demos: its daemons and its database are its own.
    assert slurm_cluster.is_running()
    assert_takes_new_accounts(slurm_cluster)
