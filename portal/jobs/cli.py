"""``flask jobs``: the same templates, checks and submissions as the Jobs page, for a named user."""
from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from portal.extensions import db
from portal.identity.models import User
from portal.jobs.efficiency import efficiency_facts
from portal.jobs.models import SubmittedJob
from portal.jobs.operations import (
    JobError,
    JobPlan,
    cancel_job,
    hours_text,
    job_template,
    job_templates,
    jobs_visible_to,
    plan_job,
    plan_resubmission,
    refresh_states,
    resubmit_job,
    submit_job,
    visible_job,
)
from portal.jobs.output import output_tails
from portal.projects.models import Project
from portal.sites.models import Partition, Site
from portal.slurm.errors import SchedulerError
from portal.transactions import commit

jobs_cli = AppGroup("jobs", help="Job templates and jobs submitted through the portal.")


def _user(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == email.lower()))
    if user is None:
        raise click.ClickException(f"No user with e-mail {email}.")
    return user


def _plan(template_name: str, email: str, project_code: str, partition_name: str, settings: tuple[str, ...],
          job_name: str | None) -> tuple[User, JobPlan]:
    user = _user(email)
    template = job_template(template_name)
    if template is None:
        raise click.ClickException(f"No template {template_name!r}; see 'flask jobs templates'.")
    project = db.session.scalar(select(Project).where(Project.code == project_code))
    if project is None or not project.can_view(user):
        raise click.ClickException(f"No project {project_code!r} that {email} may see.")
    site_name, _, name = partition_name.rpartition("/")
    query = select(Partition).where(Partition.name == name)
    if site_name:
        query = query.join(Site).where(Site.name == site_name)
    partitions = list(db.session.scalars(query))
    if len(partitions) != 1:
        raise click.ClickException(f"{'No' if not partitions else 'More than one'} partition {partition_name!r}"
                                   " (use SITE/PARTITION).")
    return user, plan_job(user, template, project, partitions[0], _settings(settings), job_name)


def _settings(settings: tuple[str, ...]) -> dict[str, str]:
    values = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.ClickException(f"--set {item!r}: use NAME=VALUE")
        values[key] = value
    return values


def _report(plan: JobPlan) -> None:
    if plan.cost_minutes is not None:
        left = ("no grant" if plan.remaining_minutes is None
                else f"the grant still allows {hours_text(plan.remaining_minutes, plan.kind)} on this pool"
                + (f" (account {plan.account})" if plan.account else ""))
        click.echo(f"# largest possible cost: {hours_text(plan.cost_minutes, plan.kind)}; {left}", err=True)
    for note in plan.notes:
        click.echo(f"# note: {note}", err=True)
    for where, messages in plan.errors.items():
        for message in messages:
            click.echo(f"{where}: {message}", err=True)


_PLAN_OPTIONS = [
    click.argument("template"),
    click.option("--email", required=True, help="The portal user the job is for."),
    click.option("--project", "project_code", required=True, help="Project code."),
    click.option("--partition", "partition_name", required=True, help="PARTITION or SITE/PARTITION."),
    click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="A template parameter."),
    click.option("--job-name"),
]


def plan_options(command):
    for option in reversed(_PLAN_OPTIONS):
        command = option(command)
    return command


@jobs_cli.command("templates")
def list_templates():
    """List the templates, and any that could not be loaded."""
    templates, problems = job_templates()
    for template in sorted(templates.values(), key=lambda t: t.name):
        params = ", ".join(f"{p.name}={p.default}" for p in template.params.values())
        click.echo(f"{template.name:12} {template.kind:4} {template.title}  [{params}]")
    for problem in problems:
        click.echo(f"BROKEN {problem}", err=True)


@jobs_cli.command("render")
@plan_options
def render(template, email, project_code, partition_name, settings, job_name):
    """Check a request and print the exact script that would be submitted."""
    _user_, plan = _plan(template, email, project_code, partition_name, settings, job_name)
    _report(plan)
    if plan.script:
        click.echo(plan.script, nl=False)
    if not plan.ok:
        raise click.ClickException("The request does not pass the checks above.")


