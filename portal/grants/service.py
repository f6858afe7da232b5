"""The reconciler service (``flask slurm run``): all Slurm work, off the web request path.

One loop, many duties, each a unit of work that commits on its own:

- converge: the sites with pending changes, as soon as they are committed (PostgreSQL
  LISTEN/NOTIFY wakes the loop; it also polls, which is all SQLite has), incrementally
  (only the changed projects' accounts), retried with backoff after a failure;
- job states: the state of every unfinished job submitted through the portal, one queue
  read per site, so that job pages never ask Slurm themselves;
- mail: the outbox, for messages SMTP did not take when they were queued;
- usage: expiry of due grants, sacct ingestion, usage alerts;
- full pass: the whole site, periodically, which also counts drift.

Any number of services may run, on any hosts: a site is reconciled by one at a time (the
site's row lock, ``SKIP LOCKED``). SIGTERM or SIGINT stops the loop; a Slurm command in
flight is killed and its unit rolled back, so the change stays pending and nothing is
recorded as done that was not (``sacctmgr load`` is one slurmdbd commit: all or nothing).
"""
from __future__ import annotations

import logging
import select as select_module
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask
from sqlalchemy import select
from sqlalchemy.engine import make_url

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import SiteSyncState
from portal.grants.reconcile import WAKE_CHANNEL, pending_sites, reconcile_site
from portal.sites.models import Site
from portal.transactions import commit, roll_back

log = logging.getLogger(__name__)


class ServiceStopping(BaseException):
    """Raised inside a unit of work when a stop signal arrives: the unit is abandoned."""


@dataclass
class Schedule:
    """Seconds between runs of each duty (``PORTAL_SERVICE_*`` settings)."""
    poll: float = 2.0  # look for pending changes at least this often, woken or not
    job_states: float = 10.0
    outbox: float = 30.0
    usage: float = 300.0
    full: float = 3600.0

    @classmethod
    def from_config(cls, config) -> Schedule:
        return cls(**{name: float(config.get(f"SERVICE_{name.upper()}_INTERVAL", default))
                      for name, default in cls().__dict__.items()})


