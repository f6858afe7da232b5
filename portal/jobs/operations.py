"""Business rules for job templates: plan (validate), submit, follow, cancel.

The web pages, the JSON API and the ``flask jobs`` commands all call these functions.
"""
from __future__ import annotations

import logging
import os
import pwd
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import format_decimal
from flask_babel import gettext as _
from sqlalchemy import and_, or_, select

from portal.audit.operations import record
from portal.extensions import db
from portal.grants.models import GrantAllocation
from portal.grants.operations import active_allocation
from portal.grants.usage import pool_balance
from portal.identity.models import User
from portal.jobs.limits import Resources, limit_problems, live_problems, resources_for
from portal.jobs.models import JobEfficiencyRecord, SubmittedJob
from portal.jobs.schema import ParamError
from portal.jobs.templates import SHIPPED_DIR, JobTemplate, TemplateProblem, load_templates, render_script
from portal.problems import Problems
from portal.projects.models import Membership, Project
from portal.shipped import shipped_folder
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import refresh_partition_limits, scheduler_for
from portal.slurm.errors import SchedulerError
from portal.slurm.types import JobRequest, JobState, JobStatus

log = logging.getLogger(__name__)
JOB_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}")
MPI_REFERENCES = shipped_folder("mpi_examples/references")


class JobError(Problems):
    """A job could not be submitted or cancelled; the message is for the person who asked."""


class CancelNotAllowed(JobError):
    """The person may not cancel this job (not theirs, not their project's)."""

    status = 403


# ---- templates ---------------------------------------------------------------------------
def template_folders() -> list[Path]:
    site = current_app.config.get("JOB_TEMPLATES_DIR") or ""
    return [SHIPPED_DIR] + ([Path(site)] if site else [])


def _signature(folders: list[Path]) -> tuple:
    # Staff drop files into the site folder while the portal runs: reload when any changes.
    return tuple((str(p), p.stat().st_mtime_ns) for f in folders if f.is_dir() for p in sorted(f.iterdir()))


def job_templates() -> tuple[dict[str, JobTemplate], list[TemplateProblem]]:
    """Every loadable template, and the problems of those that are not."""
    folders = template_folders()
    signature = _signature(folders)
    cached = current_app.extensions.get("job_templates")
    if cached is None or cached[0] != signature:
        cached = (signature, load_templates(folders))
        current_app.extensions["job_templates"] = cached
    return cached[1]


def job_template(name: str) -> JobTemplate | None:
    return job_templates()[0].get(name)


def submittable_projects(user: User) -> list[Project]:
    """Projects ``user`` belongs to (staff too: submitting is a member's act, not an override)."""
    return list(db.session.scalars(select(Project).join(Membership).where(Membership.user_id == user.id)
                                   .order_by(Project.code)))


def offered_partitions(template: JobTemplate) -> list[Partition]:
    """Partitions whose time is counted the way the template uses it (core- or GPU-hours)."""
    kind = ResourceKind(template.kind)
    return list(db.session.scalars(select(Partition).where(Partition.resource_kind == kind,
                                                           Partition.state == "UP").order_by(Partition.name)))


def limits_text(partition: Partition) -> dict[str, str]:
    """The partition's limit beside each #SBATCH option, for the form."""
    per_node = _("%(n)d per node", n=partition.cpus_per_node)
    limits = {"--time": _("MaxTime %(n)s min", n=partition.max_time_minutes or _("unlimited")),
              "--nodes": _("MaxNodes %(n)s", n=min(n for n in (partition.max_nodes, partition.total_nodes)
                                                   if n is not None)),
              "--ntasks": _("CPUs: %(n)s", n=per_node), "--cpus-per-task": _("CPUs: %(n)s", n=per_node),
              "--gpus": _("GPUs: %(n)d per node", n=partition.gpus_per_node)}
    limits["--ntasks-per-node"] = limits["--ntasks"]
    limits["--gpus-per-node"] = limits["--gpus"]
    if partition.mem_per_node_mb:
        limits["--mem"] = _("%(n)d MB per node", n=partition.mem_per_node_mb)
    return limits


