"""Peer review over the API: a reviewer's assignments, conflict declaration and scores."""
from __future__ import annotations

from flask_login import current_user
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from portal.api.paging import PageArgs, list_endpoint
from portal.identity.access import require_role
from portal.identity.models import Role
from portal.proposals.api import RequestSchema
from portal.reviews import listing
from portal.reviews.operations import accessible_assignment, declare_conflict, submit_review
from portal.web.listing import paginate

blp = Blueprint("api_reviews", __name__, description="Peer review: the reviewer's side")


class ReviewedProposalSchema(Schema):
    """What a reviewer reads once they declared no conflict."""

    id = fields.Int()
    title = fields.Str()
    abstract = fields.Str()
    field_of_science = fields.Str()
    justification = fields.Str()
    code_description = fields.Str()
    scaling_evidence = fields.Str()
    technical_feasible = fields.Bool(allow_none=True)
    technical_comment = fields.Str()
    requests = fields.List(fields.Nested(RequestSchema))


class AssignmentSchema(Schema):
    id = fields.Int()
    proposal_id = fields.Int()
    title = fields.Function(lambda a: a.proposal.title)
    has_conflict = fields.Bool(allow_none=True, metadata={"description": "null: not declared yet"})
    scores = fields.Dict()
    comment_applicant = fields.Str()
    comment_committee = fields.Str()
    submitted_at = fields.DateTime(allow_none=True)
    proposal = fields.Method("_proposal")

    def _proposal(self, assignment):
        # The proposal itself only after the declaration of no conflict.
        return ReviewedProposalSchema().dump(assignment.proposal) if assignment.has_conflict is False else None


class ConflictInput(Schema):
    conflict = fields.Bool(load_default=None)
    note = fields.Str(load_default="")


class ScoreInput(Schema):
    excellence = fields.Raw(load_default=None)
    impact = fields.Raw(load_default=None)
    implementation = fields.Raw(load_default=None)
    comment_applicant = fields.Str(load_default="")
    comment_committee = fields.Str(load_default="")


def _assignment(assignment_id: int):
    return accessible_assignment(current_user, assignment_id) or abort(404)


class AssignmentListArgs(PageArgs):
    q = fields.Str(metadata={"description": "search the proposal title, the call code or title"})
    status = fields.Str(metadata={"description": "declare (conflicts not declared yet), to_review or submitted"})
    call = fields.Str(metadata={"description": "call code"})
    sort = fields.Str(metadata={"description": "newest (default) or oldest assignment first"})


@list_endpoint(blp, "", AssignmentListArgs, AssignmentSchema(many=True), listing, guard=require_role(Role.REVIEWER))
def list_assignments(page):
    """The caller's review assignments, without those with a declared conflict, a page at a time."""
    return paginate(listing.ordered(listing.filtered(current_user, page), page), page)


@blp.route("/<int:assignment_id>")
@blp.response(200, AssignmentSchema)
def get_assignment(assignment_id: int):
    return _assignment(assignment_id)


@blp.route("/<int:assignment_id>/conflict", methods=["POST"])
@blp.arguments(ConflictInput)
@blp.response(200, AssignmentSchema)
def conflict(data, assignment_id: int):
    """Declare a conflict of interest (true: access ends at once) or none (false)."""
    assignment = _assignment(assignment_id)
    if data["conflict"] is None:
        abort(422, errors={"conflict": "true or false"})
    return declare_conflict(assignment, data["conflict"], data["note"])


@blp.route("/<int:assignment_id>/score", methods=["POST"])
@blp.arguments(ScoreInput)
@blp.response(200, AssignmentSchema)
def score(data, assignment_id: int):
    """Scores 1-5 per criterion, comments for the applicants and for the committee."""
    assignment = _assignment(assignment_id)
    return submit_review(assignment, data, data["comment_applicant"], data["comment_committee"])
