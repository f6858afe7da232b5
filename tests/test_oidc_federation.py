"""A federation switched on: providers that hang, many colleagues behind one address, claims
from userinfo, unverified addresses, roles and country from claims, and signing out at the provider.

Everything runs against the project's own OpenID Connect provider (tests/oidc_provider.py) on
loopback; the hanging provider is a real socket that accepts connections and never answers.
"""
from __future__ import annotations

import html
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from flask import Flask
from sqlalchemy import select

from portal import create_app
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.identity.models import IdentityLink, Role, User
from portal.identity.oidc import ProviderConfigError, parse_providers
from tests.oidc_provider import OidcTestProvider, provider_answer
from tests.proposal_support import PROPOSAL_TEXT, make_call, make_site

ROOT = Path(__file__).resolve().parent.parent
ENTITLEMENT_STAFF = "urn:geant:ai-factory.example.eu:group:staff#aai.example.eu"


@pytest.fixture
def idp(oidc_provider: OidcTestProvider, app) -> Iterator[OidcTestProvider]:
    oidc_provider.reset()
    yield oidc_provider
    oidc_provider.reset()


@pytest.fixture
def make_app(app: Flask, database_url: str, tmp_path) -> Iterator:
    """Portal apps on the test database with their own provider settings and rate limits."""
    made: list[Flask] = []

    def factory(providers: list[dict], **config) -> Flask:
        portal = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
                             "INSTANCE_PATH": str(tmp_path / f"instance-{len(made)}"),
                             "OIDC_PROVIDERS": providers, **config})
        made.append(portal)
        return portal

    yield factory
    for portal in made:
        with portal.app_context():
            db.engine.dispose()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections (the kernel's backlog) and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    yield listener.getsockname()[1]
    listener.close()


def sign_in(portal: Flask, name: str = "test"):
    client = portal.test_client()
    return client, client.get(provider_answer(client, name))


def test_userinfo_supplies_what_the_id_token_leaves_out(make_app, idp):
    portal = make_app([idp.portal_config()], LOGIN_RATE_LIMIT="1000/60")
    idp.misbehave.claims_in_userinfo_only = True
    signed_in_client, response = sign_in(portal)
    assert response.status_code == 302, response.get_data(as_text=True)
    with portal.app_context():
        user = db.session.scalar(select(User))
        assert (user.email, user.name, user.affiliation) == ("egle@uni.example.lt", "Eglė Šimkūnaitė", "uni.example.lt")
    # Userinfo about someone else is not used, whatever it says.
    idp.misbehave.userinfo_sub = "someone-else"
    idp.user["sub"] = "second-person"
    client, response = sign_in(portal)
    assert response.status_code == 400 and "belong to another person" in response.get_data(as_text=True)


def test_an_unverified_address_is_stored_but_not_trusted(make_app, idp, make_user):
    portal = make_app([idp.portal_config(), idp.portal_config(name="assumed", client_id="portal-assumed",
                                                               email_verified="assumed")],
                      LOGIN_RATE_LIMIT="1000/60")
    idp.user.pop("email_verified")
    assert sign_in(portal)[1].status_code == 302
    idp.user.update(sub="second", email="second@uni.example.lt")
    assert sign_in(portal, "assumed")[1].status_code == 302
    with portal.app_context():
        verified = dict(db.session.execute(select(User.email, User.email_verified)).all())
    assert verified == {"egle@uni.example.lt": False, "second@uni.example.lt": True}
    # An unverified address that someone else holds gets no access to their account.
    make_user(Role.PI, email="pi@facility.example")
    idp.user.update(sub="third", email="pi@facility.example", email_verified=False)
    client, response = sign_in(portal)
    assert response.status_code == 400 and "exists already" in response.get_data(as_text=True)
    with portal.app_context():
        assert db.session.scalar(select(IdentityLink).where(IdentityLink.subject == "third")) is None


def test_an_unverified_address_cannot_accept_an_invitation(make_app, idp, make_user):
    from portal.projects.models import ProjectRole
    from portal.proposals import operations as ops

    portal = make_app([idp.portal_config()], LOGIN_RATE_LIMIT="1000/60")
    idp.user["email_verified"] = False
    client, response = sign_in(portal)
    assert response.status_code == 302
    pi_id = make_user(Role.PI, email="pi@facility.example")[0]
    with portal.app_context():
        cpu, gpu = make_site()
        proposal = ops.create_proposal(make_call(cpu, gpu), db.session.get(User, pi_id), PROPOSAL_TEXT, {gpu.id: 100})
        invitation = ops.invite_member(proposal, db.session.get(User, pi_id), "egle@uni.example.lt",
                                       ProjectRole.MEMBER)
        token = ops._serializer().dumps(invitation.nonce)
        db.session.commit()
    response = client.post("/api/proposals/invitations/accept", json={"token": token},
                           headers={"X-CSRFToken": _csrf(client)})
    assert response.status_code in (403, 409, 422), response.get_data(as_text=True)
    assert "confirm" in response.get_json()["message"] or "verified" in response.get_data(as_text=True)


def _csrf(client) -> str:
    from tests.conftest import csrf_token_from

    return csrf_token_from(client.get("/").get_data(as_text=True))


def test_entitlements_map_to_roles_and_a_lost_entitlement_takes_the_role_away(make_app, idp):
    rules = [{"claim": "eduperson_entitlement", "value": "urn:geant:ai-factory.example.eu:group:staff#*",
              "role": "staff"},
             {"claim": "eduperson_entitlement", "value": "urn:geant:ai-factory.example.eu:group:admins#*",
              "role": "admin"}]
    portal = make_app([idp.portal_config(roles=rules)], LOGIN_RATE_LIMIT="1000/60")
    idp.user["eduperson_entitlement"] = [ENTITLEMENT_STAFF, "urn:geant:other.example:group:x"]
    client, response = sign_in(portal)
    assert response.status_code == 302
    # Staff pages open with no local password anywhere.
    assert client.get("/slurm/status").status_code == 200
    with portal.app_context():
        user_id = db.session.scalar(select(User.id))
    verify = f"/admin/users/{user_id}/verify-profile"
    assert client.post(verify, data={"csrf_token": _csrf(client)}).status_code == 403  # an admin's action
    with portal.app_context():
        user = db.session.scalar(select(User))
        assert {(g.role, g.source) for g in user.role_grants} == {(Role.STAFF, "oidc:test")}
        user.grant(Role.REVIEWER)  # granted by staff by hand: the provider does not own it
        db.session.commit()
    # The first admin of a federated site comes from the federation too.
    idp.user["eduperson_entitlement"] = "urn:geant:ai-factory.example.eu:group:admins#aai.example.eu"
    client, response = sign_in(portal)
    assert client.post(verify, data={"csrf_token": _csrf(client)}).status_code in (302, 409)
    with portal.app_context():
        assert db.session.scalar(select(User)).roles == {Role.ADMIN, Role.REVIEWER}
    idp.user.pop("eduperson_entitlement")
    client, response = sign_in(portal)
    assert client.get("/slurm/status").status_code == 403
    with portal.app_context():
        assert db.session.scalar(select(User)).roles == {Role.REVIEWER}
        actions = [e.details for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "user.roles_from_claims").order_by(AuditEvent.id))]
    assert [(a["added"], a["removed"]) for a in actions] == [(["staff"], []), (["admin"], ["staff"]), ([], ["admin"])]


