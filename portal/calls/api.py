"""Calls for proposals over the API; the same operations and rules as the web pages."""
from __future__ import annotations

from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from portal.api.paging import PageArgs, list_endpoint
from portal.calls import listing
from portal.calls.models import AccessMode, ReviewWorkflow
from portal.calls.operations import access_modes, create_call, visible_call
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.access import staff_required
from portal.reviews.operations import committee_ranking
from portal.web.listing import paginate

DATABASE_ID = validate.Range(1, 2**31 - 1)  # an id the database can hold: others are 422, not a database error

blp = Blueprint("api_calls", __name__, description="Calls for proposals, and the committee ranking (staff)")


class AccessModeSchema(Schema):
    id = fields.Int()
    name = fields.Str()
    review_workflow = fields.Function(lambda m: m.review_workflow.value)
    typical_months = fields.Int()


class OfferSchema(Schema):
    partition_id = fields.Int()
    partition = fields.Function(lambda o: o.partition.label)
    resource_kind = fields.Function(lambda o: o.partition.resource_kind.value)
    offered_hours = fields.Float()
    max_request_hours = fields.Float()


class CallSchema(Schema):
    id = fields.Int()
    code = fields.Str()
    title = fields.Str()
    description = fields.Str()
    access_mode = fields.Function(lambda c: c.access_mode.name)
    review_workflow = fields.Function(lambda c: c.review_workflow.value)
    tracks = fields.Function(lambda c: [t.value for t in c.track_list])
    eligible_countries = fields.Function(lambda c: c.country_list)
    opens_at = fields.DateTime()
    closes_at = fields.DateTime(allow_none=True, metadata={"description": "cut-off (UTC); null: continuous"})
    allocation_start = fields.Date()
    allocation_end = fields.Date()
    min_reviewers = fields.Int()
    offers = fields.List(fields.Nested(OfferSchema))


class NewCallSchema(Schema):
    code = fields.Str(required=True)
    title = fields.Str(required=True)
    description = fields.Str()
    access_mode_id = fields.Int(required=True, validate=DATABASE_ID)
    review_workflow = fields.Str(metadata={"enum": [w.value for w in ReviewWorkflow]})
    tracks = fields.List(fields.Str(), required=True)
    eligible_countries = fields.List(fields.Str())
    opens_at = fields.NaiveDateTime(required=True, metadata={"description": "UTC"})
    closes_at = fields.NaiveDateTime(allow_none=True, metadata={"description": "UTC; null: continuous"})
    allocation_start = fields.Date(required=True)
    allocation_end = fields.Date(required=True)
    min_reviewers = fields.Int()
    offers = fields.Dict(keys=fields.Str(), values=fields.Dict(), required=True, metadata={
        "description": "partition id -> {offered_hours, max_request_hours}"})


class RankedSchema(Schema):
    proposal_id = fields.Function(lambda r: r.proposal.id)
    title = fields.Function(lambda r: r.proposal.title)
    state = fields.Function(lambda r: r.proposal.state.value)
    score = fields.Float(allow_none=True)
    requested_hours = fields.Function(lambda r: {str(k): v / 60 for k, v in r.requested.items()})
    recommended_hours = fields.Function(
        lambda r: {str(k): None if v is None else v / 60 for k, v in r.recommended.items()},
        metadata={"description": "partition id -> hours the technical assessment recommends (null: none)"})
    within_capacity = fields.Function(lambda r: {str(k): v for k, v in r.fits.items()})


class DemandSchema(Schema):
    partition_id = fields.Int()
    partition = fields.Str(attribute="label")
    unit = fields.Str()
    offered_hours = fields.Function(lambda d: d.offered_minutes / 60)
    awarded_hours = fields.Function(lambda d: d.awarded_minutes / 60,
                                    metadata={"description": "so far, on grants made from the call's proposals"})
    remaining_hours = fields.Function(lambda d: d.remaining_minutes / 60,
                                      metadata={"description": "offered minus awarded; negative after an over-award"})
    requested_hours = fields.Function(lambda d: d.requested_minutes / 60)
    oversubscription = fields.Float()


class CommitteeSchema(Schema):
    ranking = fields.List(fields.Nested(RankedSchema))
    demand = fields.List(fields.Nested(DemandSchema))


class CallListArgs(PageArgs):
    q = fields.Str(metadata={"description": "search the call's code or title"})
    mode = fields.Str(metadata={"description": "access mode name (see /api/calls/access-modes)"})
    status = fields.Str(metadata={"description": "open (accepting submissions now), upcoming (staff) or closed"})
    sort = fields.Str(metadata={"description": "newest (default: latest opening first), closing, code, title"})


@list_endpoint(blp, "", CallListArgs, CallSchema(many=True), listing)
def list_calls(page):
    """Calls that have opened (staff: all), a page at a time, filtered like the calls page."""
    return paginate(listing.ordered(listing.filtered(current_user, page, utcnow()), page), page)


@blp.route("/access-modes")
@blp.response(200, AccessModeSchema(many=True))
def list_access_modes():
    return access_modes()


@blp.route("", methods=["POST"])
@staff_required
@blp.arguments(NewCallSchema)
@blp.response(201, CallSchema)
def create(data):
    """Open a call (staff)."""
    try:
        workflow = ReviewWorkflow(data["review_workflow"]) if data.get("review_workflow") else None
    except ValueError:
        abort(422, errors={"review_workflow": _("Unknown review workflow.")})
    return create_call(
        code=data["code"], title=data["title"], description=data.get("description", ""),
        access_mode=db.session.get(AccessMode, data["access_mode_id"]),
        review_workflow=workflow, tracks=data["tracks"], eligible_countries=data.get("eligible_countries", []),
        opens_at=data["opens_at"], closes_at=data.get("closes_at"), allocation_start=data["allocation_start"],
        allocation_end=data["allocation_end"], min_reviewers=data.get("min_reviewers", 2),
        offers={k: (v.get("offered_hours"), v.get("max_request_hours")) for k, v in data["offers"].items()})


@blp.route("/<int:call_id>")
@blp.response(200, CallSchema)
def get_call(call_id: int):
    return visible_call(current_user, call_id) or abort(404)


@blp.route("/<int:call_id>/committee")
@staff_required
@blp.response(200, CommitteeSchema)
def committee(call_id: int):
    """Proposals ranked by mean score against the capacity per partition: offered, awarded so far,
    remaining, requested and oversubscription; each proposal's requested and recommended hours (staff)."""
    call = visible_call(current_user, call_id) or abort(404)
    rows, demand = committee_ranking(call)
    return {"ranking": rows, "demand": list(demand.values())}
