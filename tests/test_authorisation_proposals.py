"""Every route and API endpoint of calls, proposals and peer review, for every kind of caller.

Beyond tests/test_access.py (whose table this reuses): a co-PI who accepted an invitation, a
reviewer who declared a conflict (no access to that proposal any more), and another PI's ids.
"""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.identity.models import Role, User
from portal.proposals import operations as ops
from portal.proposals.models import Invitation, Proposal
from tests.access_matrix import ENDPOINTS, INVITEE, PI_ROLE, PROPOSAL_APPLICANT, PROPOSAL_TEAM, REVIEW_ASSIGNEE, REVIEWER_ROLE, SIGNED_IN, STAFF, probe, url_for_rule
from tests.conftest import csrf_token_from, sign_in
from tests.proposal_support import PROPOSAL_TEXT, review_world

MINE = ("calls.", "proposals.", "reviews.", "api_calls.", "api_proposals.", "api_reviews.")
PERSONAS = {
    "pi": (Role.PI,), "co_pi": (Role.MEMBER,), "invitee": (Role.MEMBER,), "reviewer": (Role.REVIEWER,),
    "conflicted_reviewer": (Role.REVIEWER,), "other_pi": (Role.PI,), "staff": (Role.STAFF,),
}
ALLOWED = {
    SIGNED_IN: set(PERSONAS), STAFF: {"staff"}, PI_ROLE: {"pi", "other_pi"},
    PROPOSAL_TEAM: {"pi", "co_pi", "staff"}, PROPOSAL_APPLICANT: {"pi", "co_pi"},
    REVIEWER_ROLE: {"reviewer", "conflicted_reviewer"}, REVIEW_ASSIGNEE: {"reviewer"}, INVITEE: {"invitee"},
}
NOT_FOUND = {PROPOSAL_TEAM, PROPOSAL_APPLICANT, REVIEW_ASSIGNEE, INVITEE}  # the ids reveal nothing


def expected_status(rule: str, persona: str) -> int | None:
    """None: allowed (anything but 401/403/404 and server errors); else the refusal's status."""
    if persona in ALLOWED[rule]:
        return None
    if rule == PROPOSAL_APPLICANT and persona == "staff":
        return 403  # staff see the proposal but do not write it for the applicants
    return 404 if rule in NOT_FOUND else 403


def my_endpoints(app) -> list[str]:
    return sorted(rule.endpoint for rule in app.url_map.iter_rules() if rule.endpoint.startswith(MINE))


@pytest.fixture
def world(app, make_user):
    users = {name: make_user(*roles, name=f"{name} Łukasz") for name, roles in PERSONAS.items()}
    with app.app_context():
        ids = review_world(users["pi"][0], users["staff"][0], users["reviewer"][0], users["invitee"][1],
                           conflicted_reviewer_id=users["conflicted_reviewer"][0])
        proposal = db.session.get(Proposal, ids["proposal_id"])
        co_pi = db.session.get(User, users["co_pi"][0])
        invitation = Invitation(proposal=proposal, email=co_pi.email, role=ops.ProjectRole.CO_PI, nonce="co-pi-nonce")
        db.session.add(invitation)
        ops.accept_invitation(invitation, co_pi)
        db.session.commit()
    return users, ids


def test_every_endpoint_of_calls_proposals_and_reviews_is_classified(app):
    assert set(my_endpoints(app)) <= set(ENDPOINTS)
    assert len(my_endpoints(app)) == 51  # 26 pages (3 CSV exports) and 25 API endpoints


@pytest.mark.parametrize("persona", sorted(PERSONAS))
def test_each_caller_reaches_exactly_what_it_may(app, world, persona):
    users, ids = world
    client = app.test_client()
    sign_in(client, users[persona][1], users[persona][2])
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    # The conflicted reviewer tries their own (conflicted) assignment: it is gone for them.
    own = {**ids, "assignment_id": ids["conflicted_assignment_id"]} if persona == "conflicted_reviewer" else ids
    for endpoint in my_endpoints(app):
        rule, method = ENDPOINTS[endpoint]
        url = url_for_rule(app, endpoint, own)
        response = probe(client, method, url, token)
        expected = expected_status(rule, persona)
        if expected is None:
            assert response.status_code not in (401, 403, 404), f"{persona} refused at {method} {url}"
            assert response.status_code < 500, f"{persona} got {response.status_code} at {url}"
        else:
            assert response.status_code == expected, f"{persona} at {method} {url}: {response.status_code}"


def test_a_pi_cannot_reach_another_pis_proposal(app, world, make_user):
    users, ids = world
    with app.app_context():
        from portal.calls.models import Call

        call = db.session.scalar(db.select(Call))
        call.closes_at = None  # continuous again, so the other PI can still draft
        other = ops.create_proposal(call, db.session.get(User, users["other_pi"][0]), PROPOSAL_TEXT)
        db.session.commit()
        other_id = other.id
    client = app.test_client()
    sign_in(client, users["pi"][1], users["pi"][2])
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    for path in ("/proposals/{}", "/proposals/{}/edit", "/proposals/{}/evidence", "/api/proposals/{}",
                 "/api/proposals/{}/history"):
        assert client.get(path.format(other_id)).status_code == 404
    for path in ("/proposals/{}/submit", "/proposals/{}/invite", "/proposals/{}/reply"):
        assert client.post(path.format(other_id), data={"csrf_token": token}).status_code == 404
    for path in ("/api/proposals/{}/submit", "/api/proposals/{}/invitations", "/api/proposals/{}/evidence"):
        assert client.post(path.format(other_id), json={}, headers={"X-CSRFToken": token}).status_code == 404
    assert client.patch(f"/api/proposals/{other_id}", json={"title": "mine now"},
                        headers={"X-CSRFToken": token}).status_code == 404
    assert other_id not in [p["id"] for p in client.get("/api/proposals").get_json()]
    with app.app_context():
        assert db.session.get(Proposal, other_id).title == PROPOSAL_TEXT["title"]


def test_a_conflicted_reviewer_loses_access_at_once(app, world):
    users, ids = world
    client = app.test_client()
    sign_in(client, users["conflicted_reviewer"][1], users["conflicted_reviewer"][2])
    assert client.get("/api/reviews").get_json() == []
    assert "Łódź" not in client.get("/reviews/").get_data(as_text=True)
    for path in (f"/reviews/{ids['conflicted_assignment_id']}", f"/api/reviews/{ids['conflicted_assignment_id']}",
                 f"/proposals/{ids['proposal_id']}", f"/api/proposals/{ids['proposal_id']}"):
        assert client.get(path).status_code == 404


def test_every_state_change_needs_a_csrf_token(app, world):
    users, ids = world
    for persona in ("pi", "staff", "reviewer"):
        client = app.test_client()
        sign_in(client, users[persona][1], users[persona][2])
        for endpoint in my_endpoints(app):
            for rule in app.url_map.iter_rules(endpoint):
                for method in sorted(rule.methods & {"POST", "PATCH", "PUT", "DELETE"}):
                    url = url_for_rule(app, endpoint, ids)
                    response = client.open(url, method=method, data={})
                    assert response.status_code == 400, f"{persona}: {method} {url} accepted without a CSRF token"
        assert client.get("/").status_code == 200