@jobs_cli.command("submit")
@plan_options
def submit(template, email, project_code, partition_name, settings, job_name):
    """Submit a job from a template as the user's Unix account."""
    user, plan = _plan(template, email, project_code, partition_name, settings, job_name)
    _report(plan)
    try:
        job = submit_job(plan, user)
    except (JobError, SchedulerError) as exc:
        raise click.ClickException(f"Not submitted: {exc}") from None
    commit()
    click.echo(f"Submitted job {job.slurm_job_id} (portal job {job.id}) in {job.workdir}")


@jobs_cli.command("list")
@click.option("--email", required=True)
def list_jobs(email: str):
    """Jobs the user may see, with the state Slurm reports now."""
    jobs = jobs_visible_to(_user(email))
    problem = refresh_states(jobs)
    commit()
    for job in jobs:
        reason = f" ({job.last_reason})" if job.last_reason else ""
        click.echo(f"{job.id:6} {job.slurm_job_id:>10} {job.last_state:12} {job.template:10} "
                   f"{job.project.code} {job.partition.name} {job.job_name}{reason}")
    if problem:
        click.echo(f"live state could not be read: {problem}", err=True)


@jobs_cli.command("cancel")
@click.argument("job_id", type=int)
@click.option("--email", required=True)
def cancel(job_id: int, email: str):
    """Cancel a portal job (by its portal id) as the given user."""
    user, job = _visible_job(job_id, email)
    try:
        cancel_job(job, user)
    except (JobError, SchedulerError) as exc:
        raise click.ClickException(str(exc)) from None
    commit()
    click.echo(f"Cancelled job {job.slurm_job_id}")


def _visible_job(job_id: int, email: str) -> tuple[User, SubmittedJob]:
    user = _user(email)
    job = visible_job(user, job_id)
    if job is None:
        raise click.ClickException(f"No job {job_id} that {email} may see.")
    return user, job


@jobs_cli.command("show")
@click.argument("job_id", type=int)
@click.option("--email", required=True)
def show(job_id: int, email: str):
    """A portal job as its page shows it: state and reason as last read from Slurm, efficiency
    once it has ended, and the end of its output and error files."""
    _user_, job = _visible_job(job_id, email)
    click.echo(f"job {job.slurm_job_id} (portal job {job.id}) {job.job_name}: template {job.template},"
               f" project {job.project.code}, partition {job.partition.label}, runs as {job.unix_user}")
    seen = f"as of {job.state_seen_at:%Y-%m-%d %H:%M:%S} UTC" if job.state_seen_at else "not read from Slurm yet"
    click.echo(f"state: {job.last_state}{f' ({job.last_reason})' if job.last_reason else ''}, {seen}")
    if job.efficiency is not None:
        for label, text in efficiency_facts(job.efficiency.value()):
            click.echo(f"{label}: {text}")
    else:
        click.echo("efficiency: not read yet (shown once the job has ended and Slurm's accounting has it)")
    for tail in output_tails(job):
        click.echo(f"--- {tail.file} ({tail.stream}) ---")
        click.echo(tail.text, nl=not tail.text.endswith("\n"))


@jobs_cli.command("resubmit")
@click.argument("job_id", type=int)
@click.option("--email", required=True, help="The portal user who submits the new job.")
@click.option("--set", "settings", multiple=True, metavar="NAME=VALUE", help="A parameter to change.")
@click.option("--job-name")
@click.option("--dry-run", is_flag=True, help="Check and print the script; submit nothing.")
def resubmit(job_id: int, email: str, settings, job_name, dry_run: bool):
    """Submit a job again (same template, project, partition, parameters) with some values changed."""
    user, source = _visible_job(job_id, email)
    plan = plan_resubmission(user, source, _settings(settings), job_name)
    if plan is None:
        raise click.ClickException(f"The template {source.template!r} of job {job_id} no longer exists.")
    _report(plan)
    if dry_run:
        if plan.script:
            click.echo(plan.script, nl=False)
        if not plan.ok:
            raise click.ClickException("The request does not pass the checks above.")
        return
    try:
        job = resubmit_job(plan, user, source)
    except (JobError, SchedulerError) as exc:
        raise click.ClickException(f"Not submitted: {exc}") from None
    commit()
    click.echo(f"Submitted job {job.slurm_job_id} (portal job {job.id}) like job {source.slurm_job_id}, in {job.workdir}")
