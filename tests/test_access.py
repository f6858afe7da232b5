"""Every route and API endpoint, checked for every role.

The table below must name every endpoint the app has: a new route fails this test until
someone decides who may use it.
"""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.identity.models import Role
from portal.identity.tokens import TokenScope, create_token
from portal.projects.models import ProjectRole
from portal.sites.models import Partition, ResourceKind
from portal.projects.operations import add_member, create_project
from portal.sites.operations import create_site
from portal.benchmarks.operations import ingest_result
from tests.conftest import csrf_token_from, sign_in
from tests.result_docs import REFERENCES, result_document

PUBLIC = "public"
SIGNED_IN = "signed-in"
STAFF = "staff"
ADMIN = "admin"
PROJECT_MEMBER = "project member"  # members of the project in the URL, and staff
TOKEN_OWNER = "token owner"  # only the user whose API token is in the URL
SIGN_IN_FLOW = "sign-in flow"  # public; the provider in the URL is unknown here (404), see test_oidc

ENDPOINTS: dict[str, tuple[str, str]] = {
    # endpoint: (who may use it, HTTP method used to probe it)
    "identity.login": (PUBLIC, "GET"),
    "web.health": (PUBLIC, "GET"),
    "api-docs.openapi_json": (PUBLIC, "GET"),
    "web.index": (SIGNED_IN, "GET"),
    "identity.logout": (SIGNED_IN, "POST"),
    "sites.index": (SIGNED_IN, "GET"),
    "projects.index": (SIGNED_IN, "GET"),
    "projects.detail": (PROJECT_MEMBER, "GET"),
    "sites.sync": (STAFF, "POST"),
    "sites.set_kind": (STAFF, "POST"),
    "identity.users": (ADMIN, "GET"),
    "identity.edit_user": (ADMIN, "GET"),
    "api_me.me": (SIGNED_IN, "GET"),
    "api_sites.list_sites": (SIGNED_IN, "GET"),
    "api_sites.get_site": (SIGNED_IN, "GET"),
    "api_sites.sync_site": (STAFF, "POST"),
    "api_projects.list_projects": (SIGNED_IN, "GET"),
    "api_projects.get_project": (PROJECT_MEMBER, "GET"),
    "benchmarks.index": (SIGNED_IN, "GET"),
    "benchmarks.run": (SIGNED_IN, "GET"),
    "benchmarks.history": (SIGNED_IN, "GET"),
    "benchmarks.upload": (STAFF, "POST"),
    "api_benchmarks.list_runs": (SIGNED_IN, "GET"),
    "api_benchmarks.upload_run": (STAFF, "POST"),
    "api_benchmarks.get_run": (SIGNED_IN, "GET"),
    "api_benchmarks.history": (SIGNED_IN, "GET"),
    "identity.oidc_login": (SIGN_IN_FLOW, "GET"),
    "identity.oidc_callback": (SIGN_IN_FLOW, "GET"),
    "account.tokens": (SIGNED_IN, "GET"),
    "account.revoke": (TOKEN_OWNER, "POST"),
    "audit.index": (STAFF, "GET"),
    "api_tokens.list_tokens": (SIGNED_IN, "GET"),
    "api_tokens.create": (SIGNED_IN, "POST"),
    "api_tokens.revoke": (TOKEN_OWNER, "DELETE"),
}

PERSONAS = {
    "pi": (Role.PI, Role.MEMBER),
    "member": (Role.MEMBER,),
    "reviewer": (Role.REVIEWER,),
    "staff": (Role.STAFF,),
    "admin": (Role.ADMIN,),
    "other_pi": (Role.PI,),  # a PI who is not in the project
}


def expected_allowed(rule: str, persona: str) -> bool:
    if rule in (PUBLIC, SIGNED_IN, SIGN_IN_FLOW):
        return True
    if rule == TOKEN_OWNER:
        return persona == "member"
    if rule == STAFF:
        return persona in ("staff", "admin")
    if rule == ADMIN:
        return persona == "admin"
    if rule == PROJECT_MEMBER:
        return persona in ("pi", "member", "staff", "admin")
    raise AssertionError(rule)


def test_every_endpoint_is_classified(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert endpoints == set(ENDPOINTS), (
        f"unclassified: {sorted(endpoints - set(ENDPOINTS))}; stale: {sorted(set(ENDPOINTS) - endpoints)}")


@pytest.fixture
def world(app, make_user, tmp_path):
    users = {name: make_user(*roles) for name, roles in PERSONAS.items()}
    with app.app_context():
        from portal.identity.models import User

        # A site whose Slurm cannot be reached: staff may still ask, and get an error, not a 403.
        site = create_site("Nowhere", "nowhere", slurm_conf=str(tmp_path / "missing-slurm.conf"))
        site.partitions.append(Partition(name="cpu", resource_kind=ResourceKind.CPU))
        project = create_project("p-001", "Test project", db.session.get(User, users["pi"][0]))
        add_member(project, db.session.get(User, users["member"][0]), ProjectRole.MEMBER)
        run = ingest_result(result_document(), None, references=REFERENCES)
        token, _secret = create_token(db.session.get(User, users["member"][0]), "cli", TokenScope.READ, 30)
        db.session.commit()
        ids = {"partition_id": site.partitions[0].id, "site_id": site.id, "project_id": project.id, "user_id": users["member"][0], "run_id": run.id,
               "token_id": token.id, "name": "nowhere"}
    return users, ids


def url_for_rule(app, endpoint: str, ids: dict[str, int]) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **{arg: ids[arg] for arg in rule.arguments})


def probe(client, method: str, url: str, token: str | None):
    if method == "GET":
        return client.get(url)
    headers = {"X-CSRFToken": token} if token else {}
    if method == "DELETE":
        return client.delete(url, headers=headers)
    data = {"csrf_token": token} if token and not url.startswith("/api/") else None
    return client.post(url, data=data, headers=headers)


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
def test_anonymous_access(app, world, endpoint):
    _, ids = world
    rule, method = ENDPOINTS[endpoint]
    url = url_for_rule(app, endpoint, ids)
    response = probe(app.test_client(), method, url, None)
    if rule == PUBLIC:
        assert response.status_code == 200
    elif rule == SIGN_IN_FLOW:
        assert response.status_code == 404  # reached the view: no redirect to sign in
    elif url.startswith("/api/"):
        assert response.status_code == 401
        assert response.get_json()["message"]
    else:
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_each_role_reaches_exactly_what_it_may(app, world, persona):
    users, ids = world
    _, email, password = users[persona]
    for endpoint, (rule, method) in sorted(ENDPOINTS.items()):
        if endpoint == "identity.logout":
            continue  # would end the session mid-test; covered in test_identity
        client = app.test_client()
        sign_in(client, email, password)
        token = csrf_token_from(client.get("/").get_data(as_text=True))
        url = url_for_rule(app, endpoint, ids)
        response = probe(client, method, url, token)
        if expected_allowed(rule, persona):
            assert response.status_code not in (401, 403, 404), f"{persona} refused at {method} {url}"
            # 503: allowed, but the test site's Slurm is unreachable (as intended here).
            assert response.status_code < 500 or response.status_code == 503, (
                f"{persona} got {response.status_code} at {url}")
        elif rule in (PROJECT_MEMBER, TOKEN_OWNER):
            assert response.status_code == 404, f"{persona} may see {url}"  # 404: ids leak nothing
        else:
            assert response.status_code == 403, f"{persona} reached {method} {url}: {response.status_code}"
