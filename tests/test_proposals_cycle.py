"""The whole life of a proposal, through the web pages (full review) and the API (technical only)."""
from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.calls.models import ReviewWorkflow
from portal.extensions import db
from portal.grants.models import Grant
from portal.identity.models import Role, User
from portal.projects.models import ProjectRole
from portal.proposals import decisions
from portal.proposals import operations as ops
from portal.proposals.models import Proposal, ProposalState
from portal.reviews.operations import assign_reviewer, declare_conflict, reviews_of, submit_review
from tests.conftest import csrf_token_from, sign_in
from tests.proposal_support import PROPOSAL_TEXT, make_call, make_site, move_cut_off_to_the_past, set_country

LINK = re.compile(r"http://localhost(/proposals/invitations/\S+)")


def signed_in(app, user):
    client = app.test_client()
    sign_in(client, user[1], user[2])
    return client, csrf_token_from(client.get("/").get_data(as_text=True))


def post(client, token, url, **data):
    return client.post(url, data={"csrf_token": token, **data})


@pytest.mark.slow
def test_full_review_cycle_through_the_web_pages(app, make_user, smtp_server):
    pi = make_user(Role.PI, name="Agnieszka Wiśniewska", email="agnieszka@uni.example")
    co_pi = make_user(Role.MEMBER, name="Jonas Petraitis", email="jonas@uni.example")
    late_pi = make_user(Role.PI, name="Žydrūnas Late")
    rival_pi = make_user(Role.PI, name="Rival PI")
    staff = make_user(Role.STAFF, name="Rūta Kazlauskienė")
    reviewer_names = [f"Ąžuolas Recenzentas {n}" for n in (1, 2, 3)]
    reviewers = [make_user(Role.REVIEWER, name=name) for name in reviewer_names]
    with app.app_context():
        cpu, gpu = make_site()
        call = make_call(cpu, gpu, countries=["PL", "LT"])
        for user in (pi, late_pi, rival_pi):
            set_country(user[0], "PL")
        # A rival proposal, already assessed: the committee ranks both against the capacity.
        rival = ops.create_proposal(call, db.session.get(User, rival_pi[0]), {**PROPOSAL_TEXT, "title": "Rival"},
                                    {gpu.id: 5000})
        ops.submit_proposal(rival, rival.pi)
        late = ops.create_proposal(call, db.session.get(User, late_pi[0]), {**PROPOSAL_TEXT, "title": "Late"},
                                   {cpu.id: 10})
        db.session.commit()
        call_id, cpu_id, gpu_id, rival_id, late_id = call.id, cpu.id, gpu.id, rival.id, late.id

    # The PI drafts, with Polish and Lithuanian text, and asks for CPU and GPU time.
    client, token = signed_in(app, pi)
    assert "Write a proposal" in client.get(f"/calls/{call_id}").get_data(as_text=True)
    response = post(client, token, f"/proposals/new/{call_id}", **PROPOSAL_TEXT,
                    **{f"request-{cpu_id}": "20000", f"request-{gpu_id}": "6000"})
    assert response.status_code == 302
    proposal_url = response.headers["Location"]
    proposal_id = int(proposal_url.rsplit("/", 1)[1])
    page = client.get(proposal_url).get_data(as_text=True)
    assert "Łódź–Vilnius language models" in page and "lietuvių kalbos" in page and "Draft" in page

    # ... invites a co-PI, who accepts by signing in with the invited address.
    assert post(client, token, f"/proposals/{proposal_id}/invite", email="jonas@uni.example",
                role="co_pi").status_code == 302
    invitation_mail = smtp_server.wait_for(1) and smtp_server.to("jonas@uni.example")[0]
    link = LINK.search(invitation_mail.get_content()).group(1)
    co_client, co_token = signed_in(app, co_pi)
    assert co_client.get(f"/proposals/{proposal_id}").status_code == 404  # not in the team yet
    assert "Accept the invitation" in co_client.get(link).get_data(as_text=True)
    assert post(co_client, co_token, link).status_code == 302
    assert co_client.get(f"/proposals/{proposal_id}").status_code == 200
    assert post(co_client, co_token, link).status_code == 409  # single use
    other_client, other_token = signed_in(app, late_pi)
    assert other_client.get(link).status_code == 404  # the link alone lets nobody else in

    # ... and submits; the PI and the peer-review office are told.
    assert post(client, token, f"/proposals/{proposal_id}/submit").status_code == 302
    smtp_server.wait_for(3)
    assert smtp_server.to("agnieszka@uni.example")[0]["Subject"].startswith("Proposal submitted")
    assert smtp_server.to(app.config["STAFF_EMAIL"])

    # The cut-off passes: a late submission is refused, clearly, and the submitted proposal is locked.
    with app.app_context():
        move_cut_off_to_the_past(db.session.get(Proposal, proposal_id).call)
        db.session.commit()
    refused = post(other_client, other_token, f"/proposals/{late_id}/submit")
    assert refused.status_code == 409
    assert "cut-off" in refused.get_data(as_text=True) and "can no longer be submitted" in refused.get_data(as_text=True)
    assert client.get(f"/proposals/{proposal_id}/edit").status_code == 302  # locked: back to the page
    with app.app_context():
        assert db.session.get(Proposal, late_id).state is ProposalState.DRAFT

    # Staff: admissible, technically feasible (recommending less CPU time), reviewers assigned.
    staff_client, staff_token = signed_in(app, staff)
    assert post(staff_client, staff_token, f"/proposals/{proposal_id}/admissibility", admissible="yes",
                comment="Eligible.").status_code == 302
    assert post(staff_client, staff_token, f"/proposals/{proposal_id}/technical", feasible="yes",
                comment="Scales well.", **{f"recommend-{cpu_id}": "15000"}).status_code == 302
    for reviewer in reviewers:
        assert post(staff_client, staff_token, f"/proposals/{proposal_id}/reviewers",
                    reviewer=str(reviewer[0])).status_code == 302
    with app.app_context():
        proposal = db.session.get(Proposal, proposal_id)
        assert proposal.state is ProposalState.IN_REVIEW
        assert proposal.request_for(cpu_id).recommended_minutes == 15000 * 60
        assignment_ids = [a.id for a in sorted(reviews_of(proposal), key=lambda a: a.reviewer_id)]
        _prepare_rival(rival_id, staff[0], reviewers[:2])
        db.session.commit()
    smtp_server.wait_for(6)
    for reviewer in reviewers:
        assert smtp_server.to(reviewer[1])[0]["Subject"].startswith("Review requested")

    # Reviewer 3 has a conflict and loses access at once; reviewers 1 and 2 score.
    r3_client, r3_token = signed_in(app, reviewers[2])
    assert "declare whether you have a conflict" in r3_client.get(f"/reviews/{assignment_ids[2]}").get_data(as_text=True)
    assert post(r3_client, r3_token, f"/reviews/{assignment_ids[2]}/conflict", conflict="conflict").status_code == 302
    assert r3_client.get(f"/reviews/{assignment_ids[2]}").status_code == 404
    assert r3_client.get(f"/api/reviews/{assignment_ids[2]}").status_code == 404
    assert "Łódź" not in r3_client.get("/reviews/").get_data(as_text=True)
    for reviewer, assignment_id, scores in ((reviewers[0], assignment_ids[0], "5"), (reviewers[1], assignment_ids[1], "4")):
        r_client, r_token = signed_in(app, reviewer)
        assert post(r_client, r_token, f"/reviews/{assignment_id}/score", score_excellence=scores).status_code == 409  # no declaration yet
        assert post(r_client, r_token, f"/reviews/{assignment_id}/conflict", conflict="none").status_code == 302
        assert "Justification" in r_client.get(f"/reviews/{assignment_id}").get_data(as_text=True)
        assert post(r_client, r_token, f"/reviews/{assignment_id}/score", score_excellence=scores, score_impact=scores,
                    score_implementation=scores, comment_applicant=f"Strong plan ({reviewer[0]}).",
                    comment_committee="SECRET committee note").status_code == 302

    # The reviews go to the PI, who sees no reviewer names nor committee comments, and replies.
    assert post(staff_client, staff_token, f"/proposals/{proposal_id}/release").status_code == 302
    page = client.get(f"/proposals/{proposal_id}").get_data(as_text=True)
    assert "Strong plan" in page and "SECRET" not in page
    for reviewer, name in zip(reviewers, reviewer_names):  # neither names nor addresses of the reviewers
        assert reviewer[1] not in page and name not in page
    assert "reviewer assigned" not in page  # staff-only history
    api_reviews = client.get(f"/api/proposals/{proposal_id}").get_json()["reviews"]
    assert len(api_reviews) == 2 and all(set(r) == {"scores", "comment_applicant"} for r in api_reviews)
    assert "reviewer" not in str(client.get(f"/api/proposals/{proposal_id}/history").get_json())
    assert post(client, token, f"/proposals/{proposal_id}/reply",
                reply="Dziękujemy! We will use 16 GPUs first.").status_code == 302
    staff_page = staff_client.get(f"/proposals/{proposal_id}").get_data(as_text=True)
    assert "SECRET committee note" in staff_page and reviewer_names[0] in staff_page and "Dziękujemy" in staff_page

    # The committee: best score first; GPU requests (6000 + 5000) exceed the 10000 offered.
    committee = staff_client.get(f"/calls/{call_id}/committee").get_data(as_text=True)
    ranking = committee[committee.index('id="ranking"'):]
    assert ranking.index("Łódź–Vilnius") < ranking.index("Rival")
    assert "1.10×" in committee and "oversubscribed" in committee
    api = staff_client.get(f"/api/calls/{call_id}/committee").get_json()
    assert [row["title"] for row in api["ranking"]] == ["Łódź–Vilnius language models", "Rival"]
    assert api["ranking"][0]["score"] == 4.5
    assert {d["partition_id"]: round(d["oversubscription"], 2) for d in api["demand"]}[gpu_id] == 1.1

    # The award: a grant with the hours and dates staff give, on a new project with the team.
    assert post(staff_client, staff_token, f"/proposals/{proposal_id}/award", start_date="2027-01-01",
                end_date="2027-12-31", **{f"award-{cpu_id}": "15000", f"award-{gpu_id}": "5000"}).status_code == 302
    with app.app_context():
        proposal = db.session.get(Proposal, proposal_id)
        grant = db.session.get(Grant, proposal.grant_id)
        assert proposal.state is ProposalState.AWARDED
        assert (grant.start_date, grant.end_date) == (date(2027, 1, 1), date(2027, 12, 31))
        assert {a.partition_id: a.awarded_minutes for a in grant.allocations} == {cpu_id: 15000 * 60, gpu_id: 5000 * 60}
        assert grant.project.code == "reg-2027-1-001"
        assert {m.user.email: m.role for m in grant.project.memberships} == {
            "agnieszka@uni.example": ProjectRole.PI, "jonas@uni.example": ProjectRole.CO_PI}
        assert db.session.scalar(select(AuditEvent).where(AuditEvent.action == "award.granted",
                                                          AuditEvent.target == f"proposal:{proposal_id}"))
    smtp_server.wait_for(9)
    subjects = [m["Subject"] for m in smtp_server.to("agnieszka@uni.example")]
    assert any(s.startswith("Reviews of") for s in subjects) and any(s.startswith("Compute awarded") for s in subjects)
    history = client.get(f"/proposals/{proposal_id}").get_data(as_text=True)
    for step in ("created", "invited", "submitted", "admissibility checked", "technically assessed",
                 "reviews released", "replied to reviews", "awarded"):
        assert f"<td>{step}</td>" in history


