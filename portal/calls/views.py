from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select
from wtforms.fields.choices import SelectChoice

from portal.calls import listing
from portal.calls.forms import CallForm
from portal.calls.models import AccessMode, ReviewWorkflow
from portal.calls.operations import access_modes, create_call, visible_call
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.access import staff_required
from portal.problems import Problems
from portal.reviews.operations import committee_ranking
from portal.sites.models import Partition
from portal.web.listing import csv_response, page_request, paginate

bp = Blueprint("calls", __name__, url_prefix="/calls")


@bp.route("/")
def index():
    """Calls the signed-in person may see, a page at a time, searchable and filterable."""
    page, now = page_request(listing.FILTERS, listing.SORTS), utcnow()
    calls = paginate(listing.ordered(listing.filtered(current_user, page, now), page), page)
    return render_template("calls/index.html", calls=calls, page=page, now=now, choices=listing.filter_choices())


@bp.route("/export.csv")
def export():
    """What the list's filter shows, as CSV."""
    page, now = page_request(listing.FILTERS, listing.SORTS), utcnow()
    return csv_response(f"calls-{now.date().isoformat()}.csv", [_(h) for h in listing.CSV_HEADER],
                        listing.ordered(listing.filtered(current_user, page, now), page), listing.csv_row_at(now))


@bp.route("/<int:call_id>")
def detail(call_id: int):
    call = visible_call(current_user, call_id) or abort(404)
    return render_template("calls/detail.html", call=call, now=utcnow())


@bp.route("/new", methods=["GET", "POST"])
@staff_required
def new():
    form = CallForm()
    form.access_mode.choices = [SelectChoice(m.id, m.name) for m in access_modes()]
    partitions = list(db.session.scalars(select(Partition).order_by(Partition.site_id, Partition.name)))
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        offers = {p.id: (request.form.get(f"offer-{p.id}"), request.form.get(f"max-{p.id}")) for p in partitions}
        try:
            call = create_call(
                code=form.code.data, title=form.title.data, description=form.description.data,
                access_mode=db.session.get(AccessMode, form.access_mode.data) if form.access_mode.data else None,
                review_workflow=ReviewWorkflow(form.review_workflow.data) if form.review_workflow.data else None,
                tracks=form.tracks.data or [], eligible_countries=(form.eligible_countries.data or "").split(","),
                opens_at=form.opens_at.data, closes_at=form.closes_at.data,
                allocation_start=form.allocation_start.data, allocation_end=form.allocation_end.data,
                min_reviewers=form.min_reviewers.data if form.min_reviewers.data is not None else 2, offers=offers)
        except Problems as exc:
            errors = exc.errors
        else:
            flash(_("Call %(code)s created.", code=call.code), "info")
            return redirect(url_for("calls.detail", call_id=call.id))
    elif request.method == "POST":
        errors = {name: "; ".join(str(m) for m in messages) for name, messages in form.errors.items()}
    status = 422 if errors else 200
    return render_template("calls/new.html", form=form, partitions=partitions, errors=errors), status


@bp.route("/<int:call_id>/committee")
@staff_required
def committee(call_id: int):
    call = visible_call(current_user, call_id) or abort(404)
    rows, demand = committee_ranking(call)
    return render_template("calls/committee.html", call=call, rows=rows, demand=demand)
