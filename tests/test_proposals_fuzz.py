"""The calls, proposals and reviews API under generated input, as staff and as the applicant:
never a server error, whatever the body (see tests/test_api_fuzz.py for the whole API)."""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.identity.models import Role, TokenScope, User
from portal.identity.tokens import create_token
from tests.fuzzing import fuzz_api
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
    tried = fuzz_api(app, secret, include=lambda _method, path: path.startswith(MINE), max_examples=MAX_EXAMPLES)
    assert len(tried) == 25, tried