def _prepare_rival(rival_id: int, staff_id: int, reviewers) -> None:
    """The rival proposal goes through the same steps by the operations, with lower scores."""
    rival = db.session.get(Proposal, rival_id)
    staff = db.session.get(User, staff_id)
    decisions.check_admissibility(rival, staff, True)
    decisions.assess_technically(rival, staff, True)
    for reviewer_id, score in zip((r[0] for r in reviewers), (3, 2)):
        assignment = assign_reviewer(rival, staff, db.session.get(User, reviewer_id))
        declare_conflict(assignment, False)
        submit_review(assignment, dict.fromkeys(("excellence", "impact", "implementation"), score), "Weak.", "")


def test_technical_only_cycle_through_the_api(app, make_user, smtp_server):
    pi = make_user(Role.PI, name="Mantas Žukauskas", email="mantas@vu.example")
    co_pi = make_user(Role.MEMBER, name="Ona Co", email="ona@vu.example")
    late_pi = make_user(Role.PI)
    staff = make_user(Role.STAFF)
    reviewer = make_user(Role.REVIEWER)
    with app.app_context():
        cpu, gpu = make_site()
        call = make_call(cpu, gpu, code="dev-2027", workflow=ReviewWorkflow.TECHNICAL)
        late = ops.create_proposal(call, db.session.get(User, late_pi[0]), PROPOSAL_TEXT, {cpu.id: 10})
        db.session.commit()
        call_id, gpu_id, late_id = call.id, gpu.id, late.id

    client, token = signed_in(app, pi)
    headers = {"X-CSRFToken": token}
    assert client.get(f"/api/calls/{call_id}").get_json()["review_workflow"] == "technical"
    created = client.post("/api/proposals", json={"call_id": call_id, **PROPOSAL_TEXT, "requests": {str(gpu_id): 4000}},
                          headers=headers)
    assert created.status_code == 201, created.get_json()
    proposal_id = created.get_json()["id"]
    assert created.get_json()["state"] == "draft" and created.get_json()["storage_tib"] == 2.5
    assert client.post(f"/api/proposals/{proposal_id}/invitations", json={"email": "ona@vu.example", "role": "co_pi"},
                       headers=headers).status_code == 201
    smtp_server.wait_for(1)
    signed_token = LINK.search(smtp_server.to("ona@vu.example")[0].get_content()).group(1).rsplit("/", 1)[1]
    co_client, co_token = signed_in(app, co_pi)
    accepted = co_client.post("/api/proposals/invitations/accept", json={"token": signed_token},
                              headers={"X-CSRFToken": co_token})
    assert accepted.status_code == 200 and accepted.get_json()["id"] == proposal_id
    submitted = client.post(f"/api/proposals/{proposal_id}/submit", headers=headers)
    assert submitted.status_code == 200 and submitted.get_json()["state"] == "submitted"

    with app.app_context():
        move_cut_off_to_the_past(db.session.get(Proposal, proposal_id).call)
        db.session.commit()
    late_client, late_token = signed_in(app, late_pi)
    refused = late_client.post(f"/api/proposals/{late_id}/submit", headers={"X-CSRFToken": late_token})
    assert refused.status_code == 409 and "cut-off" in refused.get_json()["message"]
    patched = client.patch(f"/api/proposals/{proposal_id}", json={"title": "Changed"}, headers=headers)
    assert patched.status_code == 409 and "locked" in patched.get_json()["message"]

    staff_client, staff_token = signed_in(app, staff)
    sh = {"X-CSRFToken": staff_token}
    assert staff_client.post(f"/api/proposals/{proposal_id}/admissibility", json={"yes": True}, headers=sh).status_code == 200
    assessed = staff_client.post(f"/api/proposals/{proposal_id}/technical",
                                 json={"yes": True, "recommended_hours": {str(gpu_id): 3000}}, headers=sh)
    assert assessed.get_json()["state"] == "technically_assessed"
    no_review = staff_client.post(f"/api/proposals/{proposal_id}/reviewers", json={"reviewer_id": reviewer[0]}, headers=sh)
    assert no_review.status_code == 409  # a technical-only call has no peer review
    awarded = staff_client.post(f"/api/proposals/{proposal_id}/award", headers=sh, json={
        "start_date": "2027-02-01", "end_date": "2027-08-01", "hours": {str(gpu_id): 3000}})
    assert awarded.status_code == 200, awarded.get_json()
    body = awarded.get_json()
    assert body["state"] == "awarded" and body["grant_id"]
    with app.app_context():
        grant = db.session.get(Grant, body["grant_id"])
        assert [(a.partition_id, a.awarded_minutes) for a in grant.allocations] == [(gpu_id, 3000 * 60)]
        assert grant.start_date == date(2027, 2, 1) and grant.end_date == date(2027, 8, 1)
        assert grant.project.code == "dev-2027-001"
        assert len(grant.project.memberships) == 2
    history = client.get(f"/api/proposals/{proposal_id}/history").get_json()
    assert [e["action"] for e in history] == ["created", "invited", "invitation accepted", "submitted",
                                             "admissibility checked", "technically assessed", "awarded"]
    smtp_server.wait_for(4)
    assert [m["Subject"] for m in smtp_server.to("mantas@vu.example")] == [
        "Proposal submitted: Łódź–Vilnius language models", "Compute awarded: Łódź–Vilnius language models"]
    assert smtp_server.to(app.config["STAFF_EMAIL"])
