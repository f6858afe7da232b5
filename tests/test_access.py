"""Every route and API endpoint, checked for every role.

The table below must name every endpoint the app has: a new route fails this test until
someone decides who may use it.
"""
from __future__ import annotations

import pytest

from portal.benchmarks.operations import ingest_result
from portal.extensions import db
from portal.identity.models import TokenScope
from portal.identity.tokens import create_token
from portal.projects.models import ProjectRole
from portal.projects.operations import add_member, create_project
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site
from tests.acceptance_support import SECRET, stored_acceptance_run
from tests.access_matrix import ENDPOINTS, HIDDEN, PERSONAS, PUBLIC, PUBLIC_FORM, RUN_TOKEN, SIGN_IN_FLOW, expected_allowed, probe, url_for_rule
from tests.conftest import csrf_token_from, sign_in
from tests.proposal_support import review_world
from tests.result_docs import REFERENCES, result_document


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
        review_ids = review_world(users["pi"][0], users["staff"][0], users["reviewer"][0], users["member"][1])
        from tests.grant_world import access_world_grant

        grant_ids = access_world_grant(project, site.partitions[0], db.session.get(User, users["pi"][0]))
        from portal.jobs.models import SubmittedJob

        job = SubmittedJob(site_id=site.id, partition=site.partitions[0], project=project, user_id=users["member"][0],
                           slurm_job_id="1", template="serial", job_name="x", unix_user="nobody", account="p001",
                           workdir="/nonexistent", script="#!/bin/bash\n", parameters={}, max_cost_minutes=1,
                           last_state="PENDING")
        db.session.add(job)
        db.session.flush()
        acceptance_id = stored_acceptance_run(SECRET, system="nowhere")
        from portal.benchmarks.models import BenchmarkReference

        reference = BenchmarkReference(system="devcluster", partition="cpu", version=1, table={}, method="test",
                                       source_run_ids=[run.id], note="")
        db.session.add(reference)
        db.session.commit()
        ids = {"acceptance_id": acceptance_id, "reference_id": reference.id, **review_ids, **grant_ids, "partition_id": site.partitions[0].id, "site_id": site.id, "project_id": project.id, "user_id": users["member"][0], "run_id": run.id,
               "token_id": token.id, "name": "nowhere",
               "job_id": job.id, "template": "serial"}
    return users, ids


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
    elif rule == PUBLIC_FORM:
        assert response.status_code == 400  # no redirect to sign in; refused without the CSRF token
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
        # Every page carries the session's CSRF token; a 404 page is the cheapest to render
        # (the dashboard took a quarter of this test's time, fetched for every endpoint).
        token = csrf_token_from(client.get("/no-such-page").get_data(as_text=True))
        url = url_for_rule(app, endpoint, ids)
        response = probe(client, method, url, token)
        if expected_allowed(rule, persona):
            assert response.status_code not in (401, 403, 404), f"{persona} refused at {method} {url}"
            # 503: allowed, but the test site's Slurm is unreachable (as intended here).
            assert response.status_code < 500 or response.status_code == 503, (
                f"{persona} got {response.status_code} at {url}")
        elif rule == RUN_TOKEN:
            assert response.status_code == 401, f"{persona} reached {method} {url}: {response.status_code}"
        elif rule in HIDDEN and persona not in HIDDEN[rule]:
            assert response.status_code == 404, f"{persona} may see {url}"  # 404: ids leak nothing
        else:
            assert response.status_code == 403, f"{persona} reached {method} {url}: {response.status_code}"
