"""The endpoint an acceptance job posts its result to, with its run's upload-only token.

Nothing else accepts that token: it is not a personal API token, so every other ``/api/``
endpoint refuses it as unknown; this one accepts it for its own run only, once, until it
expires. Failures count against the caller's address like failed API tokens.
"""
from __future__ import annotations

from flask import request
from flask_babel import gettext as _
from flask_smorest import Blueprint, abort

from portal.api.schemas import BenchmarkRunSchema
from portal.benchmarks.acceptance import TokenRefused, accept_result
from portal.benchmarks.operations import BenchmarkError, InvalidResult
from portal.identity.access import bearer_secret, json_error, own_credential
from portal.identity.ratelimit import client_address, configured, exceeded, hit, too_many_requests

blp = Blueprint("api_acceptance", __name__, description="Results that acceptance jobs post themselves")


@blp.route("/<int:acceptance_id>/result", methods=["POST"])
@own_credential
@blp.response(201, BenchmarkRunSchema)
@blp.alt_response(401, description="No upload token, or not this run's, expired or used")
@blp.alt_response(422, description="Not a valid result document of this run")
@blp.doc(security=[{"token": []}])
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
