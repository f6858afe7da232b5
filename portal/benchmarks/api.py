"""The endpoint an acceptance job posts its result to, with its run's upload-only token.

Nothing else accepts that token: it is not a personal API token, so every other ``/api/``
endpoint refuses it as unknown; this one accepts it for its own run only, once, until it
expires. Failures count against the caller's address like failed API tokens.
"""
from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from portal.api.paging import PageArgs, list_endpoint
from portal.api.schemas import BenchmarkRunSchema, BenchmarkRunSummarySchema
from portal.benchmarks import listing
from portal.benchmarks.acceptance import TokenRefused, accept_result
from portal.benchmarks.models import BenchmarkRun
from portal.benchmarks.operations import BenchmarkError, InvalidResult, ingest_result, metric_history
from portal.extensions import db
from portal.identity.access import bearer_secret, json_error, own_credential, staff_required
from portal.identity.ratelimit import client_address, configured, exceeded, hit, too_many_requests
from portal.web.listing import paginate

blp = Blueprint("api_benchmarks", __name__, description="Acceptance benchmark results (mpi_examples)")


class RunFilter(PageArgs):
    q = fields.Str(metadata={"description": "search the system, partition, array or references entry"})
    system = fields.Str()
    partition = fields.Str()
    benchmark = fields.Str(metadata={"description": "runs that measured this benchmark (e.g. pingpong)"})
    verdict = fields.Str(metadata={"description": "passed, failed or no_reference"})
    since = fields.Date(metadata={"description": "measured on or after this day (UTC)"})
    until = fields.Date(metadata={"description": "measured on or before this day (UTC)"})
    sort = fields.Str(metadata={"description": "newest (default), oldest, system"})


class HistoryQuery(Schema):
    system = fields.Str(required=True)
    partition = fields.Str(required=True)
    key = fields.Str(required=True, metadata={"description": "benchmark/metric[/size][/precision]"})


class HistoryPointSchema(Schema):
    run_id = fields.Int()
    measured_at = fields.DateTime()
    mean = fields.Float()
    stdev = fields.Float(allow_none=True)
    status = fields.Function(lambda p: p.status.value)
    reference = fields.Float(allow_none=True)
    unit = fields.Str()


@list_endpoint(blp, "/runs", RunFilter, BenchmarkRunSummarySchema(many=True), listing)
def list_runs(page):
    """Stored runs, newest first, a page at a time, filtered like the benchmarks page."""
    return paginate(listing.ordered(listing.filtered(page), page), page)


@blp.route("/runs", methods=["POST"])
@blp.response(201, BenchmarkRunSchema)
@blp.alt_response(422, description="Not a valid mpi_examples result document")
@blp.alt_response(503, description="A references file on the server is broken")
@staff_required
def upload_run():
    """Store a result document (``mpi_examples/result/v1``) and judge it against the references (staff)."""
    document = request.get_json(silent=True)
    try:
        return ingest_result(document, current_user)
    except InvalidResult as exc:
        abort(422, message=_("Not a valid result document."), errors={"document": exc.problems[:50]})
    except BenchmarkError as exc:
        abort(503, message=exc.problems[0])


@blp.route("/runs/<int:run_id>")
@blp.response(200, BenchmarkRunSchema)
def get_run(run_id: int):
    return db.get_or_404(BenchmarkRun, run_id)


@blp.route("/history")
@blp.arguments(HistoryQuery, location="query")
@blp.response(200, HistoryPointSchema(many=True))
def history(query):
    """One metric of one system and partition over time."""
    return metric_history(query["system"], query["partition"], query["key"])


acceptance_blp = Blueprint("api_acceptance", __name__, description="Results that acceptance jobs post themselves")


@acceptance_blp.route("/<int:acceptance_id>/result", methods=["POST"])
@own_credential
@acceptance_blp.response(201, BenchmarkRunSchema)
@acceptance_blp.alt_response(401, description="No upload token, or not this run's, expired or used")
@acceptance_blp.alt_response(422, description="Not a valid result document of this run")
@acceptance_blp.doc(security=[{"token": []}])
def post_result(acceptance_id: int):
    """Store the result of acceptance run ``acceptance_id``; ``Authorization: Bearer hpcb_…``, the
    run's upload-only token (made when the run was started, given only to its job)."""
    limit = configured("TOKEN_RATE_LIMIT")
    bucket = f"token-failures:{client_address()}"
    verdict = exceeded(bucket, limit)
    if not verdict.allowed:
        return too_many_requests(verdict)
    try:
        return accept_result(acceptance_id, bearer_secret() or "", request.get_json(silent=True))
    except TokenRefused as exc:
        hit(bucket, limit)
        response = json_error(401, "Unauthorized", str(exc) if bearer_secret() else _("Send the run's upload token."))
        response.headers["WWW-Authenticate"] = 'Bearer error="invalid_token"'
        return response
    except InvalidResult as exc:
        abort(422, message=_("Not a valid result document of this run."), errors={"document": exc.problems[:50]})
    except BenchmarkError as exc:
        abort(503, message=exc.problems[0])
