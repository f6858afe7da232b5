"""Shared fixtures. The suite runs against real PostgreSQL and a real local Slurm cluster.

Neither is optional: if PostgreSQL cannot be reached the session fails at once, and the
``slurm_cluster`` fixture fails (never skips) when the cluster cannot start.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

from portal import create_app
from portal.extensions import db

# Fixture modules shared by many test modules (never imported by them: pytest finds the fixtures).
pytest_plugins = ["portal.devcluster.pytest_plugin", "tests.grant_world", "tests.job_world", "tests.oidc_provider"]

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/portal_test"


def recreate_postgres_database(url: str, *, drop_only: bool = False) -> None:
    """Drop and create the database named in ``url`` (a throwaway test database)."""
    parsed = make_url(url)
    name = parsed.database
    assert name and re.fullmatch(r"[a-z0-9_]+", name), f"unsafe test database name {name!r}"
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop_only:
                conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.exit(f"PostgreSQL is required for the tests and could not be reached at {url}: {exc}", returncode=3)


def session_database_url(suffix: str = "") -> str:
    """This test session's own database: two sessions at once never drop each other's."""
    url = make_url(os.environ.get("PORTAL_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL))
    return url.set(database=f"{url.database}{suffix}_{os.getpid()}").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    url = session_database_url()
    recreate_postgres_database(url)
    yield url
    recreate_postgres_database(url, drop_only=True)


@pytest.fixture(scope="session")
def app(database_url: str, tmp_path_factory) -> Iterator[Flask]:
    from flask_migrate import upgrade

    instance = tmp_path_factory.mktemp("instance")
    # Tests sign in many times from one address; tests of rate limiting set their own limits.
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "INSTANCE_PATH": str(instance),
                      "LOGIN_RATE_LIMIT": "10000/60",
                      # Thousands of users are made and signed in: one PBKDF2 round instead of
                      # scrypt's 70 ms a hash (tests/test_config.py checks production's default).
                      "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1"})
    with app.app_context():
        upgrade()  # the schema comes from the migrations, as in production
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_database(request) -> Iterator[None]:
    """Empty every table after each test that used the app."""
    yield
    if "app" not in request.fixturenames:
        return
    app: Flask = request.getfixturevalue("app")
    with app.app_context():
        db.session.remove()
        empty_tables(db.engine)


def empty_tables(engine) -> None:
    """Empty every table of the schema and start every id at 1 again, as a TRUNCATE ... RESTART
    IDENTITY of all of them would, at a fraction of its cost: a test writes to a few tables,
    and TRUNCATE makes new files for every table and index it names (about 70 ms for 37
    tables here). One query finds the tables that hold rows; those are emptied with foreign
    keys and triggers off for this transaction (``session_replication_role``), so the order
    does not matter and the facility totals' triggers add nothing. Every sequence that was
    used starts again, including those of tables a rolled-back insert left empty."""
    names = [t.name for t in db.metadata.sorted_tables]
    probe = " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")" for name in names)
    with engine.begin() as conn:
        holding = [row[0] for row in conn.exec_driver_sql(probe)]
        used = [row[0] for row in conn.exec_driver_sql(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) FROM pg_sequences"
            " WHERE last_value IS NOT NULL")]
        if holding:
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        large = [name for name in holding if conn.exec_driver_sql(f'DELETE FROM "{name}"').rowcount > 5000]
        if large:
            # Thousands of deleted rows would stay behind as dead rows that later tests scan
            # (nothing vacuums between tests): a table that held many is truncated as well.
            quoted = ", ".join(f'"{name}"' for name in large)
            conn.exec_driver_sql(f"TRUNCATE {quoted} CASCADE")
        for sequence in used:
            conn.exec_driver_sql(f"SELECT setval('{sequence}', 1, false)")


@pytest.fixture
def app_ctx(app: Flask) -> Iterator[Flask]:
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


CSRF_INPUT = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"')


def csrf_token_from(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, "page has no CSRF token"
    return match.group(1) or match.group(2)


def signed_in_client(app: Flask, who) -> FlaskClient:
    """A test client signed in as ``who`` (id, e-mail, password), as made by ``make_user``."""
    client = app.test_client()
    sign_in(client, who[1], who[2])
    return client


def sign_in(client: FlaskClient, email: str, password: str):
    page = client.get("/login")
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": csrf_token_from(page.get_data(as_text=True))})


@pytest.fixture
def make_user(app: Flask):
    """Factory: a committed user with a local password (the e-mail's local part)."""
    from portal.identity.providers import create_local_user

    counter = iter(range(1, 10_000))

    def factory(*roles, name: str | None = None, email: str | None = None, unix_username: str | None = None):
        n = next(counter)
        email = email or f"user{n}@example.org"
        with app.app_context():
            user = create_local_user(email, name or f"User {n}", email.split("@")[0], roles=roles,
                                     unix_username=unix_username)
            db.session.commit()
            return user.id, email, email.split("@")[0]

    return factory


class SmtpInbox:
    """Messages a real SMTP server on loopback received (aiosmtpd)."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def to(self, address: str) -> list:
        return [m for m in self.messages if address in m["To"]]

    def wait_for(self, count: int, timeout: float = 10):
        import time

        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages


@contextmanager
def smtp_on_loopback(app: Flask, monkeypatch, handler) -> Iterator[None]:
    """A real SMTP server (aiosmtpd, with ``handler``) on a free loopback port; the app sends its mail there."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setitem(app.config, "SMTP_HOST", "127.0.0.1")
    monkeypatch.setitem(app.config, "SMTP_PORT", port)
    try:
        yield
    finally:
        controller.stop()


@pytest.fixture
def smtp_server(app: Flask, monkeypatch) -> Iterator[SmtpInbox]:
    """A real SMTP server on a free loopback port; the app sends its mail there."""
    inbox = SmtpInbox()
    with smtp_on_loopback(app, monkeypatch, inbox):
        yield inbox


@pytest.fixture
def reconciler_service(app: Flask) -> Iterator:
    """The reconciler service (``flask slurm run``) in a thread, with short intervals, as a
    deployment runs it beside the web workers: what the pages show comes from it."""
    import threading

    from portal.grants.service import ReconcilerService, Schedule

    service = ReconcilerService(app, Schedule(poll=0.5, job_states=1.0, outbox=5.0, usage=3600.0, full=3600.0))
    worker = threading.Thread(target=service.run, name="reconciler-service", daemon=True)
    worker.start()
    yield service
    service.stop()
    worker.join(timeout=60)
    assert not worker.is_alive(), "the reconciler service did not stop"


@pytest.fixture
def site_adapter() -> str:
    """The scheduler adapter of the ``cluster_site`` fixture (tests/grant_world.py): ``cli``
    unless a test parametrises it, e.g. ``@pytest.mark.parametrize("site_adapter", ADAPTERS)``."""
    return "cli"


def run_scratch() -> Path | None:
    """A folder the workers of this parallel run share (for what one builds and the others
    reuse), removed by the controller at the end; None outside a parallel run."""
    from portal.devcluster.pytest_plugin import RUN_ID_VARIABLE  # a plugin: imported once pytest has it

    run = os.environ.get(RUN_ID_VARIABLE)
    if not run or "PYTEST_XDIST_WORKER" not in os.environ:
        return None
    return Path(tempfile.gettempdir()) / f"portal-test-run-{run}"


def pytest_sessionfinish(session) -> None:
    """The controller of a parallel run removes what its workers shared (``run_scratch``)."""
    from portal.devcluster.pytest_plugin import RUN_ID_VARIABLE

    if not hasattr(session.config, "workerinput") and os.environ.get(RUN_ID_VARIABLE):
        shutil.rmtree(Path(tempfile.gettempdir()) / f"portal-test-run-{os.environ[RUN_ID_VARIABLE]}", ignore_errors=True)


def pytest_collection_modifyitems(items) -> None:
    """Every test that needs the Slurm cluster carries the ``slurm`` marker, however it gets it
    (directly or through another fixture), so ``-m "not slurm"`` really runs without Slurm."""
    for item in items:
        if "slurm_cluster" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slurm)
    # A parallel run hands tests out in this order: the longest start first, so none of them
    # is left running alone at the end (sort is stable: the others keep their order).
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
