"""Grant pages: what was awarded, used and left, for the project's people and for staff."""
from __future__ import annotations

import io

from flask import Blueprint, abort, flash, redirect, render_template, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, DecimalField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, NumberRange, Optional

from portal.clock import utcnow
from portal.extensions import db
from portal.grants import listing
from portal.grants import operations as ops
from portal.grants.charts import burn_down_chart
from portal.grants.models import Grant, GrantRequest
from portal.grants.operations import GrantConflict, GrantError
from portal.grants.reconcile import is_pending
from portal.grants.requests import ask_for_change, can_manage, decide_request, final_report_of, open_requests, report_due, reports_overview, requests_of, upload_final_report
from portal.grants.summary import forecast, jobs_of, resource_totals, usage_by_member
from portal.identity.access import staff_required
from portal.sites.models import Partition, ResourceKind
from portal.transactions import roll_back
from portal.web.listing import csv_response, page_request, paginate

bp = Blueprint("grants", __name__, url_prefix="/grants")


class ChangeRequestForm(FlaskForm):
    partition_id = SelectField(_l("Partition"), coerce=int, validators=[Optional()])
    hours = DecimalField(_l("Extra hours"), places=1, validators=[Optional(), NumberRange(min=0, max=1e9)])
    new_end_date = DateField(_l("New end date"), validators=[Optional()])
    reason = TextAreaField(_l("Reason"), validators=[DataRequired(message=_l("Say why the grant needs the change."))])


class DecisionForm(FlaskForm):
    decision = SelectField(_l("Decision"), choices=[SelectChoice("approve", _l("Approve")),
                                                    SelectChoice("refuse", _l("Refuse"))])


class ReportForm(FlaskForm):
    report = FileField(_l("Final report"), validators=[FileRequired(message=_l("Choose a file to upload."))])


def visible_grant(grant_id: int) -> Grant:
    """The grant if the signed-in user may see it; 404 otherwise."""
    return ops.visible_grant(grant_id, current_user) or abort(404)


def _site_ids(grant: Grant) -> set[int]:
    return {a.partition.site_id for a in grant.allocations}


@bp.route("/")
def index():
    """Grants the signed-in person may see: a page at a time, searchable, filterable, totalled."""
    page = page_request(listing.FILTERS, listing.SORTS)
    query = listing.filtered(current_user, page)
    count, totals = listing.count_and_totals(query, current_user, page)
    rows = paginate(listing.ordered(query, page), page, scalars=False, total=count)
    return render_template("grants/index.html", rows=rows, page=page, totals=totals,
                           choices=listing.filter_choices(), pools_of=listing.pools_of,
                           requests=open_requests() if current_user.is_staff else [])


@bp.route("/export.csv")
def export():
    """Every grant the list's filter shows, as CSV (the page's totals are the columns' sums)."""
    page = page_request(listing.FILTERS, listing.SORTS)
    query = listing.ordered(listing.filtered(current_user, page), page)

    def row(item):
        grant, off_pace, pi_name = item
        cpu, gpu = listing.hours_of(grant, ResourceKind.CPU), listing.hours_of(grant, ResourceKind.GPU)
        return (grant.project.code, grant.title, pi_name or "", grant.status.value, grant.start_date,
                grant.end_date, round(cpu[0], 2), round(cpu[1], 2), round(gpu[0], 2), round(gpu[1], 2),
                round(off_pace, 1))

    header = (_("Project"), _("Grant"), _("PI"), _("Status"), _("Start"), _("End"), _("Core-hours awarded"),
              _("Core-hours used"), _("GPU-hours awarded"), _("GPU-hours used"), _("Off pace (%)"))
    return csv_response(f"grants-{utcnow().date().isoformat()}.csv", header, query, row, scalars=False)


def _change_form(grant: Grant) -> ChangeRequestForm:
    form = ChangeRequestForm()
    form.partition_id.choices = [SelectChoice(a.partition_id, a.partition.label) for a in grant.allocations]
    return form


