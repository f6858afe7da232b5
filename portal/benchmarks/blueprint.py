from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.benchmarks import listing
from portal.benchmarks.charts import history_chart
from portal.benchmarks.forms import UploadForm
from portal.benchmarks.models import BenchmarkRun
from portal.benchmarks.operations import BenchmarkError, ingest_result, latest_runs, metric_history
from portal.benchmarks.upload import read_result_upload
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.access import staff_required
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


from portal.benchmarks import views  # noqa: E402, F401  (acceptance runs and references: routes on bp)
