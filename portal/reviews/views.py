"""The reviewer's pages: assignments, conflict declaration, scoring."""
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.clock import utcnow
from portal.identity.access import require_role
from portal.identity.models import Role
from portal.problems import Problems
from portal.reviews import listing
from portal.reviews.forms import ConflictForm, ReviewForm
from portal.reviews.models import CRITERIA
from portal.reviews.operations import accessible_assignment, declare_conflict, submit_review
from portal.web.input import posted
from portal.web.listing import csv_response, page_request, paginate

bp = Blueprint("reviews", __name__, url_prefix="/reviews")


def _assignment(assignment_id: int):
    # 404 for everyone but the assigned reviewer without a conflict: not even staff act as reviewers.
    return accessible_assignment(current_user, assignment_id) or abort(404)


def _page(assignment, errors=None, status=200):
    form = ReviewForm(obj=assignment) if assignment.submitted_at else ReviewForm()
    if assignment.submitted_at:
        for criterion in CRITERIA:
            getattr(form, f"score_{criterion}").data = str(getattr(assignment, f"score_{criterion}"))
    return render_template("reviews/detail.html", assignment=assignment, proposal=assignment.proposal,
                           conflict_form=ConflictForm(), review_form=form, errors=errors or {}), status


@bp.route("/")
@require_role(Role.REVIEWER)
def index():
    """The reviewer's assignments (without declared conflicts), a page at a time, filtered."""
    page = page_request(listing.FILTERS, listing.SORTS)
    assignments = paginate(listing.ordered(listing.filtered(current_user, page), page), page)
    return render_template("reviews/index.html", assignments=assignments, page=page,
                           choices=listing.filter_choices(current_user))


@bp.route("/export.csv")
@require_role(Role.REVIEWER)
def export():
    """The assignments the list's filter shows, as CSV."""
    page = page_request(listing.FILTERS, listing.SORTS)
    return csv_response(f"reviews-{utcnow().date().isoformat()}.csv", [_(h) for h in listing.CSV_HEADER],
                        listing.ordered(listing.filtered(current_user, page), page), listing.csv_row)


@bp.route("/<int:assignment_id>")
def detail(assignment_id: int):
    return _page(_assignment(assignment_id))


@bp.route("/<int:assignment_id>/conflict", methods=["POST"])
def conflict(assignment_id: int):
    assignment = _assignment(assignment_id)
    form = posted(ConflictForm)
    try:
        declare_conflict(assignment, form.conflict.data == "conflict", form.note.data or "")
    except Problems as exc:
        return _page(assignment, exc.errors, 409)
    if assignment.has_conflict:
        flash(_("Thank you. You no longer have access to this proposal."), "info")
        return redirect(url_for("reviews.index"))
    flash(_("No conflict declared: you may now review."), "info")
    return redirect(url_for("reviews.detail", assignment_id=assignment.id))


@bp.route("/<int:assignment_id>/score", methods=["POST"])
def score(assignment_id: int):
    assignment = _assignment(assignment_id)
    form = posted(ReviewForm)
    try:
        submit_review(assignment, {c: getattr(form, f"score_{c}").data for c in CRITERIA},
                      form.comment_applicant.data or "", form.comment_committee.data or "")
    except Problems as exc:
        return _page(assignment, exc.errors, 409 if exc.conflict else 422)
    flash(_("Review submitted."), "info")
    return redirect(url_for("reviews.detail", assignment_id=assignment.id))
