"""The Jobs pages: pick a template, fill and preview it, submit, follow, cancel."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.clock import utcnow
from portal.extensions import db
from portal.identity.access import staff_required
from portal.jobs import listing
from portal.jobs.efficiency import efficiency_facts
from portal.jobs.forms import PREFIX, job_form
from portal.jobs.operations import (
    JobError,
    cancel_job,
    hours_text,
    job_template,
    job_templates,
    limits_text,
    offered_partitions,
    plan_job,
    resubmission_values,
    resubmit_job,
    submit_job,
    submittable_projects,
    visible_job,
)
from portal.jobs.output import output_tails
from portal.sites.models import Partition
from portal.slurm.errors import SchedulerError
from portal.web.listing import csv_response, page_request, paginate

bp = Blueprint("jobs", __name__, url_prefix="/jobs")


@bp.route("/")
def index():
    # States come from the database, kept fresh by the reconciler service: a page view never
    # waits for Slurm.
    page = page_request(listing.FILTERS, listing.SORTS)
    rows = paginate(listing.ordered(listing.filtered(current_user, page), page), page)
    templates, _problems = job_templates()
    return render_template("jobs/index.html", rows=rows, page=page, jobs=rows.items,
                           choices=listing.filter_choices(current_user),
                           templates=sorted(templates.values(), key=lambda t: t.title), problem=None, form=FlaskForm())


@bp.route("/export.csv")
def export():
    """Every job the list's filter shows, as CSV (states as last stored, Slurm is not asked)."""
    page = page_request(listing.FILTERS, listing.SORTS)
    query = listing.ordered(listing.filtered(current_user, page), page)
    return csv_response(f"jobs-{utcnow().date().isoformat()}.csv", [_(h) for h in listing.CSV_HEADER], query,
                        listing.csv_row)


@bp.route("/new/<template>", methods=["GET", "POST"])
def new(template: str):
    spec = job_template(template) or abort(404)
    source = _source_job(spec)  # "submit again with changes": the form starts from that job
    projects, partitions = submittable_projects(current_user), offered_partitions(spec)
    form = job_form(spec, projects, partitions, **(_prefilled(source, spec) if source and request.method == "GET" else {}))
    plan, general = None, []
    chosen = db.session.get(Partition, form.partition.data) if form.partition.data else None
    chosen = chosen if chosen in partitions else (partitions[0] if partitions else None)
    if request.method == "POST" and form.validate_on_submit():
        project = next((p for p in projects if p.id == form.project.data), None)
        if project is None or chosen is None:
            general.append(_("Choose one of your projects and a partition."))
        else:
            plan = plan_job(current_user, spec, project, chosen, form.raw_values(), form.job_name.data)
            general = form.attach_errors(plan.errors)
            if plan.ok and request.form.get("action") == "submit":
                try:
                    job = resubmit_job(plan, current_user, source) if source else submit_job(plan, current_user)
                except (JobError, SchedulerError) as exc:
                    general.append(_("Slurm did not accept the job: %(error)s", error=str(exc)))
                else:
                    flash(_("Submitted job %(id)s.", id=job.slurm_job_id), "info")
                    return redirect(url_for("jobs.detail", job_id=job.id))
    elif request.method == "POST":
        general.append(_("Choose one of your projects and a partition."))
    return render_template("jobs/new.html", template=spec, form=form, plan=plan, general=general,
                           partitions=partitions, limits=limits_text(chosen) if chosen else {},
                           hours_text=hours_text)


@bp.route("/<int:job_id>")
def detail(job_id: int):
    job = visible_job(current_user, job_id) or abort(404)
    efficiency = efficiency_facts(job.efficiency.value()) if job.efficiency else None
    return render_template("jobs/detail.html", job=job, problem=None, tails=output_tails(job), form=FlaskForm(),
                           efficiency=efficiency)


def _source_job(spec):
    """The job named by ``?from=ID``: one the user may see, made from this template (else 404)."""
    if "from" not in request.args:
        return None
    job_id = request.args.get("from", type=int)
    job = visible_job(current_user, job_id) if job_id else None
    if job is None or job.template != spec.name:
        abort(404)
    return job


def _prefilled(job, spec) -> dict:
    """Form data: the job's project, partition, name and parameters."""
    values = {PREFIX + name: value if spec.params[name].type == "bool" else "" if value is None else str(value)
              for name, value in resubmission_values(job, spec).items()}
    return {"project": job.project_id, "partition": job.partition_id, "job_name": job.job_name, **values}


@bp.route("/<int:job_id>/cancel", methods=["POST"])
def cancel(job_id: int):
    job = visible_job(current_user, job_id) or abort(404)
    try:
        cancel_job(job, current_user)  # someone who may not: CancelNotAllowed, a 403 page
    except SchedulerError as exc:
        flash(_("Slurm did not cancel the job: %(error)s", error=str(exc)), "error")
    else:
        flash(_("Cancelled job %(id)s.", id=job.slurm_job_id), "info")
    return redirect(url_for("jobs.detail", job_id=job.id))


@bp.route("/templates/problems")
@staff_required
def problems():
    templates, found = job_templates()
    return render_template("jobs/problems.html", problems=found, templates=templates)