# ---- planning ------------------------------------------------------------------------------
@dataclass
class JobPlan:
    """A checked request: what would be submitted, what it may cost, and what is wrong."""

    template: JobTemplate
    project: Project
    partition: Partition
    job_name: str
    values: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[str]] = field(default_factory=dict)
    resources: Resources | None = None
    allocation: GrantAllocation | None = None
    cost_minutes: int | None = None
    remaining_minutes: int | None = None  # what the pool still allows a new job
    queued_minutes: int | None = None  # held by the pool's jobs waiting in the queue
    notes: list[str] = field(default_factory=list)  # warnings that do not stop the job
    script: str | None = None
    unix_user: str | None = None
    workdir: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors and self.script is not None

    def refuse(self, where: str, message: str) -> None:
        self.errors.setdefault(where, []).append(message)

    @property
    def kind(self) -> ResourceKind:
        return self.allocation.resource_kind if self.allocation else self.partition.resource_kind

    @property
    def account(self) -> str | None:
        """The Slurm sub-account of the grant's pool the job is charged to."""
        return self.allocation.slurm_account if self.allocation else None


def hours_text(minutes: int, kind: ResourceKind) -> str:
    """'1.5 GPU-hours': minutes shown in the unit people are granted."""
    unit = _("GPU-hours") if kind is ResourceKind.GPU else _("core-hours")
    return f"{format_decimal(minutes / 60, format='#,##0.##')} {unit}"


def workdir_root() -> Path:
    return Path(current_app.config.get("JOB_WORKDIR_ROOT") or Path(current_app.instance_path) / "jobs")


def job_python() -> str:
    return current_app.config.get("JOB_PYTHON") or sys.executable


def _output_name(res: Resources) -> str:
    return "slurm-%A_%a.out" if res.array_tasks is not None else "slurm-%j.out"


def _output_path(workdir: str, res: Resources) -> str:
    return "/".join(part for part in (workdir, res.output, _output_name(res)) if part)


MAIL_ADDRESS = re.compile(r"[A-Za-z0-9_.+-]{1,64}@[A-Za-z0-9.-]{1,190}")


def _check_values(plan: JobPlan, raw_values: dict[str, Any]) -> None:
    """Clean every parameter; a name the template does not take is refused, never ignored."""
    template = plan.template
    for name in sorted(set(raw_values) - set(template.params)):
        plan.refuse(str(name)[:40], _("unknown parameter %(name)s; this template takes: %(names)s",
                                      name=repr(str(name)[:40]), names=", ".join(template.params)))
    for name, param in template.params.items():
        try:
            plan.values[name] = param.clean(raw_values.get(name))
        except ParamError as exc:
            plan.refuse(name, str(exc))


def _check_options(plan: JobPlan, user: User, res: Resources, live: bool) -> None:
    """--dependency, --mail-type, --qos and --constraint: what only the portal or Slurm knows."""
    where = {p.sbatch_option: p.name for p in plan.template.params.values() if p.sbatch_option}
    ids = res.dependency_ids
    if ids:
        mine = set(db.session.scalars(select(SubmittedJob.slurm_job_id).where(
            SubmittedJob.user_id == user.id, SubmittedJob.site_id == plan.partition.site_id,
            SubmittedJob.slurm_job_id.in_(ids))))
        for job_id in [i for i in ids if i not in mine]:
            plan.refuse(where.get("--dependency", "partition"), _(
                "--dependency: job %(id)s is not one of your jobs on %(site)s", id=job_id, site=plan.partition.site.name))
    if res.mail_type not in (None, "NONE") and not MAIL_ADDRESS.fullmatch(user.email or ""):
        plan.refuse(where.get("--mail-type", "partition"), _(
            "--mail-type: your portal address %(mail)s cannot be given to Slurm; choose NONE", mail=user.email))
    if live and (res.qos is not None or res.constraint is not None):
        try:
            found = live_problems(plan.template, plan.partition, res, scheduler_for(plan.partition.site))
        except (SchedulerError, NotImplementedError) as exc:
            plan.refuse(where.get("--qos" if res.qos is not None else "--constraint", "partition"), _(
                "--qos/--constraint could not be checked against Slurm: %(error)s", error=str(exc)[:200]))
        else:
            for key, messages in found.items():
                plan.errors.setdefault(key, []).extend(messages)


