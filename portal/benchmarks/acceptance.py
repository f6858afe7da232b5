"""Acceptance runs started from the portal: submitted as Slurm jobs from the benchmark template,
reporting their result themselves with a token made for that one run, followed by the
reconciler service.

Who runs them: one Unix user and one Slurm account per deployment, set by the site
(``PORTAL_ACCEPTANCE_UNIX_USER``, ``PORTAL_ACCEPTANCE_ACCOUNT``). They are a service identity,
not a person: staff start runs, but a staff member's own Unix account would mix acceptance
jobs with their work and charge them to a project. The account sits outside the portal's
top account (the reconciler neither charges nor removes it); the site creates it once with
``sacctmgr add account`` and ``sacctmgr add user``.

The token: 256 random bits with the prefix ``hpcb_``, shown to nobody; only its SHA-256
digest is stored on the run. The portal writes it to a file readable only by the job's
user in the job folder (not into the script, the environment or sbatch's arguments, which
``scontrol`` and accounting show); the job reads and deletes the file before posting. It
works at one endpoint for one run, once, until it expires; as a personal API token it is
unknown, so it can call nothing else.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pwd
import secrets
from datetime import timedelta

from flask import current_app, has_request_context, url_for
from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from portal import __version__ as portal_version
from portal.audit.operations import record
from portal.benchmarks.models import AcceptanceRun, AcceptanceState, BenchmarkRun
from portal.benchmarks.operations import InvalidResult, ingest_result
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import User
from portal.jobs.limits import limit_problems, resources_for
from portal.jobs.operations import MPI_REFERENCES, _user_workdir, job_python, job_template, workdir_root
from portal.jobs.schema import ParamError
from portal.jobs.templates import SHIPPED_DIR, render_script
from portal.problems import Problems
from portal.sites.models import Partition
from portal.sites.operations import scheduler_for
from portal.slurm import names
from portal.slurm.errors import SchedulerError
from portal.slurm.types import JobRequest, JobState

log = logging.getLogger(__name__)

TOKEN_PREFIX = "hpcb_"
TEMPLATE = "benchmark"
SIZES = ("quick", "full")
# After Slurm says a job completed, how long its own upload may still be on the way.
RESULT_GRACE = timedelta(minutes=2)
REPORTED_FOLLOW = timedelta(days=1)


class AcceptanceError(Problems):
    """A run could not be started; the message is for staff."""


class TokenRefused(Exception):
    """An upload token that does not open this run (wrong, expired, spent); for the job's log."""


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def service_identity() -> tuple[str, str]:
    """(Unix user, Slurm account) acceptance jobs run as; refused while the site has not set them."""
    unix_user = current_app.config.get("ACCEPTANCE_UNIX_USER") or ""
    account = current_app.config.get("ACCEPTANCE_ACCOUNT") or ""
    if not unix_user or not account:
        raise AcceptanceError(_("Acceptance runs need PORTAL_ACCEPTANCE_UNIX_USER and PORTAL_ACCEPTANCE_ACCOUNT: "
                                "the Unix user and Slurm account the jobs run as."))
    try:
        names.validate_user_name(unix_user)
        names.validate_account_name(account)
    except names.InvalidName as exc:
        raise AcceptanceError(str(exc)) from None
    return unix_user, account


def benchmark_choices() -> list[str]:
    template = job_template(TEMPLATE)
    return list(template.params["benchmarks"].choices) if template else []


def result_url(run: AcceptanceRun) -> str:
    """Where the job posts: PORTAL_PUBLIC_URL (the address jobs reach the portal at) + the path."""
    path = url_for("api_acceptance.post_result", acceptance_id=run.id)
    base = (current_app.config.get("PUBLIC_URL") or "").rstrip("/")
    if base:
        return base + path
    if has_request_context():
        return url_for("api_acceptance.post_result", acceptance_id=run.id, _external=True)
    raise AcceptanceError(_("Set PORTAL_PUBLIC_URL: the address jobs reach the portal at."))


def _write_token_file(workdir: str, run_id: int, secret: str, unix_user: str) -> str:
    """The token in a new file only the job's user can read (never through a link)."""
    account = pwd.getpwnam(unix_user)
    path = os.path.join(workdir, f".acceptance-{run_id}.token")  # token_path(run)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, secret.encode())
        os.fchown(fd, account.pw_uid, account.pw_gid)
    finally:
        os.close(fd)
    return path


