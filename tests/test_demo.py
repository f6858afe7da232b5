"""The README's first command: a portal answering on a port, with demo data, sign-in for each role."""
from __future__ import annotations

import http.cookiejar
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from portal.demo import DEMO_LOGINS
from portal.devcluster import LocalCluster
from tests.conftest import csrf_token_from

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slurm


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"demo exited with {process.returncode}:\n{log.read_text()[-5000:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(1)
    raise AssertionError(f"demo did not answer at {url} within {timeout} s")


def sign_in_over_http(base: str, email: str, password: str) -> str:
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{base}/login").read().decode()
    form = urllib.parse.urlencode({"email": email, "password": password,
                                   "csrf_token": csrf_token_from(page)}).encode()
    opener.open(f"{base}/login", data=form)
    return opener.open(f"{base}/sites/").read().decode()


def test_make_demo_serves_seeded_portal_with_every_demo_login(tmp_path):
    port = free_port()
    env = {**os.environ, "PORT": str(port), "PORTAL_DEMO_DIR": str(tmp_path)}
    env.pop("DATABASE_URL", None)
    # Output goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server.
    log = tmp_path / "demo.log"
    with log.open("w") as out:
        process = subprocess.Popen(["make", "demo"], cwd=REPO, env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/healthz", process, log, timeout=240)
        for login in DEMO_LOGINS:
            page = sign_in_over_http(base, login.email, login.password)
            assert login.name in page, f"{login.email} could not sign in"
            assert "<td>debug" in page and "<td>cpu" in page  # partitions read from the demo cluster
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        LocalCluster(tmp_path / "slurm", name="portaldemo").destroy()
    output = log.read_text()
    assert f"http://127.0.0.1:{port}/" in output
    for login in DEMO_LOGINS:
        assert login.email in output and login.password in output
