"""The portal as an installed package, away from any checkout: a wheel built from this
checkout's files, installed with pip in a new virtual environment, migrates SQLite and
PostgreSQL, seeds the demo from the test cluster, serves pages and renders job templates,
every file coming from the installed package.

Slow (a wheel build, a venv, pip resolving the dependencies: about half a minute).
"""
from __future__ import annotations

import fcntl
import http.cookiejar
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from portal.demo import DEMO_LOGINS
from tests.conftest import csrf_token_from, recreate_postgres_database, run_scratch, session_database_url

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow
# Folders a checkout keeps beside the package and the wheel ships inside it (setup.py).
BESIDE_PACKAGE = {"migrations/": "portal/_migrations/", "slurm_templates/": "portal/_slurm_templates/"}


@dataclass
class Installed:
    work: Path  # outside the checkout: the venv, the instance folder, the commands' cwd
    venv: Path
    wheel: Path
    files: list[str]  # the checkout's files it was built from

    def env(self, **extra: str) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if key not in ("PYTHONPATH", "VIRTUAL_ENV", "DATABASE_URL", "FLASK_APP")
               and not key.startswith("PORTAL_")}
        return {**env, "PATH": f"{self.venv / 'bin'}:{env['PATH']}",
                "PORTAL_INSTANCE_PATH": str(self.work / "instance"), **extra}

    def run(self, *argv: str, env: dict[str, str] | None = None, timeout: float = 120) -> str:
        return self.completed(*argv, env=env, timeout=timeout).stdout

    def completed(self, *argv: str, env: dict[str, str] | None = None,
                  timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """A command of the venv run from the folder outside the checkout; it must succeed."""
        done = subprocess.run([str(self.venv / "bin" / argv[0]), *argv[1:]], cwd=self.work,
                              env=env or self.env(), capture_output=True, text=True,
                              timeout=timeout, check=False)
        assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    def python(self, code: str, env: dict[str, str] | None = None):
        """Run ``code`` in the installed venv; it prints one JSON value."""
        return json.loads(self.run("python", "-c", code, env=env).strip().splitlines()[-1])


def checkout_files() -> list[str]:
    """What a clean clone holds (tracked files and new ones not ignored), nothing built."""
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [name for name in listed.split("\0") if name and (REPO / name).is_file()]


def _build(into: Path, files: list[str]) -> None:
    """A wheel of the checkout's files in ``into/dist``, installed in a new venv ``into/venv``."""
    source = into / "source"
    for name in files:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(into / "dist"), str(source)],
                   check=True, capture_output=True, text=True, timeout=300)
    shutil.rmtree(source)
    [wheel] = (into / "dist").glob("*.whl")
    # The base interpreter, as a fresh machine has it: nothing of the checkout's .venv.
    subprocess.run([sys._base_executable, "-m", "venv", str(into / "venv")], check=True, timeout=120)
    subprocess.run([str(into / "venv" / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=600)
    (into / "ready").touch()


@pytest.fixture(scope="module")
def installed() -> Iterator[Installed]:
    files = checkout_files()
    # /tmp, not pytest's tmp_path: other sessions' pytest prune old base folders.
    work = Path(tempfile.mkdtemp(prefix="portal-package-"))
    # One wheel and venv for the whole run: the workers of a parallel run that get tests of
    # this module wait for the first to build them (the controller removes them at the end).
    shared = run_scratch()
    built = shared / "package" if shared else work
    try:
        built.mkdir(parents=True, exist_ok=True)
        with open(built / "lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (built / "ready").exists():
                _build(built, files)
        [wheel] = (built / "dist").glob("*.whl")
        yield Installed(work, built / "venv", wheel, files)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_wheel_holds_every_file_the_portal_reads(installed):
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    missing = []
    for name in installed.files:
        top = name.split("/", 1)[0] + "/"
        if top in BESIDE_PACKAGE:
            name = BESIDE_PACKAGE[top] + name[len(top):]
        elif top not in ("portal/", "mpi_examples/"):
            continue
        if name not in names:
            missing.append(name)
    assert missing == []
    # Templates of every depth, static files, the three packages that once lacked __init__.py.
    for expected in ("portal/templates/base.html", "portal/templates/identity/login.html",
                     "portal/static/portal.css", "portal/identity/models.py",
                     "portal/projects/models.py", "portal/sites/models.py",
                     "portal/_migrations/env.py", "portal/_migrations/alembic.ini",
                     "portal/_slurm_templates/pytorch.sh.j2", "portal/_slurm_templates/examples/train_ddp.py",
                     "portal/devcluster/templates/slurm.conf"):
        assert expected in names


def test_installed_package_reads_its_own_files_not_the_checkout(installed):
    paths = installed.python(
        "import json, sys, portal; from portal.jobs.operations import MPI_REFERENCES;"
        " from portal.jobs.templates import SHIPPED_DIR;"
        " print(json.dumps([portal.__file__, str(portal.MIGRATIONS_DIR), str(SHIPPED_DIR),"
        " str(MPI_REFERENCES), sys.path]))")
    *folders, sys_path = paths
    site_packages = installed.venv.resolve()
    for folder in folders:
        assert Path(folder).resolve().is_relative_to(site_packages), folder
    # Nothing of the checkout on the path ("" is the commands' folder, outside it).
    assert not any((installed.work / entry).resolve().is_relative_to(REPO) for entry in sys_path)


def test_installed_package_migrates_sqlite_and_postgresql(installed):
    installed.run("flask", "--app", "portal", "db", "upgrade")
    head = subprocess.run([sys.executable, "-m", "flask", "--app", "portal", "db", "heads"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.split()[0]
    # The script location Alembic used is the wheel's copy, and it reached the checkout's head.
    current = installed.run("flask", "--app", "portal", "db", "current", "--verbose")
    assert head in current
    assert str(installed.venv) in installed.run("flask", "--app", "portal", "db", "show", head)

    url = session_database_url("_package")
    recreate_postgres_database(url)
    try:
        env = installed.env(DATABASE_URL=url)
        installed.run("flask", "--app", "portal", "db", "upgrade", env=env)
        assert head in installed.run("flask", "--app", "portal", "db", "current", env=env)
    finally:
        recreate_postgres_database(url, drop_only=True)


def test_installed_package_renders_job_templates_from_its_own_folder(installed):
    rendered = installed.python(
        "import json; from portal.jobs.operations import MPI_REFERENCES;"
        " from portal.jobs.templates import SHIPPED_DIR, load_templates, render_script\n"
        "templates, problems = load_templates([SHIPPED_DIR])\n"
        "out = {'problems': [str(p) for p in problems], 'names': sorted(templates)}\n"
        "for name in ('pytorch', 'benchmark'):\n"
        "    t = templates[name]\n"
        "    values = {n: p.clean(p.default if p.default is not None else '') for n, p in t.params.items()}\n"
        "    out[name] = render_script(t, [('--job-name', name), ('--output', '/tmp/slurm-%j.out')], values,"
        " {'python': '/usr/bin/python3', 'workdir': '/tmp', 'mpi_references': str(MPI_REFERENCES),"
        " 'examples': str(SHIPPED_DIR / 'examples')})\n"
        "print(json.dumps(out))")
    assert rendered["problems"] == []
    assert rendered["names"] == sorted(path.stem for path in (REPO / "slurm_templates").glob("*.json"))
    examples = next(line.split("=", 1)[1] for line in rendered["pytorch"].splitlines()
                    if line.startswith("export PORTAL_EXAMPLES="))
    assert Path(examples).resolve().is_relative_to(installed.venv.resolve())
    assert (Path(examples) / "train_ddp.py").is_file()
    assert f"{installed.venv}" in rendered["benchmark"] and "/references/" in rendered["benchmark"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def installed_cluster(installed) -> Iterator[tuple[str, Path]]:
    """A Slurm cluster of its own, started by the installed package's portal-devcluster (its
    config templates from the wheel): the demo seed adds accounts and must not add them to the
    session's test cluster. A short folder: munge's socket path has a 108-byte limit."""
    folder = Path(tempfile.mkdtemp(prefix="pkg", dir="/var/tmp")) / "slurm"
    try:
        started = installed.run("portal-devcluster", "start", "--dir", str(folder), timeout=180)
        assert "ready" in started
        conf = folder / "etc" / "slurm.conf"
        name = next(line.split("=", 1)[1] for line in conf.read_text().splitlines()
                    if line.startswith("ClusterName="))
        yield name, conf
    finally:
        installed.run("portal-devcluster", "destroy", "--dir", str(folder), timeout=120)
        shutil.rmtree(folder.parent, ignore_errors=True)


@pytest.mark.slurm
def test_installed_package_seeds_the_demo_and_serves_pages(installed, installed_cluster):
    cluster_name, conf = installed_cluster
    installed.run("flask", "--app", "portal", "db", "upgrade")
    # Without the demo jobs: they need torch and mpi4py (the dev extras), which the package
    # alone does not install. Everything else is seeded, grants synced into this cluster.
    seeded = installed.completed("flask", "--app", "portal", "demo", "seed", "--no-jobs", "--cluster",
                                 cluster_name, "--slurm-conf", str(conf), timeout=600)
    assert "pi@example.org" in seeded.stdout and "PROBLEM" not in seeded.stderr, seeded.stderr
    assert "grants synced into Slurm" in seeded.stdout
    accounts = subprocess.run(["sacctmgr", "-n", "-P", "show", "account", "format=account"], capture_output=True,
                              text=True, env={**os.environ, "SLURM_CONF": str(conf)}, check=True).stdout.split()
    assert "portal" in accounts and any(account.startswith("demo_") for account in accounts), accounts
    port = free_port()
    log = installed.work / "gunicorn.log"
    with log.open("w") as out:
        server = subprocess.Popen([str(installed.venv / "bin" / "gunicorn"), "--workers", "1", "--bind",
                                   f"127.0.0.1:{port}", "--no-control-socket", "portal:create_app()"],
                                  cwd=installed.work, env=installed.env(), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert urllib.request.urlopen(f"{base}/healthz", timeout=2).status == 200
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        # The catalogs came with the wheel: a Polish or Lithuanian reader gets the page in their language.
        for language, sign_in in (("pl", "Zaloguj się"), ("lt", "Prisijungti")):
            request = urllib.request.Request(f"{base}/login", headers={"Accept-Language": language})
            assert f"<h1>{sign_in}</h1>" in urllib.request.urlopen(request, timeout=10).read().decode()
        css = urllib.request.urlopen(f"{base}/static/portal.css", timeout=5).read()
        assert css == (REPO / "portal" / "static" / "portal.css").read_bytes()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = opener.open(f"{base}/login", timeout=10).read().decode()
        login = DEMO_LOGINS[0]
        opener.open(f"{base}/login", timeout=10, data=urllib.parse.urlencode(
            {"email": login.email, "password": login.password, "csrf_token": csrf_token_from(page)}).encode())
        sites = opener.open(f"{base}/sites/", timeout=10).read().decode()
        assert login.name in sites and cluster_name in sites and "<td>cpu" in sites
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Traceback" not in log.read_text()
