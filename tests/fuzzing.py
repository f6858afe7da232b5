"""Drive schemathesis' generated requests against the app's OpenAPI description.

Its pytest plugin (``schemathesis.pytest.from_fixture``) fails under pytest 9, so each
operation is run through Hypothesis directly.
"""
from __future__ import annotations

from collections.abc import Callable

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode


def fuzz_api(app, token_secret: str, *, include: Callable[[str, str], bool], max_examples: int) -> list[str]:
    """Valid and invalid requests for every included (METHOD, path); asserts no 5xx. Returns what ran."""
    headers = {"Authorization": f"Bearer {token_secret}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    tried = []
    for operation in (result.ok() for result in schema.get_all_operations()):
        if not include(operation.method.upper(), operation.path):
            continue

        @given(case=operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
               | operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        @settings(max_examples=max_examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def no_server_error(case):
            response = case.call(headers=headers)
            assert response.status_code < 500, (
                f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:500]}")

        no_server_error()
        tried.append(f"{operation.method.upper()} {operation.path}")
    return tried
