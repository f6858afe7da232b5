"""Proposals over the API: the applicant's steps and the staff steps, with the web pages' rules."""
from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from portal.api.paging import PageArgs, list_endpoint
from portal.calls.api import DATABASE_ID
from portal.calls.operations import visible_call
from portal.extensions import db
from portal.identity.access import require_role, staff_required
from portal.identity.models import Role, User
from portal.projects.models import ProjectRole
from portal.proposals import decisions, listing
from portal.proposals import operations as ops
from portal.proposals.models import EvidenceFile, Proposal
from portal.reviews.models import ReviewAssignment
from portal.reviews.operations import assign_reviewer, submitted_reviews
from portal.web.listing import paginate

blp = Blueprint("api_proposals", __name__, description="Proposals: drafting, submission, assessment, decision")


class RequestSchema(Schema):
    partition_id = fields.Int()
    partition = fields.Function(lambda r: r.partition.label)
    resource_kind = fields.Function(lambda r: r.partition.resource_kind.value)
    requested_hours = fields.Float()
    recommended_hours = fields.Float(allow_none=True)


class ApplicantReviewSchema(Schema):
    """What applicants see of a review: scores and the comments for them; never who wrote it."""

    scores = fields.Dict()
    comment_applicant = fields.Str()


class StaffReviewSchema(ApplicantReviewSchema):
    reviewer = fields.Function(lambda r: r.reviewer.name)
    comment_committee = fields.Str()


class InvitationSchema(Schema):
    id = fields.Int()
    email = fields.Str()
    role = fields.Function(lambda i: i.role.value)
    accepted = fields.Function(lambda i: i.accepted_at is not None)


class ProposalTextSchema(Schema):
    """The text an applicant writes (see portal.proposals.operations.TEXT_FIELDS)."""

    title = fields.Str()
    abstract = fields.Str()
    field_of_science = fields.Str()
    track = fields.Str()
    justification = fields.Str()
    code_description = fields.Str()
    scaling_evidence = fields.Str()


class ProposalSchema(ProposalTextSchema):
    id = fields.Int()
    call_id = fields.Int()
    pi = fields.Function(lambda p: p.pi.name)
    state = fields.Function(lambda p: p.state.value)
    evidence_file = fields.Function(lambda p: p.evidence.filename if p.evidence else None)
    storage_tib = fields.Float()
    submitted_at = fields.DateTime(allow_none=True)
    technical_feasible = fields.Bool(allow_none=True)
    technical_comment = fields.Str()
    reply_deadline = fields.DateTime(allow_none=True)
    reply = fields.Str()
    decision_feedback = fields.Str()
    project_id = fields.Int(allow_none=True)
    grant_id = fields.Int(allow_none=True)
    requests = fields.List(fields.Nested(RequestSchema))
    invitations = fields.List(fields.Nested(InvitationSchema))
    reviews = fields.Method("_reviews")

    def _reviews(self, proposal):
        # A list page reads every proposal's submitted reviews in one query (``_listed_reviews``).
        reviews = getattr(proposal, "_listed_reviews", None)
        if current_user.is_staff:
            return StaffReviewSchema(many=True).dump(submitted_reviews(proposal) if reviews is None else reviews)
        released = proposal.reply_deadline is not None
        if not released:
            return []
        return ApplicantReviewSchema(many=True).dump(submitted_reviews(proposal) if reviews is None else reviews)


class ProposalInput(ProposalTextSchema):
    storage_tib = fields.Raw(metadata={"description": "number of TiB"})
    requests = fields.Dict(keys=fields.Str(), values=fields.Raw(), metadata={
        "description": "partition id -> hours (core-hours on CPU partitions, GPU-hours on GPU partitions)"})


class NewProposalInput(ProposalInput):
    call_id = fields.Int(required=True, validate=DATABASE_ID)


class EventSchema(Schema):
    at = fields.DateTime()
    actor = fields.Function(lambda e: e.actor.name if e.actor else None)
    action = fields.Str()
    changes = fields.Dict()


class InviteInput(Schema):
    email = fields.Str(load_default="")
    role = fields.Str(load_default="member", metadata={"enum": ["co_pi", "member"]})


class TokenInput(Schema):
    token = fields.Str(load_default="", metadata={"description": "the token from the invitation link"})


class TextInput(Schema):
    # Not required here: the operation says what is missing, after the access check.
    text = fields.Str(load_default="")


