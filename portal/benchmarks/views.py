"""Pages: acceptance runs started from the portal, and references derived from history."""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from portal.benchmarks import listing
from portal.benchmarks.acceptance import AcceptanceError, acceptance_runs, benchmark_choices, latest_finished_by_partition, start_acceptance_run
from portal.benchmarks.charts import history_chart
from portal.benchmarks.forms import AdoptForm, DeriveForm, StartRunForm, UploadForm
from portal.benchmarks.models import AcceptanceRun, BenchmarkReference, BenchmarkRun
from portal.benchmarks.operations import BenchmarkError, ingest_result, latest_runs, metric_history
from portal.benchmarks.references import ReferenceProblem, adopt_reference, adopted_references, history_runs, history_systems, method_text, propose_reference, references_of, selected_runs
from portal.benchmarks.upload import read_result_upload
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.access import staff_required
from portal.sites.models import Partition
from portal.slurm.errors import SchedulerError
from portal.transactions import roll_back
from portal.web.listing import csv_response, page_request, paginate

bp = Blueprint("benchmarks", __name__, url_prefix="/benchmarks")


@bp.route("/")
def index():
    """The latest run of each system and partition, then every run a page at a time, filtered."""
    page = page_request(listing.FILTERS, listing.SORTS)
    rows = paginate(listing.ordered(listing.filtered(page), page), page)
    return render_template("benchmarks/index.html", runs=listing.with_metrics(latest_runs()), rows=rows, page=page,
                           choices=listing.filter_choices(), form=UploadForm())


@bp.route("/export.csv")
def export():
    """The runs the list's filter shows, as CSV."""
    page = page_request(listing.FILTERS, listing.SORTS)
    return csv_response(f"benchmark-runs-{utcnow().date().isoformat()}.csv", [_(h) for h in listing.CSV_HEADER],
                        listing.ordered(listing.filtered(page), page), listing.csv_row)


@bp.route("/runs/<int:run_id>")
def run(run_id: int):
    return render_template("benchmarks/run.html", run=db.get_or_404(BenchmarkRun, run_id))


@bp.route("/history")
def history():
    system, partition, key = (request.args.get(name, "") for name in ("system", "partition", "key"))
    if not (system and partition and key):
        abort(400, _("Choose a system, a partition and a metric."))
    points = metric_history(system, partition, key)
    return render_template("benchmarks/history.html", system=system, partition=partition, key=key,
                           points=points, chart=history_chart(key, points))


@bp.route("/upload", methods=["POST"])
@staff_required
def upload():
    form = UploadForm()
    if not form.validate_on_submit():
        flash(_("Choose a result file (JSON) to upload."), "error")
        return redirect(url_for("benchmarks.index"))
    try:
        stored = ingest_result(read_result_upload(form.result.data.read()), current_user)
    except BenchmarkError as exc:
        flash(_("The file was not stored: %(problems)s", problems="; ".join(exc.problems[:5])), "error")
        return redirect(url_for("benchmarks.index"))
    flash(_("Stored run %(id)d: %(verdict)s.", id=stored.id, verdict=stored.verdict.value), "info")
    return redirect(url_for("benchmarks.run", run_id=stored.id))


def _start_form() -> StartRunForm:
    form = StartRunForm()
    partitions = db.session.scalars(select(Partition).where(Partition.state == "UP")).all()
    form.partitions.choices = [SelectChoice(p.id, p.label) for p in sorted(partitions, key=lambda p: p.label)]
    form.benchmarks.choices = [SelectChoice(b, b) for b in benchmark_choices()]
    return form


@bp.route("/acceptance", methods=["GET"])
def acceptance():
    """Acceptance runs started here, newest first; staff start new ones."""
    form = _start_form() if current_user.is_staff else None
    return render_template("benchmarks/acceptance.html", runs=acceptance_runs(), form=form)


