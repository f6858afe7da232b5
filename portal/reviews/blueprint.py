"""The reviewer's pages: assignments, conflict declaration, scoring."""
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.calls.errors import Problems
from portal.identity.access import require_role
from portal.identity.models import Role
from portal.reviews.forms import ConflictForm, ReviewForm
from portal.reviews.models import CRITERIA
from portal.reviews.operations import accessible_assignment, assignments_for, declare_conflict, submit_review

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
    return render_template("reviews/index.html", assignments=assignments_for(current_user))


@bp.route("/<int:assignment_id>")
def detail(assignment_id: int):
    return _page(_assignment(assignment_id))


@bp.route("/<int:assignment_id>/conflict", methods=["POST"])
def conflict(assignment_id: int):
    assignment = _assignment(assignment_id)
    form = ConflictForm()
    form.validate()
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
    form = ReviewForm()
    form.validate()
    try:
        submit_review(assignment, {c: getattr(form, f"score_{c}").data for c in CRITERIA},
                      form.comment_applicant.data or "", form.comment_committee.data or "")
    except Problems as exc:
        return _page(assignment, exc.errors, 409 if exc.conflict else 422)
    flash(_("Review submitted."), "info")
    return redirect(url_for("reviews.detail", assignment_id=assignment.id))