@bp.route("/<int:grant_id>")
def detail(grant_id: int):
    return _render_detail(visible_grant(grant_id))


def _render_detail(grant: Grant, change_form: ChangeRequestForm | None = None, report_form: ReportForm | None = None,
                   status: int = 200):
    today = utcnow().date()
    totals = resource_totals(grant)
    panels = [(total, forecast(grant, total, today), burn_down_chart(grant, total, today)) for total in totals]
    return render_template(
        "grants/detail.html", grant=grant, panels=panels, members=usage_by_member(grant), jobs=jobs_of(grant),
        pending=is_pending(_site_ids(grant)), may_manage=can_manage(grant, current_user),
        change_form=change_form or _change_form(grant), report_form=report_form or ReportForm(),
        decision_form=DecisionForm(), requests=requests_of(grant), report=final_report_of(grant),
        report_due=report_due(grant), today=today), status


@bp.route("/<int:grant_id>/requests", methods=["POST"])
def request_change(grant_id: int):
    grant = visible_grant(grant_id)
    if not can_manage(grant, current_user):
        abort(403)
    form = _change_form(grant)
    if not form.validate_on_submit():
        return _render_detail(grant, change_form=form, status=422)
    partition = db.session.get(Partition, form.partition_id.data) if form.partition_id.data else None
    try:
        ask_for_change(grant, current_user, reason=form.reason.data, hours=float(form.hours.data or 0),
                       partition=partition, new_end_date=form.new_end_date.data)
    except GrantError as exc:
        form.reason.errors = [*form.reason.errors, str(exc)]
        return _render_detail(grant, change_form=form, status=422)
    flash(_("Your request was sent to the staff."), "info")
    return redirect(url_for("grants.detail", grant_id=grant.id))


@bp.route("/requests/<int:request_id>/decide", methods=["POST"])
@staff_required
def decide(request_id: int):
    change = db.get_or_404(GrantRequest, request_id)
    form = DecisionForm()
    if not form.validate_on_submit():
        flash(_("Choose approve or refuse."), "error")
        return redirect(url_for("grants.detail", grant_id=change.grant_id))
    try:
        decide_request(change, current_user, approve=form.decision.data == "approve")
    except GrantError as exc:
        # Not a redirect: a 3xx would commit. The page shows what is stored, so roll back the
        # half-applied decision first (the request's handler would roll it back anyway).
        roll_back()
        flash(str(exc), "error")
        return _render_detail(change.grant, status=409 if isinstance(exc, GrantConflict) else 422)
    flash(_("Request %(id)d: %(status)s.", id=change.id, status=_(change.status.value)), "info")
    return redirect(url_for("grants.detail", grant_id=change.grant_id))


@bp.route("/<int:grant_id>/report", methods=["POST"])
def upload_report(grant_id: int):
    grant = visible_grant(grant_id)
    if not can_manage(grant, current_user):
        abort(403)
    form = ReportForm()
    if not form.validate_on_submit():
        return _render_detail(grant, report_form=form, status=422)
    upload = form.report.data
    try:
        upload_final_report(grant, current_user, filename=upload.filename, content_type=upload.mimetype,
                            content=upload.read())
    except GrantError as exc:
        form.report.errors = [str(exc)]
        return _render_detail(grant, report_form=form, status=422)
    flash(_("Final report stored."), "info")
    return redirect(url_for("grants.detail", grant_id=grant.id))


@bp.route("/<int:grant_id>/report")
def download_report(grant_id: int):
    grant = visible_grant(grant_id)
    report = final_report_of(grant)
    if report is None:
        abort(404)
    # Served as an attachment, never inline: an uploaded HTML file must not run in the portal's origin.
    return send_file(io.BytesIO(report.content), mimetype="application/octet-stream", as_attachment=True,
                     download_name=report.filename)


@bp.route("/reports")
@staff_required
def reports():
    return render_template("grants/reports.html", rows=reports_overview(), today=utcnow().date())
