"""Staff steps on the proposal page: admissibility, technical assessment, reviewers, decision."""
from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from portal.extensions import db
from portal.identity.access import staff_required
from portal.identity.models import User
from portal.proposals import decisions
from portal.proposals.blueprint import _after, bp
from portal.proposals.forms import ActionForm, AdmissibilityForm, AssignForm, AwardForm, RejectForm, TechnicalForm
from portal.proposals.models import Proposal
from portal.reviews.operations import assign_reviewer, reviewers_available, reviews_of


def staff_context(proposal: Proposal) -> dict:
    assign = AssignForm()
    assign.reviewer.choices = [SelectChoice(u.id, u.name) for u in reviewers_available()]
    return {"admissibility": AdmissibilityForm(), "technical": TechnicalForm(), "assign": assign,
            "award": AwardForm(start_date=proposal.call.allocation_start, end_date=proposal.call.allocation_end),
            "reject": RejectForm(), "action": ActionForm(), "assignments": reviews_of(proposal)}


def _load(proposal_id: int) -> Proposal:
    return db.get_or_404(Proposal, proposal_id)


def _partition_values(prefix: str) -> dict[str, str]:
    return {key[len(prefix):]: value for key, value in request.form.items() if key.startswith(prefix) and value}


@bp.route("/<int:proposal_id>/admissibility", methods=["POST"])
@staff_required
def admissibility(proposal_id: int):
    proposal, form = _load(proposal_id), AdmissibilityForm()
    form.validate()
    return _after(proposal, lambda: decisions.check_admissibility(proposal, current_user, form.admissible.data == "yes",
                                                                  form.comment.data or ""),
                  _("Admissibility recorded."))


@bp.route("/<int:proposal_id>/technical", methods=["POST"])
@staff_required
def technical(proposal_id: int):
    proposal, form = _load(proposal_id), TechnicalForm()
    form.validate()
    return _after(proposal, lambda: decisions.assess_technically(
        proposal, current_user, form.feasible.data == "yes", form.comment.data or "",
        _partition_values("recommend-")), _("Technical assessment recorded."))


@bp.route("/<int:proposal_id>/reviewers", methods=["POST"])
@staff_required
def assign(proposal_id: int):
    proposal = _load(proposal_id)
    raw = request.form.get("reviewer", "")
    reviewer = db.session.get(User, int(raw)) if raw.isdigit() and len(raw) < 10 else None
    return _after(proposal, lambda: assign_reviewer(proposal, current_user, reviewer), _("Reviewer assigned."))


@bp.route("/<int:proposal_id>/release", methods=["POST"])
@staff_required
def release(proposal_id: int):
    proposal = _load(proposal_id)
    return _after(proposal, lambda: decisions.release_reviews(proposal, current_user),
                  _("Reviews released; the right-to-reply window is open."))


@bp.route("/<int:proposal_id>/award", methods=["POST"])
@staff_required
def award(proposal_id: int):
    proposal, form = _load(proposal_id), AwardForm()
    form.validate()
    return _after(proposal, lambda: decisions.award_proposal(
        proposal, current_user, start_date=form.start_date.data, end_date=form.end_date.data,
        hours=_partition_values("award-"), confirm_over_award=form.confirm_over_award.data),
        _("Awarded: the grant is created."))


@bp.route("/<int:proposal_id>/reject", methods=["POST"])
@staff_required
def reject(proposal_id: int):
    proposal, form = _load(proposal_id), RejectForm()
    form.validate()
    return _after(proposal, lambda: decisions.reject_proposal(proposal, current_user, form.feedback.data or ""),
                  _("Rejected; the applicants were told."))
