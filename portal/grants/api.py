"""Grants in the JSON API: what was awarded, used and left, with the same access rules as the pages."""
from __future__ import annotations

from dataclasses import replace

from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from portal.api.paging import PageArgs, list_endpoint
from portal.clock import utcnow
from portal.extensions import db
from portal.grants import listing
from portal.grants.models import GrantRequest
from portal.grants.operations import visible_grant
from portal.grants.reconcile import is_pending
from portal.grants.requests import decide_request
from portal.grants.summary import forecast, resource_totals
from portal.identity.access import staff_required
from portal.web.listing import paginate

blp = Blueprint("api_grants", __name__, description="Grants: awarded, used and remaining hours per resource")


class ResourceSchema(Schema):
    resource = fields.Function(lambda t: t["total"].kind.value)
    unit = fields.Function(lambda t: t["total"].unit)
    partitions = fields.Function(lambda t: list(t["total"].partitions))
    slurm_account = fields.Function(lambda t: t["total"].account,
                                    metadata={"description": "the pool's Slurm sub-account: use sbatch -A with it"})
    awarded_hours = fields.Function(lambda t: round(t["total"].awarded, 3))
    used_hours = fields.Function(lambda t: round(t["total"].used, 3))
    remaining_hours = fields.Function(lambda t: round(t["total"].remaining, 3))
    percent_used = fields.Function(lambda t: round(t["total"].percent_used, 2))
    exhausted_on = fields.Function(lambda t: t["forecast"].exhausted_on.isoformat() if t["forecast"].exhausted_on else None)
    unused_percent_at_end = fields.Function(lambda t: t["forecast"].unused_percent)


class GrantSchema(Schema):
    id = fields.Int()
    project = fields.Function(lambda g: g.project.code)
    slurm_account = fields.Function(lambda g: g.project.slurm_account)
    title = fields.Str()
    status = fields.Function(lambda g: g.status.value)
    start_date = fields.Date()
    end_date = fields.Date()


class GrantDetailSchema(GrantSchema):
    resources = fields.Method("_resources")
    slurm_changes_pending = fields.Method("_pending")

    def _resources(self, grant):
        today = utcnow().date()
        return ResourceSchema(many=True).dump(
            [{"total": t, "forecast": forecast(grant, t, today)} for t in resource_totals(grant)])

    def _pending(self, grant):
        return is_pending({a.partition.site_id for a in grant.allocations})


class GrantListArgs(PageArgs):
    q = fields.Str(metadata={"description": "search project code, grant or project title, PI name or e-mail"})
    status = fields.Str(metadata={"description": "active, suspended, expired or closed"})
    site = fields.Str(metadata={"description": "site name"})
    partition = fields.Str(metadata={"description": "partition name"})
    call = fields.Str(metadata={"description": "code of the call the grant was awarded in"})
    ends_after = fields.Date()
    ends_before = fields.Date()
    sort = fields.Str(metadata={"description": "risk (default: furthest off a steady pace first), end, start, project"})


class GrantRowSchema(GrantSchema):
    off_pace_percent = fields.Float(metadata={"description": "percent of the award off a steady pace in the "
                                                             "worst pool: + over-use, - under-use"})
    pools = fields.Method("_pools")

    def _pools(self, grant):
        return [{"resource": p.kind.value, "partitions": list(p.partitions), "awarded_hours": round(p.awarded_hours, 3),
                 "used_hours": round(p.used_hours, 3)} for p in listing.pools_of(grant)]


@list_endpoint(blp, "", GrantListArgs, GrantRowSchema(many=True), listing)
def list_grants(page):
    """Grants of the caller's projects (staff: all), a page at a time, filtered like the grants page.

    The usage figures are the summaries kept at every ingestion (as on the grants page).
    """
    rows = paginate(listing.ordered(listing.filtered(current_user, page), page), page,
                    scalars=False)
    grants = []
    for grant, off_pace, _pi_name in rows.items:
        grant.off_pace_percent = round(off_pace, 2)
        grants.append(grant)
    return replace(rows, items=grants)


@blp.route("/<int:grant_id>")
@blp.response(200, GrantDetailSchema)
def get_grant(grant_id: int):
    """One grant with awarded, used and remaining hours and the forecast per resource."""
    return visible_grant(grant_id, current_user) or abort(404, message=_("No such grant."))


class GrantRequestSchema(Schema):
    id = fields.Int()
    grant_id = fields.Int()
    partition_id = fields.Int(allow_none=True)
    extra_hours = fields.Function(lambda r: r.extra_minutes / 60)
    new_end_date = fields.Date(allow_none=True)
    reason = fields.Str()
    status = fields.Function(lambda r: r.status.value)
    decided_at = fields.DateTime(allow_none=True)


class DecisionInput(Schema):
    approve = fields.Bool(required=True, metadata={"description": "true: approve, false: refuse"})


@blp.route("/requests/<int:request_id>/decision", methods=["POST"])
@staff_required
@blp.arguments(DecisionInput)
@blp.response(200, GrantRequestSchema)
def decide(data, request_id: int):
    """Approve or refuse a top-up or extension request (staff); 409 if it was already decided."""
    change = db.session.get(GrantRequest, request_id) or abort(404, message=_("No such request."))
    return decide_request(change, current_user, approve=data["approve"])