class VerdictInput(Schema):
    yes = fields.Bool(required=True, metadata={"description": "admissible / feasible"})
    comment = fields.Str(load_default="")
    recommended_hours = fields.Dict(keys=fields.Str(), values=fields.Raw(), load_default=dict)


class ReviewerInput(Schema):
    reviewer_id = fields.Int(required=True, validate=DATABASE_ID)


class AwardInput(Schema):
    start_date = fields.Date(required=True)
    end_date = fields.Date(required=True)
    hours = fields.Dict(keys=fields.Str(), values=fields.Raw(), required=True)
    confirm_over_award = fields.Bool(load_default=False, metadata={
        "description": "true: award even beyond what the call offers on a partition (recorded as an over-award)"})


def _visible(proposal_id: int) -> Proposal:
    return ops.visible_proposal(current_user, proposal_id) or abort(404)


def _applicant(proposal_id: int) -> Proposal:
    proposal = _visible(proposal_id)
    if not proposal.is_applicant(current_user):
        abort(403, message=_("Only the applicants may do this."))
    return proposal


def _fields(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("requests", "call_id")}


class ProposalListArgs(PageArgs):
    q = fields.Str(metadata={"description": "search title, call code or title, project code, PI name or e-mail"})
    state = fields.Str(metadata={"description": "a proposal state: " + ", ".join(
        s.value for s in listing.ProposalState)})
    call = fields.Str(metadata={"description": "call code"})
    submitted_after = fields.Date(metadata={"description": "submitted on or after this day (UTC)"})
    submitted_before = fields.Date(metadata={"description": "submitted on or before this day (UTC)"})
    sort = fields.Str(metadata={"description": "newest (default), submitted, title, call"})


@list_endpoint(blp, "", ProposalListArgs, ProposalSchema(many=True), listing)
def list_proposals(page):
    """The caller's proposals (staff: all), a page at a time, filtered like the proposals page."""
    query = listing.ordered(listing.filtered(current_user, page), page).options(
        selectinload(Proposal.evidence).load_only(EvidenceFile.filename))
    rows = paginate(query, page)
    reviews: dict[int, list[ReviewAssignment]] = {p.id: [] for p in rows.items}
    if reviews:
        for review in db.session.scalars(
                select(ReviewAssignment).where(ReviewAssignment.proposal_id.in_(list(reviews)),
                                               ReviewAssignment.submitted_at.is_not(None))
                .order_by(ReviewAssignment.id)).unique():
            reviews[review.proposal_id].append(review)
    for proposal in rows.items:
        proposal._listed_reviews = reviews[proposal.id]
    return rows


@blp.route("", methods=["POST"])
@require_role(Role.PI)
@blp.arguments(NewProposalInput)
@blp.response(201, ProposalSchema)
def create(data):
    """Start a draft in an open call."""
    call = visible_call(current_user, data["call_id"])
    if call is None:
        abort(422, errors={"call_id": _("There is no such call.")})
    return ops.create_proposal(call, current_user, _fields(data), data.get("requests"))


@blp.route("/<int:proposal_id>")
@blp.response(200, ProposalSchema)
def get_proposal(proposal_id: int):
    return _visible(proposal_id)


@blp.route("/<int:proposal_id>", methods=["PATCH"])
@blp.arguments(ProposalInput)
@blp.response(200, ProposalSchema)
def update(data, proposal_id: int):
    """Change a draft (or a submitted proposal before the cut-off)."""
    proposal = _applicant(proposal_id)
    ops.update_proposal(proposal, current_user, _fields(data), data.get("requests"))
    return proposal


@blp.route("/<int:proposal_id>/evidence", methods=["POST"])
@blp.response(200, ProposalSchema)
def upload_evidence(proposal_id: int):
    """Upload the scaling evidence file (multipart field ``file``)."""
    proposal = _applicant(proposal_id)
    upload = request.files.get("file")
    if upload is None:
        abort(422, errors={"file": _("Send the file in the multipart field “file”.")})
    ops.attach_evidence(proposal, current_user, upload.filename or "", upload.mimetype, upload.read())
    return proposal


@blp.route("/<int:proposal_id>/submit", methods=["POST"])
@blp.response(200, ProposalSchema)
def submit(proposal_id: int):
    proposal = _applicant(proposal_id)
    ops.submit_proposal(proposal, current_user)
    return proposal


