"""Staff administration of accounts: what the person's page shows, links, disabling, the CLI."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest
from flask import Flask
from sqlalchemy import insert, select

from portal import create_app
from portal.audit.models import AuditEvent
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import PendingChange
from portal.grants.operations import create_grant
from portal.grants.reconcile import desired_state
from portal.identity.models import IdentityLink, Role, RoleGrant, TokenScope, User
from portal.identity.operations import AccountError, disable_user, enable_user, link_identity
from portal.identity.providers import create_local_user
from portal.identity.tokens import create_token
from portal.projects.operations import add_member, create_project
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site
from tests.conftest import csrf_token_from, sign_in

ISSUER = "https://proxy.myaccessid.example/"
PROVIDERS = [{"name": "myaccessid", "label": "MyAccessID", "issuer": ISSUER, "client_id": "portal",
              "client_secret": "secret"},
             {"name": "keycloak", "label": "Institute Keycloak", "issuer": "https://sso.inst.example/realms/hpc",
              "client_id": "portal", "client_secret": "secret"}]


@pytest.fixture(scope="session")
def fed_app(app: Flask, database_url: str, tmp_path_factory) -> Iterator[Flask]:
    """The portal with two providers configured (never contacted here), on the same database as ``app``."""
    fed = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "OIDC_PROVIDERS": PROVIDERS,
                      "INSTANCE_PATH": str(tmp_path_factory.mktemp("fed-instance")), "LOGIN_RATE_LIMIT": "10000/60"})
    yield fed
    with fed.app_context():
        db.engine.dispose()


def signed_in(app: Flask, email: str, password: str):
    client = app.test_client()
    sign_in(client, email, password)
    return client


def post_form(client, url: str, page_url: str, **data):
    token = csrf_token_from(client.get(page_url).get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def federated_user(app: Flask, email: str, name: str, subject: str) -> int:
    """A person who signs in only through MyAccessID (no password)."""
    with app.app_context():
        user = create_local_user(email, name)
        db.session.add(IdentityLink(user=user, issuer=ISSUER, subject=subject, provider="myaccessid"))
        db.session.commit()
        return user.id


def test_staff_see_links_profile_verification_roles_and_state(fed_app, make_user):
    admin_id, _, _ = make_user(Role.ADMIN, name="Agnė Administratorė")
    _, staff_email, staff_password = make_user(Role.STAFF)
    person_id = federated_user(fed_app, "ona@vu.example", "Ona Petraitytė", "ona-sub-1")
    with fed_app.app_context():
        person = db.session.get(User, person_id)
        person.affiliation, person.country, person.orcid = "Vilniaus universitetas", "LT", "0000-0002-1825-0097"
        person.profile_source, person.profile_verified_at, person.profile_verified_by_id = "self", utcnow(), admin_id
        person.email_verified = False
        person.identity_links[0].last_sign_in_at = utcnow()
        person.grant(Role.MEMBER)
        person.role_grants.append(RoleGrant(role=Role.PI, source="oidc:myaccessid"))
        db.session.commit()

    client = signed_in(fed_app, staff_email, staff_password)
    assert 'href="/admin/users"' in client.get("/").get_data(as_text=True)
    page = client.get(f"/admin/users/{person_id}").get_data(as_text=True)
    for shown in ("MyAccessID (myaccessid)", ISSUER, "ona-sub-1", "Vilniaus universitetas", "Lithuania (LT)",
                  "given by the person", "by Agnė Administratorė", "0000-0002-1825-0097",
                  "not verified by the identity provider", "granted by staff", "from MyAccessID claims", "Active"):
        assert shown in page, shown
    # Staff may look, not change: no forms, and a post is refused.
    assert "Disable the account" not in page and "Link identity" not in page
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert client.post(f"/admin/users/{person_id}/disable", data={"csrf_token": token, "reason": "x"}).status_code == 403
    assert client.post(f"/admin/users/{person_id}", data={"csrf_token": token, "roles": ["admin"]}).status_code == 403


def test_admin_links_and_unlinks_identities_with_clear_refusals(fed_app, make_user):
    _, admin_email, admin_password = make_user(Role.ADMIN)
    ona_id = federated_user(fed_app, "ona@vu.example", "Ona Petraitytė", "ona-sub-1")
    jonas_id, _, _ = make_user(Role.MEMBER, name="Jonas Jonaitis", email="jonas@vu.example")
    client = signed_in(fed_app, admin_email, admin_password)
    jonas_page = f"/admin/users/{jonas_id}"

    linked = post_form(client, f"{jonas_page}/link", jonas_page, provider="keycloak", subject="jonas@inst")
    assert linked.status_code == 302
    page = client.get(jonas_page).get_data(as_text=True)
    assert "Linked keycloak subject jonas@inst." in page and "Institute Keycloak (keycloak)" in page

    # Ona's MyAccessID account cannot be linked to Jonas as well: the page says to whom it belongs.
    taken = post_form(client, f"{jonas_page}/link", jonas_page, provider="myaccessid", subject="ona-sub-1")
    assert taken.status_code == 409
    assert "already linked to Ona Petraitytė &lt;ona@vu.example&gt;" in taken.get_data(as_text=True)
    unknown = post_form(client, f"{jonas_page}/link", jonas_page, provider="nope", subject="x")
    assert unknown.status_code == 400 and "Not a valid choice" in unknown.get_data(as_text=True)

    # Ona has no password: her only link is not removed without "force".
    ona_page = f"/admin/users/{ona_id}"
    with fed_app.app_context():
        link_id = db.session.scalar(select(IdentityLink.id).where(IdentityLink.user_id == ona_id))
    refused = post_form(client, f"{ona_page}/unlink", ona_page, link_id=link_id)
    assert refused.status_code == 409 and "last way Ona Petraitytė" in refused.get_data(as_text=True)
    forced = post_form(client, f"{ona_page}/unlink", ona_page, link_id=link_id, force="y")
    assert forced.status_code == 302
    assert "No identity provider account is linked." in client.get(ona_page).get_data(as_text=True)
    # A second admin's click on the same, now stale, page: a conflict, not an error page.
    again = post_form(client, f"{ona_page}/unlink", ona_page, link_id=link_id, force="y")
    assert again.status_code == 409 and "someone else unlinked it meanwhile" in again.get_data(as_text=True)
    with fed_app.app_context():
        actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions.count("user.identity_linked") == 1 and actions.count("user.identity_unlinked") == 1


def test_two_staff_linking_one_identity_at_once_get_one_result_and_a_conflict(fed_app, make_user):
    """The database's unique (issuer, subject) decides: the second is told to whom it now belongs."""
    first_id, _, _ = make_user(name="First Person")
    second_id, _, _ = make_user(name="Second Person")
    with fed_app.app_context():
        with db.engine.connect() as other:
            pending = other.begin()  # another admin's request, not committed yet
            other.execute(insert(IdentityLink).values(user_id=first_id, issuer=ISSUER, subject="shared",
                                                      provider="myaccessid"))
            threading.Timer(0.5, pending.commit).start()
            with pytest.raises(AccountError, match="already linked to First Person") as refused:
                link_identity(db.session.get(User, second_id), "myaccessid", "shared", acting_user=None)
        assert refused.value.conflict
        db.session.rollback()
        assert [link.user_id for link in db.session.scalars(select(IdentityLink))] == [first_id]