def plan_job(user: User, template: JobTemplate, project: Project, partition: Partition,
             raw_values: dict[str, Any], job_name: str | None = None, *, today: date | None = None,
             remaining: int | None = None) -> JobPlan:
    """Check everything that can be checked before Slurm sees the job, and render its script.

    ``remaining`` skips the ledger query (the benchmark measures rendering and validation).
    """
    plan = JobPlan(template, project, partition, job_name or template.name)
    _check_values(plan, raw_values)
    if not JOB_NAME.fullmatch(plan.job_name):
        plan.refuse("job_name", _("job name: 1-64 letters, digits and _.+-, not starting with . + or -"))
    if project.membership_of(user) is None:
        plan.refuse("project", _("you are not a member of project %(code)s", code=project.code))
    plan.unix_user = user.unix_username
    if not plan.unix_user:
        plan.refuse("project", _("your portal account is not linked to a Unix account on the cluster; ask staff"))
    if partition.resource_kind.value != template.kind:
        plan.refuse("partition", _("partition %(p)s counts %(kind)s time; this template needs a %(need)s partition",
                                   p=partition.name, kind=partition.resource_kind.value, need=template.kind))
    if plan.errors.keys() & (template.params.keys() | raw_values.keys()):
        return plan
    plan.resources = res = resources_for(template, plan.values)
    if remaining is None:
        stale = refresh_partition_limits(partition.site)
        if stale:
            plan.notes.append(stale)
    for where, messages in limit_problems(template, partition, res).items():
        plan.errors.setdefault(where, []).extend(messages)
    _check_options(plan, user, res, live=remaining is None)
    plan.allocation = active_allocation(project, partition, today or date.today())
    plan.cost_minutes = res.max_cost_minutes(plan.kind, partition.cpus_per_node)
    if plan.allocation is None:
        plan.refuse("partition", _("project %(code)s has no active grant for partition %(p)s",
                                   code=project.code, p=partition.label))
    elif plan.account is None:
        plan.refuse("partition", _("Slurm does not have the grant's account for partition %(p)s yet: the change"
                                   " is waiting for Slurm; try again in a minute", p=partition.name))
    else:
        _check_pool_balance(plan, remaining)
    plan.workdir = str(workdir_root() / (plan.unix_user or "unmapped"))
    mail_user = user.email if MAIL_ADDRESS.fullmatch(user.email or "") else None
    header = res.sbatch_header(plan.job_name if JOB_NAME.fullmatch(plan.job_name) else template.name,
                               plan.account or "none", partition.name, _output_path(plan.workdir, res),
                               mail_user=mail_user)
    if res.chdir:
        header.insert(-1, ("--chdir", f"{plan.workdir}/{res.chdir}"))
    plan.script = render_script(template, header, plan.values, {
        "python": job_python(), "workdir": plan.workdir, "mpi_references": str(MPI_REFERENCES),
        "examples": str(SHIPPED_DIR / "examples")})
    return plan


def _check_pool_balance(plan: JobPlan, remaining: int | None) -> None:
    """The job's largest cost must fit in what Slurm still allows on the grant's pool."""
    assert plan.allocation is not None and plan.cost_minutes is not None
    if remaining is None:
        balance = pool_balance(plan.allocation, scheduler_for(plan.partition.site))
        if balance.note:
            plan.notes.append(balance.note)
        remaining, plan.queued_minutes = balance.remaining, balance.queued
        _check_slurm_ready(plan)
    plan.remaining_minutes = remaining
    if plan.cost_minutes > remaining:
        plan.refuse("partition", _(
            "this job may use up to %(cost)s, more than the %(left)s the grant still allows on %(p)s"
            " (after %(queued)s held by jobs already queued)", cost=hours_text(plan.cost_minutes, plan.kind),
            left=hours_text(max(remaining, 0), plan.kind), p=plan.partition.name,
            queued=hours_text(plan.queued_minutes or 0, plan.kind)))


def _check_slurm_ready(plan: JobPlan) -> None:
    """Refuse while the controller does not yet know the user in the pool's account: sbatch
    would answer "Invalid account" (the reconciler has not applied the change yet)."""
    if plan.account is None or plan.unix_user is None:
        return  # refused already for the missing account or Unix user
    try:
        ready = scheduler_for(plan.partition.site).association_ready(plan.account, plan.unix_user)
    except SchedulerError:
        return  # the balance's note already says Slurm did not answer
    if not ready:
        plan.refuse("partition", _(
            "Slurm is not ready for project %(code)s yet: %(user)s in account %(account)s is waiting for Slurm"
            " (the portal applies the change within a minute); try again shortly",
            code=plan.project.code, user=plan.unix_user, account=plan.account))


def plan_by_ids(user: User, template_name: str, project_id: int, partition_id: int, values: dict[str, Any],
                job_name: str | None = None) -> JobPlan | None:
    """plan_job for the API and the command line; None when the template, a project the user
    may see, or the partition does not exist (callers answer 404 and leak nothing)."""
    from portal.projects.operations import visible_project

    template = job_template(template_name)
    project = visible_project(user, project_id)
    partition = db.session.get(Partition, partition_id)
    if template is None or project is None or partition is None:
        return None
    return plan_job(user, template, project, partition, values, job_name)


