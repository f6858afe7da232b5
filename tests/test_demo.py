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
        except Exception as exc:
            problems.append(f"stopping the demo in {demo.folder}: {exc!r}")
    if problems and not failed:
        raise AssertionError("\n".join(problems))
    for problem in problems:
        print(problem, file=sys.stderr)


class Browser:
    """One person signed in to a demo over HTTP, as a browser would be (cookies, CSRF token)."""

    def __init__(self, base: str, login) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        form = urllib.parse.urlencode({"email": login.email, "password": login.password,
                                       "csrf_token": csrf_token_from(self.get("/login"))}).encode()
        self.opener.open(f"{base}/login", data=form, timeout=30)

    def get(self, path: str) -> str:
        return self.opener.open(f"{self.base}{path.replace('&amp;', '&')}", timeout=30).read().decode()


def section(page: str, element_id: str) -> str:
    """The HTML of the element with this id, up to the next sibling section (enough to search)."""
    start = page.index(f'id="{element_id}"')
    end = page.find("<section", start)
    return page[start:end if end > 0 else None]


def find_living_facility(url: str, cluster: LocalCluster) -> None:
    """Every role signs in and finds what a newcomer came to see: a grant with usage from real
    jobs of this demo's Slurm and its burn-down, a proposal in review, a committee ranking, a
    benchmark history and the demo's delivered mail."""
    people = {login.email.split("@")[0]: Browser(url, login) for login in DEMO_LOGINS}

    # The PI's dashboard leads to the grant; its page draws the burn-down and the forecast.
    pi_home = people["pi"].get("/")
    grants = [people["pi"].get(path) for path in dict.fromkeys(re.findall(r'href="(/grants/\d+)"', pi_home))]
    grant = next(page for page in grants if 'id="jobs"' in page)  # the active one, with its jobs
    assert "Forecast at the current rate" in grant
    assert 'class="chart"' in grant
    # Its jobs table: real Slurm jobs (numeric ids) that this demo's cluster ran and accounted.
    real_jobs = re.findall(r"<tr><td>(\d+)</td><td>(demo_\w+)</td><td>(\w+)</td><td>COMPLETED</td>",
                           section(grant, "jobs"))
    assert len(real_jobs) >= 2, section(grant, "jobs")[:2000]
    sacct = subprocess.run(["sacct", "-X", "-n", "-P", "-o", "JobID,User,Partition,State", "-j",
                            ",".join(job for job, _, _ in real_jobs)], capture_output=True, text=True,
                           env={**os.environ, **cluster.env}, timeout=60, check=True).stdout
    assert {tuple(line.split("|")) for line in sacct.split()} >= {
        (job, user, partition, "COMPLETED") for job, user, partition in real_jobs}

    # The member: where they may run (the grant's Slurm accounts) and their recent jobs.
    member_home = people["user"].get("/")
    assert "sbatch -A" in section(member_home, "usable-grants")
    assert "COMPLETED" in section(member_home, "recent-jobs")

    # The reviewer: assigned reviews with their due dates.
    due = section(people["reviewer"].get("/"), "reviews-due")
    assert re.search(r"\d{4}-\d{2}-\d{2}", due) and "demo-regular" in due

    staff = people["staff"]
    in_review = staff.get("/proposals/?state=in_review")
    assert re.search(r'href="/proposals/\d+"', in_review.split('id="language-switch"')[0]), "no proposal in review"
    ranking_path = re.search(r'href="(/calls/\d+/committee)"', staff.get("/")).group(1)
    scores = [float(s) for s in re.findall(r'<td class="score">([0-9.]+)</td>', staff.get(ranking_path))]
    assert len(scores) >= 2 and scores == sorted(scores, reverse=True)
    latest_run = re.search(r'href="(/benchmarks/runs/\d+)"', staff.get("/benchmarks/?sort=newest")).group(1)
    history_path = re.search(r'href="(/benchmarks/history\?[^"]+)"', staff.get(latest_run)).group(1)
    assert staff.get(history_path).count('class="point') >= 2
    mail = staff.get("/mail/caught")
    caught = re.search(r"(\d+) messages caught\.", mail)
    assert caught and int(caught.group(1)) > 0 and "Proposal submitted" in mail

    # The administrator's queue: technical assessments waiting.
    assert 'id="queue-technical"' in people["admin"].get("/")


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


@pytest.mark.slow
def test_two_demos_beside_the_test_cluster_each_serve_their_own_slurm(slurm_cluster):
    # Not under pytest's tmp_path: another session's pytest prunes old base folders, and munge's
    # socket path must stay short (108 bytes).
    root = Path(tempfile.mkdtemp(prefix="demo", dir="/var/tmp"))
    root.chmod(0o755)  # the demo users' jobs reach their job folders below it
    first, second = Demo(root / "first"), Demo(root / "second")
    failed = True
    try:
        # Both typed at the same moment: their setups, clusters and seeds overlap.
        first.start()
        second.start()
        first_url = first.wait_until_serving(timeout=600)
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
                page = Browser(url, login).get("/sites/")
                assert login.name in page, f"{login.email} could not sign in at {url}"
                # The partitions were read from this demo's own cluster.
                assert "<td>debug" in page and "<td>cpu" in page
                assert demo.cluster().cluster_name in page

        # Started beside another demo and the test cluster, each demo is a living facility.
        find_living_facility(second_url, second.cluster())
        find_living_facility(first_url, first.cluster())

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
        if failed:  # what each demo and its jobs said (the seed's report among it) goes with the failure
            for demo, output in zip((first, second), outputs):
                said = [line for line in output.splitlines() if '"GET ' not in line and "portal.audit" not in line]
                print(f"--- make demo in {demo.folder}:", *said[-40:], sep="\n", file=sys.stderr)
                for job_output in sorted(demo.folder.glob("instance/jobs/*/slurm-*.out")):
                    print(f"--- {job_output}:", job_output.read_text(errors="replace")[-3000:], sep="\n", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)
    for output in outputs:
        for login in DEMO_LOGINS:
            assert login.email in output and login.password in output
    # The test cluster outlives both demos: its daemons and its database are its own.
    assert slurm_cluster.is_running()
    assert_takes_new_accounts(slurm_cluster)