def test_an_oidc_pi_with_country_from_claims_submits_to_a_call_for_that_country(make_app, idp):
    from portal.problems import Problems
    from portal.proposals import operations as ops

    rules = [{"claim": "eduperson_entitlement", "value": "urn:geant:*:res:pi", "role": "pi"}]
    portal = make_app([idp.portal_config(roles=rules, country_from_organisation_domain=True,
                                         claims={"organisation": "voperson_external_affiliation"})],
                      LOGIN_RATE_LIMIT="1000/60")
    idp.user.pop("schac_home_organization")
    idp.user.update(voperson_external_affiliation="faculty@ktu.example.lt",
                    eduperson_entitlement="urn:geant:ai-factory.example.eu:res:pi")
    client, response = sign_in(portal)
    assert response.status_code == 302
    with portal.app_context():
        pi = db.session.scalar(select(User))
        assert (pi.affiliation, pi.country, pi.profile_verified) == ("ktu.example.lt", "LT", True)
        assert pi.has_role(Role.PI)
        cpu, gpu = make_site()
        for_lithuania = make_call(cpu, gpu, code="lt-2027", countries=("LT", "PL"))
        for_finland = make_call(cpu, gpu, code="fi-2027", countries=("FI",))
        accepted = ops.create_proposal(for_lithuania, pi, PROPOSAL_TEXT, {gpu.id: 100})
        ops.submit_proposal(accepted, pi)
        refused = ops.create_proposal(for_finland, pi, PROPOSAL_TEXT, {gpu.id: 100})
        with pytest.raises(Problems) as problems:
            ops.submit_proposal(refused, pi)
        assert "your organisation's country is LT" in str(problems.value.errors)
        assert accepted.state.value == "submitted"