# ---- submission ------------------------------------------------------------------------------
def _user_workdir(path: str, unix_user: str) -> str:
    """The per-user folder jobs run in: created by the portal, owned by the job's user."""
    folder = Path(path)
    account = pwd.getpwnam(unix_user)
    folder.mkdir(mode=0o750, parents=True, exist_ok=True)
    if folder.is_symlink() or folder.stat().st_uid != account.pw_uid:
        os.chown(folder, account.pw_uid, account.pw_gid, follow_symlinks=False)
    return str(folder)


def _user_subfolder(workdir: str, relative: str, unix_user: str) -> None:
    """Create ``workdir/relative`` for the user, one step at a time, never through a link.

    The portal runs as root: a folder the user swapped for a link to /etc must not lead it
    there, so each step is opened with O_NOFOLLOW and must belong to the user.
    """
    account = pwd.getpwnam(unix_user)
    fd = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in relative.split("/"):
            try:
                os.mkdir(part, 0o750, dir_fd=fd)
                created = True
            except FileExistsError:
                created = False
            step = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = step
            if created:
                os.fchown(fd, account.pw_uid, account.pw_gid)
            elif os.fstat(fd).st_uid != account.pw_uid:
                raise PermissionError(f"{relative}: {part} does not belong to {unix_user}")
    finally:
        os.close(fd)


def submit_job(plan: JobPlan, user: User) -> SubmittedJob:
    if not plan.ok:
        raise JobError("; ".join(m for ms in plan.errors.values() for m in ms))
    res = plan.resources
    assert res is not None and plan.unix_user and plan.workdir and plan.script
    site = plan.partition.site
    try:
        workdir = _user_workdir(plan.workdir, plan.unix_user)
        for sub in (res.chdir, res.output):
            if sub:
                _user_subfolder(workdir, sub, plan.unix_user)
    except (KeyError, OSError) as exc:
        raise JobError(_("could not prepare the job folder for %(user)s: %(error)s", user=plan.unix_user,
                         error=getattr(exc, "strerror", None) or exc)) from None
    request = JobRequest(
        script=plan.script, account=plan.account or "", partition=plan.partition.name,
        job_name=plan.job_name, workdir=f"{workdir}/{res.chdir}" if res.chdir else workdir,
        time_limit_minutes=res.time_minutes, user=plan.unix_user, nodes=res.nodes, ntasks=res.tasks,
        cpus_per_task=res.cpus_per_task, gpus=res.gpus, mem_mb=res.mem_mb, output=_output_path(workdir, res),
        array=res.array_spec())
    job_id = scheduler_for(site).submit(request)  # SchedulerError goes to the caller to show
    job = SubmittedJob(site_id=site.id, partition=plan.partition, project=plan.project, user=user,
                       slurm_job_id=job_id, template=plan.template.name, job_name=plan.job_name,
                       unix_user=plan.unix_user, account=request.account, workdir=workdir, script=plan.script,
                       parameters=plan.values, max_cost_minutes=plan.cost_minutes or 0)
    db.session.add(job)
    db.session.flush()
    record("job.submit", user, f"job:{job.id}", {"slurm_job_id": job_id, "template": plan.template.name,
                                                 "project": plan.project.code, "partition": plan.partition.name,
                                                 "max_cost_minutes": job.max_cost_minutes})
    return job


# ---- following --------------------------------------------------------------------------------

# How long after a job ended the portal keeps asking accounting for its efficiency (accounting
# usually has it within seconds; a step left "RUNNING" by a failed node never completes).
EFFICIENCY_WINDOW = timedelta(hours=1)


def jobs_visible_to(user: User, project: Project | None = None, limit: int = 200) -> list[SubmittedJob]:
    query = select(SubmittedJob).order_by(SubmittedJob.id.desc()).limit(limit)
    if project is not None:
        query = query.where(SubmittedJob.project_id == project.id)
    if not user.is_staff:
        query = query.join(Membership, Membership.project_id == SubmittedJob.project_id).where(
            Membership.user_id == user.id)
    return list(db.session.scalars(query))


def visible_job(user: User, job_id: int) -> SubmittedJob | None:
    """The job if ``user`` may see it, else None (callers answer 404 either way)."""
    job = db.session.get(SubmittedJob, job_id)
    return job if job is not None and job.can_view(user) else None