@dataclass
class ReconcilerService:
    app: Flask
    schedule: Schedule = field(default_factory=Schedule)
    echo: Callable[[str], None] = log.info
    _stop: threading.Event = field(default_factory=threading.Event)
    _busy: bool = False
    _listener: object | None = None

    # ---- running ------------------------------------------------------------------------
    def run(self, *, max_seconds: float | None = None) -> None:
        """Loop until stopped (or for ``max_seconds``, for tests and benchmarks)."""
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, self._on_signal)
        ends = time.monotonic() + max_seconds if max_seconds is not None else None
        due = {name: 0.0 for name in ("job_states", "outbox", "usage", "full")}
        self.echo("reconciler service started")
        try:
            while not self._stop.is_set() and (ends is None or time.monotonic() < ends):
                self._unit("converge", self.converge)
                for name, duty in (("job_states", self.refresh_job_states), ("outbox", self.send_mail),
                                   ("usage", self.ingest_usage), ("full", self.full_pass)):
                    if time.monotonic() >= due[name] and not self._stop.is_set():
                        self._unit(name, duty)
                        due[name] = time.monotonic() + getattr(self.schedule, name)
                wait = min([self.schedule.poll] + [max(t - time.monotonic(), 0) for t in due.values()])
                self._wait(wait if ends is None else min(wait, max(ends - time.monotonic(), 0)))
        except ServiceStopping:
            self.echo("stopped in the middle of a unit of work; it was rolled back and stays pending")
        finally:
            self._close_listener()
        self.echo("reconciler service stopped")

    def stop(self) -> None:
        self._stop.set()

    def _on_signal(self, signum, _frame) -> None:
        self.echo(f"{signal.Signals(signum).name} received: stopping")
        self._stop.set()
        if self._busy:
            raise ServiceStopping(signum)

    def _unit(self, name: str, duty: Callable[[], None]) -> None:
        """One duty in an app context of its own; a failure is logged and retried later."""
        with self.app.app_context():
            self._busy = True
            try:
                duty()
            except ServiceStopping:
                roll_back()
                raise
            except Exception:
                roll_back()
                log.exception("reconciler service: %s failed; retrying later", name)
            finally:
                self._busy = False
                db.session.remove()

    # ---- waking up ----------------------------------------------------------------------
    def _wait(self, seconds: float) -> None:
        """Sleep until a NOTIFY (PostgreSQL), a stop, or the timeout."""
        listener = self._ensure_listener()
        if listener is None:
            self._stop.wait(seconds)
            return
        try:
            ends = time.monotonic() + seconds
            while not self._stop.is_set():  # in slices, so that stop() is seen within a second
                left = ends - time.monotonic()
                if left <= 0:
                    return
                readable, _, _ = select_module.select([listener.fileno()], [], [], min(left, 1.0))
                if readable:
                    for _ in listener.notifies(timeout=0):
                        pass
                    return
        except Exception as exc:  # a broken connection: poll until it can be made again
            log.warning("reconciler service: lost the database wake-up connection: %s", exc)
            self._close_listener()
            self._stop.wait(seconds)

    def _ensure_listener(self):
        if self._listener is not None:
            return self._listener
        url = make_url(self.app.config["SQLALCHEMY_DATABASE_URI"])
        if url.get_backend_name() != "postgresql":
            return None
        try:
            import psycopg

            connection = psycopg.connect(url.set(drivername="postgresql").render_as_string(hide_password=False),
                                         autocommit=True, connect_timeout=10)
            connection.execute(f"LISTEN {WAKE_CHANNEL}")
        except Exception as exc:
            log.warning("reconciler service: cannot LISTEN for changes (%s); polling every %g s", exc,
                        self.schedule.poll)
            return None
        self._listener = connection
        return connection

    def _close_listener(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()  # type: ignore[attr-defined]
            except Exception:
                pass
            self._listener = None

    # ---- duties -------------------------------------------------------------------------
    def converge(self) -> None:
        """Apply pending changes of every site whose retry time has come."""
        now = utcnow()
        for site in pending_sites():
            state = db.session.get(SiteSyncState, site.id)
            if state is not None and state.next_attempt_at is not None and state.next_attempt_at > now:
                continue
            outcome = reconcile_site(site, only_pending=True)
            if outcome.run is not None:
                self.echo(f"{site.name}: {'applied' if outcome.run.succeeded else 'FAILED'}"
                          f" {len(outcome.commands)} change(s)"
                          + ("" if outcome.run.succeeded else f": {outcome.run.error}"))

    def refresh_job_states(self) -> None:
        from portal.jobs.operations import jobs_to_follow, refresh_states

        jobs = jobs_to_follow()  # unfinished ones, and ended ones whose efficiency is not read yet
        if jobs:
            problem = refresh_states(jobs)
            commit()
            if problem:
                log.warning("reconciler service: job states: %s", problem)
        # Acceptance runs started from the benchmarks page: queued, running, failed or silent.
        from portal.benchmarks.acceptance import follow_acceptance_runs

        problem = follow_acceptance_runs()
        commit()
        if problem:
            log.warning("reconciler service: acceptance runs: %s", problem)

    def send_mail(self) -> None:
        from portal.mail import send_pending

        send_pending()

    def ingest_usage(self) -> None:
        from portal.grants.alerts import send_usage_alerts
        from portal.grants.ingest import ingest_site
        from portal.grants.operations import expire_due_grants
        from portal.slurm.errors import SchedulerError

        for grant in expire_due_grants():
            self.echo(f"grant {grant.id} ({grant.project.code}) expired on {grant.end_date}")
        commit()
        for site in db.session.scalars(select(Site).order_by(Site.name)):
            try:
                result = ingest_site(site)
            except SchedulerError as exc:
                roll_back()
                log.warning("reconciler service: usage of %s not read: %s", site.name, exc)
                continue
            commit()
            if result.records:
                self.echo(f"{site.name}: {result.records} job record(s) read, {result.charged} charged")
        send_usage_alerts()
        commit()

    def full_pass(self) -> None:
        for site in list(db.session.scalars(select(Site).order_by(Site.name))):
            outcome = reconcile_site(site, full=True)
            if outcome.run is not None and (outcome.commands or not outcome.run.succeeded):
                self.echo(f"{site.name}: full pass {'applied' if outcome.run.succeeded else 'FAILED'}"
                          f" {len(outcome.commands)} change(s)")
        # Usage summaries are kept by every ingestion, award and top-up; once an hour they are
        # recomputed for every grant, so nothing that bypassed those paths stays wrong for long.
        from portal.grants.summary import refresh_usage_summaries

        refresh_usage_summaries()
        commit()