@pytest.fixture
def gunicorn_portal(database_url: str, app, tmp_path, silent_port) -> Iterator[str]:
    """The portal under gunicorn with two sync workers and a provider that never answers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    providers = [{"name": "silent", "label": "Silent IdP", "issuer": f"http://127.0.0.1:{silent_port}",
                  "client_id": "portal", "client_secret": "s", "connect_timeout": 1, "timeout": 1.5}]
    env = {**os.environ, "DATABASE_URL": database_url, "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
           "PORTAL_OIDC_PROVIDERS": json.dumps(providers)}
    log = open(tmp_path / "gunicorn.log", "w+")
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", "2", "--timeout", "30", "-b",
                                f"127.0.0.1:{port}", "portal:create_app()"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(f"{base}/login", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # not listening yet, or still booting
                if time.monotonic() > deadline or process.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"gunicorn did not start: {log.read()}")
                time.sleep(0.2)
        gunicorn_portal.log_path = tmp_path / "gunicorn.log"
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.seek(0)
        gunicorn_portal.log = log.read()
        log.close()


def gunicorn_portal_log() -> str:
    return gunicorn_portal.log_path.read_text(errors="replace")[-6000:]


def test_a_provider_that_never_answers_gives_a_clear_page_in_time_and_workers_keep_serving(gunicorn_portal):
    def attempt(_n):
        started = time.monotonic()
        answer = requests.get(f"{gunicorn_portal}/login/oidc/silent", allow_redirects=False, timeout=60)
        return answer, time.monotonic() - started

    with ThreadPoolExecutor(4) as pool:
        hanging = [pool.submit(attempt, n) for n in range(3)]
        time.sleep(0.3)
        # Both workers may be busy with the silent provider for its timeout, not for gunicorn's 30 s.
        started = time.monotonic()
        login = requests.get(f"{gunicorn_portal}/login", timeout=60)
        login_seconds = time.monotonic() - started
        results = [future.result() for future in hanging]
    # gunicorn's log (a traceback behind a 500 is there) is part of the failure message.
    assert login.status_code == 200 and login_seconds < 5, (
        login.status_code, login_seconds, gunicorn_portal_log())
    for answer, seconds in results:
        assert answer.status_code == 502 and "could not be reached" in answer.text
        assert seconds < 6, seconds  # 1 s to connect + 1.5 s to read, and a queue of two workers
    # The worker that met the silent provider does not ask it again at once: the next attempt is quick.
    answer, seconds = attempt(0)
    assert answer.status_code == 502 and seconds < 1.2, seconds


def test_a_token_endpoint_that_stalls_is_bounded_and_logged(make_app, idp, caplog):
    portal = make_app([idp.portal_config(timeout=1)], LOGIN_RATE_LIMIT="1000/60")
    idp.misbehave.token_delay = 3
    client = portal.test_client()
    callback = provider_answer(client)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="portal.identity.oidc"):
        response = client.get(callback)
    assert time.monotonic() - started < 2.5
    assert response.status_code == 502 and "could not be reached" in response.get_data(as_text=True)
    assert any("OIDC provider test" in r.getMessage() and "ReadTimeout" in r.getMessage() for r in caplog.records)


def test_fifty_colleagues_behind_one_address_sign_in_while_failures_stay_limited(make_app, idp):
    portal = make_app([idp.portal_config()], LOGIN_RATE_LIMIT="10/300")  # the production default
    for n in range(50):
        idp.user.update(sub=f"colleague-{n}", email=f"colleague{n}@uni.example.lt", name=f"Colleague {n}")
        client, response = sign_in(portal)
        assert response.status_code == 302, (n, response.get_data(as_text=True))
    # Forged answers (an error, a state of nobody's sign-in) cost nobody anything.
    stranger = portal.test_client()
    for _ in range(30):
        assert stranger.get("/login/oidc/test/callback?error=access_denied&state=x").status_code == 400
        assert stranger.get("/login/oidc/test/callback?code=stolen&state=forged").status_code == 400
    # One browser whose sign-ins keep failing is stopped after ten failures ...
    idp.misbehave.nonce = "not-the-nonce"
    failing = portal.test_client()
    statuses = [failing.get(provider_answer(failing)).status_code for _ in range(11)]
    assert statuses == [400] * 10 + [429]
    # ... while the colleague at the next desk signs in.
    idp.misbehave.nonce = None
    idp.user.update(sub="colleague-51", email="colleague51@uni.example.lt")
    assert sign_in(portal)[1].status_code == 302


def test_local_sign_in_counts_failures_only(make_app, make_user):
    portal = make_app([], LOGIN_RATE_LIMIT="3/300")
    make_user(Role.PI, email="pi@facility.example")
    from tests.conftest import csrf_token_from

    def attempt(password: str) -> int:
        client = portal.test_client()
        token = csrf_token_from(client.get("/login").get_data(as_text=True))
        return client.post("/login", data={"email": "pi@facility.example", "password": password,
                                           "csrf_token": token}).status_code

    assert [attempt("pi") for _ in range(6)] == [302] * 6
    assert [attempt("wrong") for _ in range(4)] == [401, 401, 401, 429]


def test_logout_ends_the_session_at_the_provider(make_app, idp):
    portal = make_app([idp.portal_config()], LOGIN_RATE_LIMIT="1000/60")
    client, response = sign_in(portal)
    assert response.status_code == 302 and idp.sessions and all(idp.sessions.values())
    response = client.post("/logout", data={"csrf_token": _csrf(client)})
    page = response.get_data(as_text=True)
    location = html.unescape(re.search(r'id="provider-logout" href="([^"]+)"', page).group(1))
    assert 'http-equiv="refresh"' in page and "signed out of the portal" in page
    target = urlsplit(location)
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{idp.issuer}/logout"
    query = parse_qs(target.query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/login"] and query["client_id"] == ["portal"]
    assert query["id_token_hint"][0].count(".") == 2
    back = requests.get(location, allow_redirects=False, timeout=10)
    assert back.status_code == 302 and back.headers["Location"].startswith("http://localhost/login?")
    assert list(idp.sessions.values()) == [False]  # the provider's session has ended
    assert client.get("/").status_code == 302  # and the portal's


def test_provider_options_reach_the_provider(make_app, idp):
    portal = make_app([idp.portal_config(token_endpoint_auth_method="client_secret_post", discovery_ttl=0)],
                      LOGIN_RATE_LIMIT="1000/60")
    before = idp.discovery_reads
    for _ in range(2):
        assert sign_in(portal)[1].status_code == 302
    assert idp.token_auth_methods == ["client_secret_post"] * 2
    assert idp.discovery_reads - before >= 2  # read again: its time to live is 0
    cached = make_app([idp.portal_config(name="cached", client_id="cached")], LOGIN_RATE_LIMIT="1000/60")
    before = idp.discovery_reads
    for _ in range(3):
        assert sign_in(cached, "cached")[1].status_code == 302
    assert idp.discovery_reads - before == 1
    assert idp.token_auth_methods[-1] == "client_secret_basic"


@pytest.mark.parametrize(("entry", "message"), [
    ({"client_secert": "x"}, "unknown key 'client_secert' (did you mean 'client_secret'?)"),
    ({"issuer": "http://idp.example.org"}, "'issuer' must use https"),
    ({"token_endpoint_auth_method": "private_key_jwt"}, "'token_endpoint_auth_method' must be one of"),
    ({"timeout": 0}, "'timeout' must be a number of seconds"),
    ({"roles": [{"claim": "groups", "value": "staff", "role": "boss"}]}, "unknown role 'boss'"),
    ({"claims": {"organization": "o"}}, "unknown entry 'organization' in 'claims' (did you mean 'organisation'?)"),
    ({"email_verified": "sometimes"}, "'email_verified' must be one of required, assumed"),
])
def test_configuration_mistakes_stop_the_app_with_the_provider_and_key_named(entry, message):
    base = {"name": "myaccessid", "issuer": "https://proxy.myaccessid.example/", "client_id": "c",
            "client_secret": "s"}
    if "client_secert" in entry:
        base.pop("client_secret")
    with pytest.raises(ProviderConfigError) as error:
        parse_providers([{**base, **entry}])
    assert str(error.value).startswith("PORTAL_OIDC_PROVIDERS[0] ('myaccessid'): ")
    assert message in str(error.value)


def test_an_issuer_that_differs_by_a_slash_is_named_in_the_log(make_app, idp, caplog):
    portal = make_app([idp.portal_config(issuer=idp.issuer + "/")], LOGIN_RATE_LIMIT="1000/60")
    with caplog.at_level(logging.WARNING, logger="portal.identity.oidc"):
        response = portal.test_client().get("/login/oidc/test")
    assert response.status_code == 502 and "names another issuer" in response.get_data(as_text=True)
    assert any("differ only in the trailing slash" in r.getMessage() and repr(idp.issuer) in r.getMessage()
               for r in caplog.records)


def test_oidc_check_reports_each_provider(make_app, idp, silent_port):
    portal = make_app([idp.portal_config(),
                       {"name": "silent", "issuer": f"http://127.0.0.1:{silent_port}", "client_id": "c",
                        "client_secret": "s", "connect_timeout": 0.5, "timeout": 0.5}])
    result = portal.test_cli_runner().invoke(args=["oidc", "check"])
    output = result.output  # stdout and stderr together
    assert result.exit_code == 1
    assert "test (Test IdP)" in output and "OK: 1 signing key(s), userinfo: yes, logout: yes" in output
    assert "silent (silent)" in output and "FAILED" in output


def test_the_readme_example_configuration_is_accepted():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Connecting a federation"):]
    example = section[section.index("```json") + len("```json"):section.index("```", section.index("```json") + 7)]
    (provider,) = parse_providers(example)
    assert provider.issuer == "https://proxy.myaccessid.org/" and provider.country_from_organisation_domain
    assert {rule.role for rule in provider.roles} == {Role.ADMIN, Role.STAFF, Role.REVIEWER, Role.PI}
    assert provider.claims["organisation"] == ("schac_home_organization", "voperson_external_affiliation")
