"""The person's own profile page, and where its country and e-mail count: eligibility, invitations."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.identity.models import Role, User
from portal.identity.operations import AccountError, normalise_orcid
from portal.projects.models import ProjectRole
from portal.proposals import operations as ops
from portal.proposals.models import Invitation
from tests.conftest import csrf_token_from, sign_in
from tests.proposal_support import PROPOSAL_TEXT, make_call, make_site

UNIVERSITY = "Uniwersytet Łódzki — 東京大学 joint lab"


def signed_in(app, email, password):
    client = app.test_client()
    sign_in(client, email, password)
    return client


def save_profile(client, **fields):
    token = csrf_token_from(client.get("/account/profile").get_data(as_text=True))
    return client.post("/account/profile", data={"csrf_token": token, **fields})


def stored(app, user_id) -> User:
    with app.app_context():
        user = db.session.get(User, user_id)
        db.session.expunge(user)
        return user


def test_profile_page_saves_organisation_country_and_orcid(app, make_user):
    user_id, email, password = make_user(Role.MEMBER)
    client = signed_in(app, email, password)
    assert 'href="/account/profile"' in client.get("/").get_data(as_text=True)
    page = client.get("/account/profile").get_data(as_text=True)
    assert '<option value="PL">Poland</option>' in page and '<option value="EU">' not in page

    response = save_profile(client, affiliation=UNIVERSITY, country="PL", orcid="https://orcid.org/0000-0002-1694-233x")
    assert response.status_code == 302
    page = client.get("/account/profile").get_data(as_text=True)
    assert "Profile saved." in page and UNIVERSITY in page and 'value="0000-0002-1694-233X"' in page
    assert '<option selected value="PL">Poland</option>' in page
    user = stored(app, user_id)
    assert (user.affiliation, user.country, user.orcid, user.profile_source) == (UNIVERSITY, "PL", "0000-0002-1694-233X",
                                                                                 "self")
    assert user.profile_verified_at is None


def test_orcid_checksum_and_country_code_are_checked(app, make_user):
    user_id, email, password = make_user()
    client = signed_in(app, email, password)
    wrong = save_profile(client, affiliation="Lab", country="PL", orcid="0000-0002-1825-0098")
    assert wrong.status_code == 422
    assert "0000-0002-1825-0098 is not a valid ORCID iD: its check digit does not match" in wrong.get_data(as_text=True)
    assert "looks like 0000-0002-1825-0097" in save_profile(client, orcid="1234").get_data(as_text=True)
    for code in ("XX", "EU", "pl; drop"):
        refused = save_profile(client, affiliation="Lab", country=code)
        assert refused.status_code == 422 and "is not an ISO 3166-1 country code" in refused.get_data(as_text=True)
    assert (stored(app, user_id).affiliation, stored(app, user_id).orcid) == ("", None)  # nothing saved
    assert normalise_orcid("0000000218250097") == "0000-0002-1825-0097"
    with pytest.raises(AccountError):
        normalise_orcid("0000-0002-1825-009")


def test_changing_organisation_or_country_drops_staff_verification(app, make_user):
    admin_id, _, _ = make_user(Role.ADMIN)
    user_id, email, password = make_user()
    with app.app_context():
        user = db.session.get(User, user_id)
        user.affiliation, user.country, user.profile_source = "Lab", "PL", "staff"
        user.profile_verified_at, user.profile_verified_by_id = db.func.now(), admin_id
        db.session.commit()
    client = signed_in(app, email, password)
    assert "verified on" in client.get("/account/profile").get_data(as_text=True)
    assert save_profile(client, affiliation="Lab", country="PL", orcid="0000-0002-1825-0097").status_code == 302
    assert stored(app, user_id).profile_verified_at is not None  # only the ORCID iD changed
    assert stored(app, user_id).profile_source == "staff"
    assert save_profile(client, affiliation="Lab", country="LT", orcid="0000-0002-1825-0097").status_code == 302
    user = stored(app, user_id)
    assert (user.country, user.profile_source, user.profile_verified_at, user.profile_verified_by_id) == (
        "LT", "self", None, None)
    assert "not verified by the facility staff yet" in client.get("/account/profile").get_data(as_text=True)


def test_what_the_identity_provider_supplies_is_read_only(app, make_user):
    user_id, email, password = make_user()
    with app.app_context():
        user = db.session.get(User, user_id)
        user.affiliation, user.country, user.profile_source = "Vilniaus universitetas", "LT", "provider:myaccessid"
        user.profile_verified_at = db.func.now()
        db.session.commit()
    client = signed_in(app, email, password)
    page = client.get("/account/profile").get_data(as_text=True)
    assert "supplied by your identity provider, myaccessid" in page and "Lithuania (LT)" in page
    assert 'name="affiliation"' not in page and 'name="country"' not in page
    # A forged post cannot change them; the ORCID iD is the person's own.
    response = save_profile(client, affiliation="Elsewhere", country="PL", orcid="0000-0002-1825-0097")
    assert response.status_code == 302
    user = stored(app, user_id)
    assert (user.affiliation, user.country, user.orcid) == ("Vilniaus universitetas", "LT", "0000-0002-1825-0097")
    assert user.profile_verified_at is not None


@pytest.fixture
def draft(app, make_user):
    """A PI with a complete draft for a call open to Polish organisations only, and a staff member."""
    pi = make_user(Role.PI, name="Agnieszka Wiśniewska")
    staff = make_user(Role.STAFF)
    with app.app_context():
        cpu, gpu = make_site()
        call = make_call(cpu, gpu, countries=["PL"])
        proposal = ops.create_proposal(call, db.session.get(User, pi[0]), dict(PROPOSAL_TEXT), {cpu.id: 100})
        db.session.commit()
        return pi, staff, proposal.id


def submit(client, proposal_id):
    token = csrf_token_from(client.get(f"/proposals/{proposal_id}").get_data(as_text=True))
    return client.post(f"/proposals/{proposal_id}/submit", data={"csrf_token": token})


def test_eligibility_uses_the_profile_country(app, draft):
    pi, _staff, proposal_id = draft
    client = signed_in(app, pi[1], pi[2])
    unset = submit(client, proposal_id)
    assert unset.status_code in (409, 422)
    assert "country is not set: set it on your profile page (/account/profile)" in unset.get_data(as_text=True)
    save_profile(client, affiliation="Politechnika Łódzka", country="LT")
    assert "your organisation&#39;s country is LT" in submit(client, proposal_id).get_data(as_text=True)
    save_profile(client, affiliation="Politechnika Łódzka", country="PL")
    assert submit(client, proposal_id).status_code == 302  # self-declared is enough by default


def test_eligibility_can_require_a_verified_country(app, draft, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "ELIGIBILITY_REQUIRES_VERIFIED_PROFILE", True)
    pi, staff, proposal_id = draft
    _, admin_email, admin_password = make_user(Role.ADMIN)
    client = signed_in(app, pi[1], pi[2])
    save_profile(client, affiliation="Politechnika Łódzka", country="PL")
    refused = submit(client, proposal_id)
    assert refused.status_code in (409, 422)
    assert "the facility staff have not verified it yet" in refused.get_data(as_text=True)

    # Staff see on the proposal that the PI's country is the PI's own word.
    staff_client = signed_in(app, staff[1], staff[2])
    assert "self-declared, not verified" in staff_client.get(f"/proposals/{proposal_id}").get_data(as_text=True)
    admin = signed_in(app, admin_email, admin_password)
    page = f"/admin/users/{pi[0]}"
    token = csrf_token_from(admin.get(page).get_data(as_text=True))
    assert admin.post(f"{page}/verify-profile", data={"csrf_token": token}).status_code == 302
    detail = staff_client.get(f"/proposals/{proposal_id}").get_data(as_text=True)
    assert "Politechnika Łódzka, PL" in detail and ">verified<" in detail
    assert submit(client, proposal_id).status_code == 302


def test_an_unverified_address_cannot_accept_an_invitation(app, draft, make_user):
    pi, _staff, proposal_id = draft
    invitee_id, email, password = make_user(Role.MEMBER, email="ona@vu.example")
    with app.app_context():
        proposal = ops.visible_proposal(db.session.get(User, pi[0]), proposal_id)
        ops.invite_member(proposal, proposal.pi, email, ProjectRole.MEMBER)
        token = ops._serializer().dumps(db.session.scalar(select(Invitation.nonce)))
        db.session.get(User, invitee_id).email_verified = False
        db.session.commit()
    client = signed_in(app, email, password)
    message = "was not confirmed by your identity provider"
    page = client.get(f"/proposals/invitations/{token}").get_data(as_text=True)
    assert message in page and "Accept the invitation" not in page
    posted = client.post(f"/proposals/invitations/{token}", data={"csrf_token": csrf_token_from(page)})
    assert posted.status_code == 409 and message in posted.get_data(as_text=True)
    api = client.post("/api/proposals/invitations/accept", json={"token": token},
                      headers={"X-CSRFToken": csrf_token_from(page)})
    assert api.status_code == 409 and message in str(api.get_json())
    with app.app_context():
        assert db.session.scalar(select(Invitation.accepted_at)) is None
        db.session.get(User, invitee_id).email_verified = True
        db.session.commit()
    page = client.get(f"/proposals/invitations/{token}").get_data(as_text=True)
    assert client.post(f"/proposals/invitations/{token}",
                       data={"csrf_token": csrf_token_from(page)}).status_code == 302