def start_acceptance_run(staff: User, partition: Partition, benchmarks: str, size: str, *, ntasks: int = 2,
                         time_minutes: int = 10) -> AcceptanceRun:
    """Record the run (queued) and submit its job; raises AcceptanceError or SchedulerError. Flushes."""
    template = job_template(TEMPLATE)
    if template is None:
        raise AcceptanceError(_("The benchmark job template is missing."))
    if size not in SIZES:
        raise AcceptanceError(_("Choose a size: %(sizes)s.", sizes=", ".join(SIZES)))
    unix_user, account = service_identity()
    site = partition.site
    raw = {"time": str(time_minutes), "ntasks": str(ntasks), "benchmarks": benchmarks, "system": site.slurm_cluster,
           "quick": "true" if size == "quick" else "false"}
    try:
        values = {name: param.clean(raw.get(name)) for name, param in template.params.items()}
    except ParamError as exc:
        raise AcceptanceError(str(exc)) from None
    res = resources_for(template, values)
    problems = [str(m) for ms in limit_problems(template, partition, res).values() for m in ms]
    if problems:
        raise AcceptanceError("; ".join(problems))
    try:
        workdir = _user_workdir(str(workdir_root() / unix_user), unix_user)
    except (KeyError, OSError) as exc:
        raise AcceptanceError(_("could not prepare the job folder for %(user)s: %(error)s", user=unix_user,
                                error=getattr(exc, "strerror", None) or exc)) from None
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    run = AcceptanceRun(site=site, partition=partition, requested_by=staff, requested_at=now, benchmarks=benchmarks,
                        size=size, ntasks=res.tasks, time_minutes=res.time_minutes, unix_user=unix_user,
                        account=account, workdir=workdir, script="", token_hash=_digest(secret),
                        token_expires_at=now + timedelta(minutes=res.time_minutes)
                        + timedelta(hours=float(current_app.config.get("ACCEPTANCE_TOKEN_HOURS") or 6)),
                        portal_version=portal_version)
    db.session.add(run)
    db.session.flush()
    output = f"{workdir}/slurm-%j.out"
    header = res.sbatch_header(f"acceptance-{run.id}", account, partition.name, output)
    run.script = render_script(template, header, values, {
        "python": job_python(), "workdir": workdir, "mpi_references": str(MPI_REFERENCES),
        "examples": str(SHIPPED_DIR / "examples"), "acceptance": True})
    token_file = _write_token_file(workdir, run.id, secret, unix_user)
    request = JobRequest(script=run.script, account=account, partition=partition.name, job_name=f"acceptance-{run.id}",
                         workdir=workdir, time_limit_minutes=res.time_minutes, user=unix_user, nodes=res.nodes,
                         ntasks=res.tasks, output=output,
                         environment={"PORTAL_ACCEPTANCE_URL": result_url(run),
                                      "PORTAL_ACCEPTANCE_TOKEN_FILE": token_file})
    try:
        run.slurm_job_id = scheduler_for(site).submit(request)
    except SchedulerError:
        os.unlink(token_file)
        raise
    db.session.flush()
    record("benchmark.acceptance_started", staff, f"acceptance:{run.id}", {
        "partition": partition.label, "benchmarks": benchmarks, "size": size, "slurm_job_id": run.slurm_job_id,
        "unix_user": unix_user, "account": account})
    return run


# ---- the job's own upload ---------------------------------------------------------------------
def accept_result(run_id: int, secret: str, document) -> BenchmarkRun:
    """Store the result a run's job posted, judged as any result; spends the token.

    Raises TokenRefused (nothing is said about whether the run exists) or InvalidResult.
    """
    run = db.session.get(AcceptanceRun, run_id, with_for_update=True)
    if run is None or not secret.startswith(TOKEN_PREFIX) or not hmac.compare_digest(run.token_hash, _digest(secret)):
        raise TokenRefused(_("This upload token is not valid for this run."))
    if run.token_used_at is not None or run.state.is_final:
        raise TokenRefused(_("This run's upload token was used already or the run has ended."))
    if run.token_expires_at <= utcnow():
        raise TokenRefused(_("This run's upload token expired on %(date)s (UTC).",
                             date=run.token_expires_at.strftime("%Y-%m-%d %H:%M")))
    if isinstance(document, dict):
        expected = {"system": run.site.slurm_cluster, "partition": run.partition.name}
        wrong = [f"{k}: {document.get(k)!r} is not this run's {v!r}" for k, v in expected.items() if document.get(k) != v]
        if document.get("slurm_job_id") not in (None, run.slurm_job_id):
            wrong.append(f"slurm_job_id: {document.get('slurm_job_id')!r} is not this run's job {run.slurm_job_id}")
        if wrong:
            raise InvalidResult(wrong)
    stored = ingest_result(document, None)
    run.result = stored
    run.state = AcceptanceState.REPORTED
    run.token_used_at = utcnow()
    run.ended_at = run.ended_at or run.token_used_at
    db.session.flush()
    record("benchmark.acceptance_reported", None, f"acceptance:{run.id}",
           {"result": stored.id, "verdict": stored.verdict.value}, actor_label=f"job {run.slurm_job_id}")
    return stored