def test_a_disabled_account_is_signed_out_its_token_refused_and_back_when_enabled(fed_app, make_user):
    admin_id, admin_email, admin_password = make_user(Role.ADMIN)
    person_id, email, password = make_user(Role.MEMBER, name="Rasa Rasaitė")
    with fed_app.app_context():
        _token, secret = create_token(db.session.get(User, person_id), "cli", TokenScope.READ, 30)
        db.session.commit()
    person = signed_in(fed_app, email, password)
    assert person.get("/").status_code == 200
    assert fed_app.test_client().get("/api/me", headers={"Authorization": f"Bearer {secret}"}).status_code == 200

    admin = signed_in(fed_app, admin_email, admin_password)
    page = f"/admin/users/{person_id}"
    assert post_form(admin, f"{page}/disable", page, reason="").status_code == 400
    assert post_form(admin, f"{page}/disable", page, reason="Left the institute").status_code == 302
    assert "because: Left the institute" in admin.get(page).get_data(as_text=True)
    # Another admin on a page loaded before: told it happened already.
    twice = post_form(admin, f"{page}/disable", page, reason="Duplicate")
    assert twice.status_code == 409 and "already disabled" in twice.get_data(as_text=True)
    own = f"/admin/users/{admin_id}"
    mine = post_form(admin, f"{own}/disable", own, reason="Oops")
    assert mine.status_code == 400 and "You cannot disable your own account." in mine.get_data(as_text=True)

    # The person's session ends at the next request; password and token no longer work.
    response = person.get("/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "Your account is disabled" in person.get("/login").get_data(as_text=True)
    assert sign_in(fed_app.test_client(), email, password).status_code == 401
    refused = fed_app.test_client().get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    assert refused.status_code == 401 and "disabled" in refused.get_json()["message"]

    assert post_form(admin, f"{page}/enable", page).status_code == 302
    assert signed_in(fed_app, email, password).get("/").status_code == 200
    with fed_app.app_context():
        actions = list(db.session.scalars(select(AuditEvent.action).where(AuditEvent.target == f"user:{person_id}")))
    assert {"user.disabled", "user.enabled"} <= set(actions)


def test_admin_verifies_a_profile_once(fed_app, make_user):
    _, admin_email, admin_password = make_user(Role.ADMIN, name="Agnė Administratorė")
    person_id, _, _ = make_user(name="Piotr Nowak")
    admin = signed_in(fed_app, admin_email, admin_password)
    page = f"/admin/users/{person_id}"
    nothing = post_form(admin, f"{page}/verify-profile", page)
    assert nothing.status_code == 400 and "no organisation or country to verify" in nothing.get_data(as_text=True)
    with fed_app.app_context():
        db.session.get(User, person_id).country = "PL"
        db.session.commit()
    assert "not verified" in admin.get(page).get_data(as_text=True)
    assert post_form(admin, f"{page}/verify-profile", page).status_code == 302
    assert "by Agnė Administratorė" in admin.get(page).get_data(as_text=True)
    again = post_form(admin, f"{page}/verify-profile", page)
    assert again.status_code == 409 and "already verified" in again.get_data(as_text=True)


def test_users_commands(fed_app, make_user):
    make_user(name="Ąžuolas Kazlauskas", email="azuolas@vu.example")
    federated_user(fed_app, "ona@vu.example", "Ona Petraitytė", "ona-sub-1")
    runner = fed_app.test_cli_runner()

    def run(*args):
        return runner.invoke(args=["users", *args])

    result = run("link", "azuolas@vu.example", "--provider", "keycloak", "--subject", "azuolas")
    assert result.exit_code == 0, result.output
    taken = run("link", "azuolas@vu.example", "--provider", "myaccessid", "--subject", "ona-sub-1")
    assert taken.exit_code == 1 and "already linked to Ona Petraitytė <ona@vu.example>" in taken.output
    assert "No identity provider named “github”" in run("link", "azuolas@vu.example", "--provider", "github",
                                                         "--subject", "x").output
    assert run("show", "nobody@vu.example").exit_code == 1

    shown = run("show", "azuolas@vu.example").output
    assert "Ąžuolas Kazlauskas <azuolas@vu.example>" in shown and "account:       active" in shown
    assert "Institute Keycloak (keycloak): issuer https://sso.inst.example/realms/hpc subject azuolas" in shown

    last = run("unlink", "ona@vu.example", "--provider", "myaccessid")
    assert last.exit_code == 1 and "last way Ona Petraitytė" in last.output
    assert run("unlink", "ona@vu.example", "--provider", "myaccessid", "--force").exit_code == 0
    assert run("unlink", "ona@vu.example", "--provider", "myaccessid").exit_code == 1

    assert run("disable", "azuolas@vu.example", "--reason", "Contract ended").exit_code == 0
    assert "disabled on" in run("show", "azuolas@vu.example").output
    again = run("disable", "azuolas@vu.example", "--reason", "x")
    assert again.exit_code == 1 and "already disabled" in again.output and "Contract ended" in again.output
    assert run("enable", "azuolas@vu.example").exit_code == 0
    assert "already active" in run("enable", "azuolas@vu.example").output

    assert "no organisation or country" in run("verify-profile", "azuolas@vu.example").output
    with fed_app.app_context():
        db.session.scalar(select(User).where(User.email == "azuolas@vu.example")).country = "LT"
        db.session.commit()
    assert run("verify-profile", "azuolas@vu.example").exit_code == 0
    assert "verified 20" in run("show", "azuolas@vu.example").output


def test_disabled_members_leave_slurm_and_come_back(app_ctx):
    """A disabled account has no associations in the desired state; disabling or enabling it
    marks its projects pending, so the next reconcile removes or restores them."""
    app_ctx.config["SLURM_TOP_ACCOUNT"] = "portal"
    site = create_site("Site", "sitea", slurm_conf="/nonexistent/slurm.conf")
    site.partitions.append(Partition(name="cpu", resource_kind=ResourceKind.CPU))
    db.session.flush()
    pi = create_local_user("pi@example.org", "Łukasz", unix_username="lukasz")
    member = create_local_user("m@example.org", "Žydrūnas", unix_username="zydrunas")
    project = create_project("p1", "One", pi)
    add_member(project, member)
    today = utcnow().date()
    create_grant(project, title="x", start_date=today, end_date=today + timedelta(days=5), hours={site.partitions[0]: 10})
    db.session.commit()
    db.session.execute(PendingChange.__table__.delete())
    db.session.commit()

    disable_user(member, "Left", acting_user=pi)
    db.session.commit()
    assert [(c.site_id, c.project_id) for c in db.session.scalars(select(PendingChange))] == [(site.id, project.id)]
    assert desired_state(site, today).users == {("p1_cpu", "lukasz", "cpu")}

    enable_user(member, acting_user=pi)
    db.session.commit()
    assert desired_state(site, today).users == {("p1_cpu", "lukasz", "cpu"), ("p1_cpu", "zydrunas", "cpu")}


def test_a_disabled_member_leaves_the_cluster_and_returns_when_enabled(cluster_site, slurm_scheduler):
    from portal.grants.operations import grants_of
    from portal.grants.reconcile import reconcile_site
    from tests.grant_world import partition, person, pool_account, project_with_team, slurm_associations, this_year

    pi, member = person("Paweł Żółć"), person("Rūta Šimkutė")
    project = project_with_team(pi, member)
    start, end = this_year()
    create_grant(project, title="Dev", start_date=start, end_date=end, hours={partition(cluster_site, "cpu"): 10})
    db.session.commit()
    assert reconcile_site(cluster_site, slurm_scheduler).run.succeeded
    account = pool_account(grants_of(project)[0], "cpu")
    assert (member.unix_username, "cpu") in slurm_associations(slurm_scheduler, account)

    disable_user(member, "Left the institute", acting_user=None)
    db.session.commit()
    assert reconcile_site(cluster_site, slurm_scheduler).run.succeeded
    assert set(slurm_associations(slurm_scheduler, account)) == {None, (pi.unix_username, "cpu")}

    enable_user(member, acting_user=None)
    db.session.commit()
    assert reconcile_site(cluster_site, slurm_scheduler).run.succeeded
    assert (member.unix_username, "cpu") in slurm_associations(slurm_scheduler, account)