@bp.route("/acceptance", methods=["POST"])
@staff_required
def start_acceptance():
    form = _start_form()
    if not form.validate_on_submit():
        problems = "; ".join(f"{form[name].label.text}: {' '.join(map(str, errors))}"
                             for name, errors in form.errors.items())
        flash(_("The run was not started: %(problems)s", problems=problems), "error")
        return render_template("benchmarks/acceptance.html", runs=acceptance_runs(), form=form), 422
    started = []
    for partition_id in form.partitions.data:
        partition = db.session.get(Partition, partition_id)
        try:
            run = start_acceptance_run(current_user, partition, form.benchmarks.data, form.size.data,
                                       ntasks=form.ntasks.data, time_minutes=form.time_minutes.data)
        except (AcceptanceError, SchedulerError) as exc:
            roll_back()
            flash(_("%(partition)s: not started: %(error)s", partition=partition.label, error=exc), "error")
            return redirect(url_for("benchmarks.acceptance"))
        started.append(run)
    flash(_("Started %(runs)s.", runs=", ".join(_("run %(id)d (Slurm job %(job)s)", id=r.id, job=r.slurm_job_id)
                                                 for r in started)), "info")
    return redirect(url_for("benchmarks.acceptance_run", acceptance_id=started[0].id))


@bp.route("/acceptance/<int:acceptance_id>")
def acceptance_run(acceptance_id: int):
    return render_template("benchmarks/acceptance_run.html", run=db.get_or_404(AcceptanceRun, acceptance_id))


@bp.app_template_global()
def acceptance_flags() -> dict[int, AcceptanceRun]:
    """Partitions whose latest acceptance run failed: partition id -> that run (systems page, ranking)."""
    return {pid: run for pid, run in latest_finished_by_partition().items() if run.failed}


# ---- references from history -----------------------------------------------------------------
def _band(form) -> tuple[float, float]:
    pct = form.percentile.data if form.percentile.data is not None else Decimal(5)
    slack = form.slack.data if form.slack.data is not None else Decimal(5)
    return float(pct), float(slack) / 100


@bp.route("/references")
@staff_required
def references():
    """Adopted references; the runs of one system and partition to derive a new one from, and the proposal."""
    system, partition = request.args.get("system", ""), request.args.get("partition", "")
    runs = history_runs(system, partition) if system and partition else []
    form = DeriveForm(request.args)
    form.runs.choices = [SelectChoice(r.id, str(r.id)) for r in runs]
    proposal, problem, adopt = None, None, None
    if "runs" in request.args:
        if form.validate():
            pct, slack = _band(form)
            try:
                proposal = propose_reference(selected_runs(form.runs.data), pct, slack)
            except ReferenceProblem as exc:
                problem = str(exc)
            else:
                adopt = AdoptForm(formdata=None, runs=form.runs.data, percentile=Decimal(str(pct)),
                                  slack=Decimal(str(slack * 100)))
                adopt.method = method_text(pct, slack)
        else:
            problem = "; ".join(" ".join(map(str, e)) for e in form.errors.values())
    return render_template("benchmarks/references.html", system=system, partition=partition, runs=runs, form=form,
                           proposal=proposal, problem=problem, adopt=adopt, systems=history_systems(),
                           adopted=adopted_references(),
                           versions=references_of(system, partition) if system and partition else [])


@bp.route("/references", methods=["POST"])
@staff_required
def adopt():
    form = AdoptForm()
    if not form.validate_on_submit():
        abort(400, _("Adopt a proposal from the references page."))
    pct, slack = _band(form)
    try:
        reference = adopt_reference(selected_runs(form.runs.data), current_user, pct, slack, form.note.data or "")
    except ReferenceProblem as exc:
        flash(str(exc), "error")
        return redirect(url_for("benchmarks.references"))
    flash(_("Adopted version %(v)d of the reference for %(key)s: new runs are judged against it.",
            v=reference.version, key=reference.key), "info")
    return redirect(url_for("benchmarks.reference", reference_id=reference.id))


@bp.route("/references/<int:reference_id>")
@staff_required
def reference(reference_id: int):
    return render_template("benchmarks/reference.html", reference=db.get_or_404(BenchmarkReference, reference_id))