def _combined(job: SubmittedJob, statuses: list[JobStatus]) -> tuple[str, str | None] | None:
    """One state for a job, or for all tasks of an array job."""
    mine = [s for s in statuses if s.job_id == job.slurm_job_id or s.job_id.startswith(job.slurm_job_id + "_")]
    if not mine:
        return None
    live = [s for s in mine if not s.state.is_final]
    if live:
        running = [s for s in live if s.state is not JobState.PENDING]
        chosen = running[0] if running else live[0]
        return chosen.state.value, chosen.reason
    failed = [s for s in mine if s.state is not JobState.COMPLETED]
    chosen = failed[0] if failed else mine[0]
    return chosen.state.value, chosen.reason


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _wants_efficiency(job: SubmittedJob, now: datetime) -> bool:
    return (JobState(job.last_state).is_final and job.efficiency is None and job.state_seen_at is not None
            and now - job.state_seen_at < EFFICIENCY_WINDOW)


def jobs_to_follow() -> list[SubmittedJob]:
    """Jobs whose state may still change, and jobs that ended lately whose efficiency
    accounting has not given yet: what the reconciler service refreshes."""
    unfinished = [s.value for s in JobState if not s.is_final]
    return list(db.session.scalars(select(SubmittedJob).where(or_(
        SubmittedJob.last_state.in_(unfinished),
        and_(SubmittedJob.state_seen_at >= _now() - EFFICIENCY_WINDOW, ~SubmittedJob.efficiency.has())))))


def refresh_states(jobs: list[SubmittedJob]) -> str | None:
    """Ask Slurm for the state of every unfinished job, and, once a job has ended, for its
    efficiency (read once and stored: pages never run sacct). Returns an error note, or None."""
    now = _now()
    open_jobs = [j for j in jobs if not JobState(j.last_state).is_final or _wants_efficiency(j, now)]
    errors = []
    for site_id in {j.site_id for j in open_jobs}:
        on_site = [j for j in open_jobs if j.site_id == site_id]
        scheduler = scheduler_for(on_site[0].partition.site)
        try:
            queue = scheduler.jobs()
            for job in (j for j in on_site if not JobState(j.last_state).is_final):
                seen = _combined(job, queue)
                if seen is None:  # left the queue: accounting knows how it ended
                    finished = scheduler.job(job.slurm_job_id)
                    seen = finished.state.value, finished.reason
                job.last_state, job.last_reason = seen[0], (seen[1] or None) and seen[1][:200]
                job.state_seen_at = now
            for job in (j for j in on_site if _wants_efficiency(j, now)):
                measured = scheduler.job_efficiency(job.slurm_job_id)
                if measured is not None:  # None: accounting has not caught up; the next pass asks again
                    job.efficiency = JobEfficiencyRecord.of(measured)
        except SchedulerError as exc:
            errors.append(str(exc))
    db.session.flush()
    return "; ".join(errors) or None


def cancel_job(job: SubmittedJob, user: User) -> None:
    if not job.can_cancel(user):
        raise CancelNotAllowed(_("only the person who submitted the job, the project's PI and staff may cancel it"))
    scheduler_for(job.partition.site).cancel(job.slurm_job_id)
    record("job.cancel", user, f"job:{job.id}", {"slurm_job_id": job.slurm_job_id})
    db.session.flush()


# ---- submitting again with changes ------------------------------------------------------------
def resubmission_values(job: SubmittedJob, template: JobTemplate) -> dict[str, Any]:
    """The job's parameters that its template still takes: the starting point of a resubmission."""
    return {name: value for name, value in job.parameters.items() if name in template.params}


def plan_resubmission(user: User, job: SubmittedJob, changes: Mapping[str, Any], job_name: str | None = None,
                      partition: Partition | None = None) -> JobPlan | None:
    """plan_job with the job's template, project, partition and parameters, changed by
    ``changes`` (checked as any request is); None when the template is gone."""
    template = job_template(job.template)
    if template is None:
        return None
    values = {**resubmission_values(job, template), **changes}
    return plan_job(user, template, job.project, partition or job.partition, values, job_name or job.job_name)


def resubmit_job(plan: JobPlan, user: User, source: SubmittedJob) -> SubmittedJob:
    job = submit_job(plan, user)
    record("job.resubmit", user, f"job:{job.id}", {"from_job": source.id, "slurm_job_id": job.slurm_job_id,
                                                   "from_slurm_job_id": source.slurm_job_id})
    return job
