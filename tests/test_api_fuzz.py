"""Property-based run of the whole JSON API from its OpenAPI description: no input makes a server error.

Schemathesis generates requests (valid ones, and with GenerationMode.ALL invalid ones too) for
every operation; a bounded number per operation keeps it fit for every CI run.
(Its pytest plugin, ``schemathesis.pytest.from_fixture``, fails under pytest 9, so the
operations are driven through Hypothesis directly.)
"""
from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from portal.extensions import db
from portal.identity.models import Role, User
from portal.identity.tokens import TokenScope, create_token

MAX_EXAMPLES = 25
# Syncing a site runs Slurm commands: tested against the real cluster in tests/slurm instead.
EXCLUDED = {("POST", "/api/sites/{site_id}/sync")}


def test_api_answers_generated_requests_without_a_server_error(app, make_user):
    user_id, _, _ = make_user(Role.ADMIN, Role.STAFF, name="Fuzz Tester")  # staff: staff-only operations run too
    with app.app_context():
        _token, secret = create_token(db.session.get(User, user_id), "fuzz", TokenScope.READ_WRITE, 1)
        db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    tried = []
    for operation in operations:
        if (operation.method.upper(), operation.path) in EXCLUDED or operation.path.startswith("/api/tokens/"):
            continue  # DELETE /api/tokens/{id} would revoke the fuzzing token itself (id 1) and end the run early

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
               | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def no_server_error(case):
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}")

        no_server_error()
        tried.append(f"{operation.method.upper()} {operation.path}")
    assert len(tried) >= 10, tried