# ---- following (the reconciler service) -----------------------------------------------------------
def token_path(run: AcceptanceRun) -> str:
    return os.path.join(run.workdir, f".acceptance-{run.id}.token")


def _fail(run: AcceptanceRun, reason: str) -> None:
    run.state = AcceptanceState.FAILED
    run.reason = reason[:300]
    run.ended_at = run.ended_at or utcnow()
    try:  # a job killed before its upload leaves the token file; the token is void now anyway
        os.unlink(token_path(run))
    except OSError:
        pass
    log.info("acceptance run %s failed: %s", run.id, reason)


def _follow_one(run: AcceptanceRun, state: JobState, reason: str | None, now) -> None:
    run.slurm_state = state.value
    if run.state is AcceptanceState.REPORTED:  # the verdict stands; only how the job ended is noted
        return
    if not state.is_final:
        run.state = AcceptanceState.QUEUED if state in (JobState.PENDING, JobState.REQUEUED) else AcceptanceState.RUNNING
        return
    run.ended_at = run.ended_at or now
    if state is not JobState.COMPLETED:
        _fail(run, _("Slurm ended the job: %(state)s%(reason)s", state=state.value,
                     reason=f" ({reason})" if reason and reason != "None" else ""))
    elif now - run.ended_at > RESULT_GRACE:
        _fail(run, _("The job completed without posting a result; see its output in %(dir)s.", dir=run.workdir))


def follow_acceptance_runs() -> str | None:
    """Bring unfinished runs up to date from Slurm (one queue read per site). Returns an error note."""
    now = utcnow()
    final = [s.value for s in JobState if s.is_final]
    runs = list(db.session.scalars(select(AcceptanceRun).where(or_(
        AcceptanceRun.state.in_([AcceptanceState.QUEUED, AcceptanceState.RUNNING]),
        # reported, but the job's end not seen yet (for a day at most: accounting may forget)
        and_(AcceptanceRun.state == AcceptanceState.REPORTED, AcceptanceRun.token_used_at > now - REPORTED_FOLLOW,
             or_(AcceptanceRun.slurm_state.is_(None), AcceptanceRun.slurm_state.not_in(final)))))
        .with_for_update(skip_locked=True)))
    errors = []
    for site_id in {r.site_id for r in runs}:
        on_site = [r for r in runs if r.site_id == site_id]
        try:
            scheduler = scheduler_for(on_site[0].site)
            queue = {s.job_id: s for s in scheduler.jobs()}
            for run in on_site:
                status = queue.get(run.slurm_job_id) or scheduler.job(run.slurm_job_id)
                _follow_one(run, status.state, status.reason, now)
        except SchedulerError as exc:
            errors.append(str(exc))
    for run in runs:  # whatever Slurm says (or cannot say): a token past its time ends the wait
        if not run.state.is_final and run.token_expires_at <= now:
            _fail(run, _("No result came before the run's upload token expired."))
    db.session.flush()
    return "; ".join(errors) or None


def acceptance_runs(limit: int = 100) -> list[AcceptanceRun]:
    return list(db.session.scalars(select(AcceptanceRun).order_by(AcceptanceRun.id.desc()).limit(limit)))


def latest_finished_by_partition() -> dict[int, AcceptanceRun]:
    """The newest ended acceptance run of each partition (what the systems page flags)."""
    newest = (select(func.max(AcceptanceRun.id))
              .where(AcceptanceRun.state.in_([AcceptanceState.REPORTED, AcceptanceState.FAILED]))
              .group_by(AcceptanceRun.partition_id))
    return {run.partition_id: run for run in db.session.scalars(
        select(AcceptanceRun).where(AcceptanceRun.id.in_(newest)).options(selectinload(AcceptanceRun.result)))}