@blp.route("/<int:proposal_id>/invitations", methods=["POST"])
@blp.arguments(InviteInput)
@blp.response(201, InvitationSchema)
def invite(data, proposal_id: int):
    proposal = _applicant(proposal_id)
    role = ProjectRole(data["role"]) if data["role"] in ("co_pi", "member") else None
    return ops.invite_member(proposal, current_user, data["email"], role)


@blp.route("/invitations/accept", methods=["POST"])
@blp.arguments(TokenInput)
@blp.response(200, ProposalSchema)
def accept_invitation(data):
    """Join a proposal: the caller must be the person the invitation was sent to."""
    if not data["token"]:
        abort(422, errors={"token": _("Give the token from the invitation link.")})
    invitation = ops.find_invitation(data["token"], current_user)
    if invitation is None:
        abort(404)
    ops.accept_invitation(invitation, current_user)
    return invitation.proposal


@blp.route("/<int:proposal_id>/history")
@blp.response(200, EventSchema(many=True))
def history(proposal_id: int):
    return ops.history_for(_visible(proposal_id), current_user)


@blp.route("/<int:proposal_id>/reply", methods=["POST"])
@blp.arguments(TextInput)
@blp.response(200, ProposalSchema)
def reply(data, proposal_id: int):
    """Right to reply to the released reviews, within the window."""
    proposal = _applicant(proposal_id)
    ops.reply_to_reviews(proposal, current_user, data["text"])
    return proposal


def _staff_step(proposal_id: int, step) -> Proposal:
    """Run a staff step on the proposal (404 if there is none); problems answer 409 or 422."""
    proposal = db.get_or_404(Proposal, proposal_id)
    step(proposal)
    return proposal


@blp.route("/<int:proposal_id>/admissibility", methods=["POST"])
@staff_required
@blp.arguments(VerdictInput)
@blp.response(200, ProposalSchema)
def admissibility(data, proposal_id: int):
    """Admissible (``yes``) or not, with a comment; only after the cut-off (staff)."""
    return _staff_step(proposal_id, lambda p: decisions.check_admissibility(p, current_user, data["yes"],
                                                                            data["comment"]))


@blp.route("/<int:proposal_id>/technical", methods=["POST"])
@staff_required
@blp.arguments(VerdictInput)
@blp.response(200, ProposalSchema)
def technical(data, proposal_id: int):
    """Feasible (``yes``) or not, the hours recommended per partition id, a comment (staff)."""
    return _staff_step(proposal_id, lambda p: decisions.assess_technically(
        p, current_user, data["yes"], data["comment"], data["recommended_hours"]))


@blp.route("/<int:proposal_id>/reviewers", methods=["POST"])
@staff_required
@blp.arguments(ReviewerInput)
@blp.response(201, StaffReviewSchema)
def assign(data, proposal_id: int):
    """Ask a reviewer (a user with the reviewer role) to review; they are e-mailed (staff)."""
    proposal = db.get_or_404(Proposal, proposal_id)
    return assign_reviewer(proposal, current_user, db.session.get(User, data["reviewer_id"]))


@blp.route("/<int:proposal_id>/release", methods=["POST"])
@staff_required
@blp.response(200, ProposalSchema)
def release(proposal_id: int):
    """Show the reviews to the applicants and open the right-to-reply window (staff)."""
    return _staff_step(proposal_id, lambda p: decisions.release_reviews(p, current_user))


@blp.route("/<int:proposal_id>/award", methods=["POST"])
@staff_required
@blp.arguments(AwardInput)
@blp.response(200, ProposalSchema)
def award(data, proposal_id: int):
    """Award hours per partition from start to end: creates the grant (and the project if needed).

    More than the call has left on a partition only with ``confirm_over_award`` (else 422, per
    partition: offered, already awarded, asked); 409 if the proposal was decided meanwhile.
    """
    return _staff_step(proposal_id, lambda p: decisions.award_proposal(
        p, current_user, start_date=data["start_date"], end_date=data["end_date"], hours=data["hours"],
        confirm_over_award=data["confirm_over_award"]))


@blp.route("/<int:proposal_id>/reject", methods=["POST"])
@staff_required
@blp.arguments(TextInput)
@blp.response(200, ProposalSchema)
def reject(data, proposal_id: int):
    """Reject with feedback for the applicants (``text``) (staff)."""
    return _staff_step(proposal_id, lambda p: decisions.reject_proposal(p, current_user, data["text"]))
