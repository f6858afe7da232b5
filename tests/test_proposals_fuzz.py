"""The calls, proposals and reviews API under generated input, as staff and as the applicant:
never a server error, whatever the body (see tests/test_api_fuzz.py for the whole API)."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from portal.extensions import db
from portal.identity.models import Role, User
from portal.identity.tokens import TokenScope, create_token
from tests.proposal_support import review_world

MAX_EXAMPLES = 15
MINE = ("/api/calls", "/api/proposals", "/api/reviews")


@pytest.mark.parametrize("persona", ["staff", "pi", "reviewer"])
def test_generated_requests_never_cause_a_server_error(app, make_user, persona):
    pi, staff, reviewer = make_user(Role.PI), make_user(Role.STAFF), make_user(Role.REVIEWER)
    caller = {"pi": pi, "staff": staff, "reviewer": reviewer}[persona]
    with app.app_context():
        review_world(pi[0], staff[0], reviewer[0], "someone@example.org")  # ids 1 exist: the views run
        _token, secret = create_token(db.session.get(User, caller[0]), "fuzz", TokenScope.READ_WRITE, 1)
        db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    tried = []
    for operation in (result.ok() for result in schema.get_all_operations()):
        if not operation.path.startswith(MINE):
            continue

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
               | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case):
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}")

        no_server_error()
        tried.append(f"{operation.method.upper()} {operation.path}")
    assert len(tried) == 25, tried
