"""Signing in through a real OpenID Connect provider on loopback, and every way it must be refused."""
from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from portal import create_app
from portal.audit.models import AuditEvent
from portal.extensions import db
from portal.identity.models import IdentityLink, Role, User
from tests.conftest import csrf_token_from
from tests.oidc_provider import OidcTestProvider, provider_answer


@pytest.fixture(scope="session")
def oidc_app(app: Flask, oidc_provider: OidcTestProvider, database_url: str, tmp_path_factory) -> Iterator[Flask]:
    """The portal with the test provider configured, on the same (migrated) database as ``app``."""
    oidc_app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True,
                           "INSTANCE_PATH": str(tmp_path_factory.mktemp("oidc-instance")),
                           "OIDC_PROVIDERS": [oidc_provider.portal_config()], "LOGIN_RATE_LIMIT": "10000/60"})
    yield oidc_app
    with oidc_app.app_context():
        db.engine.dispose()


@pytest.fixture
def idp(oidc_provider: OidcTestProvider, app) -> Iterator[OidcTestProvider]:
    # Depends on ``app`` so that the tables are emptied after the test.
    oidc_provider.reset()
    yield oidc_provider
    oidc_provider.reset()


def with_param(path: str, **changes: str) -> str:
    base, _sep, query = path.partition("?")
    params = {k: v[0] for k, v in parse_qs(query).items()}
    params.update(changes)
    return f"{base}?{urlencode(params)}"


def assert_refused(client, response, reason: str) -> None:
    page = response.get_data(as_text=True)
    assert response.status_code == 400, page
    assert "Sign-in refused" in page and reason in page
    assert client.get("/").status_code == 302  # no session


def audit_actions(app: Flask) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))


def test_first_sign_in_creates_the_user_linked_by_issuer_and_subject(oidc_app, idp):
    client = oidc_app.test_client()
    response = client.get(provider_answer(client))
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert "Eglė Šimkūnaitė" in client.get("/").get_data(as_text=True)
    with oidc_app.app_context():
        link = db.session.scalar(select(IdentityLink))
        assert (link.issuer, link.subject) == (idp.issuer, "a1b2c3-subject")
        user = link.user
        assert (user.email, user.name, user.affiliation) == ("egle@uni.example.lt", "Eglė Šimkūnaitė", "uni.example.lt")
        assert user.password_hash is None and user.roles == set() and user.email_verified
        # The federation vouches for the organisation it released.
        assert user.profile_source == "provider:test" and user.profile_verified_at is not None
        assert link.provider == "test" and link.last_sign_in_at is not None
    assert audit_actions(oidc_app) == ["user.created", "auth.sign_in"]


def test_the_link_is_the_subject_not_the_e_mail(oidc_app, idp, make_user):
    client = oidc_app.test_client()
    client.get(provider_answer(client))
    # The same person, whose provider now reports another, verified address: the same account,
    # kept up to date. An address the provider does not vouch for does not replace it.
    idp.user.update(email="egle.simkunaite@other.example", name="Eglė Šimkūnaitė-Kazlauskienė")
    client = oidc_app.test_client()
    assert client.get(provider_answer(client)).status_code == 302
    idp.user.update(email="unconfirmed@elsewhere.example", email_verified=False)
    client = oidc_app.test_client()
    assert client.get(provider_answer(client)).status_code == 302
    with oidc_app.app_context():
        user = db.session.scalar(select(User))
        assert db.session.scalar(select(func.count()).select_from(User)) == 1
        assert (user.email, user.email_verified) == ("egle.simkunaite@other.example", True)
        assert user.name == "Eglė Šimkūnaitė-Kazlauskienė"
    # Someone else at the provider claiming an existing local user's address gets no access to it.
    make_user(Role.ADMIN, email="admin@facility.example")
    idp.user = {"sub": "intruder", "name": "Intruder", "email": "admin@facility.example"}
    client = oidc_app.test_client()
    assert_refused(client, client.get(provider_answer(client)), "exists already")
    with oidc_app.app_context():
        assert db.session.scalar(select(IdentityLink).where(IdentityLink.subject == "intruder")) is None


def test_tampered_state_is_refused(oidc_app, idp):
    client = oidc_app.test_client()
    callback = with_param(provider_answer(client), state="forged-state")
    assert_refused(client, client.get(callback), "state does not match")
    assert audit_actions(oidc_app) == ["auth.sign_in_failed"]


def test_an_answer_from_another_browser_is_refused(oidc_app, idp):
    victim = oidc_app.test_client()
    callback = provider_answer(oidc_app.test_client())  # the attacker's own code and state
    assert_refused(victim, victim.get(callback), "state does not match")


def test_a_replayed_code_is_refused(oidc_app, idp):
    first = oidc_app.test_client()
    used = provider_answer(first)
    assert first.get(used).status_code == 302
    # The same answer again in the same browser: its state was used up.
    first.post("/logout", data={"csrf_token": _csrf(first)})
    assert_refused(first, first.get(used), "state does not match")
    # The used code under a fresh, valid state: the provider refuses to exchange it twice.
    second = oidc_app.test_client()
    fresh = provider_answer(second)
    replay = with_param(fresh, code=parse_qs(urlsplit(used).query)["code"][0])
    assert_refused(second, second.get(replay), "The identity provider refused")


def _csrf(client) -> str:
    return csrf_token_from(client.get("/").get_data(as_text=True))


@pytest.mark.parametrize(("misbehaviour", "value", "reason"), [
    ("nonce", "not-the-nonce-we-sent", "nonce does not match"),
    ("lifetime", -600, "ID token has expired"),
    ("foreign_key", True, "signature could not be verified"),
    ("issuer", "https://idp.attacker.example", "unknown issuer"),
])
def test_untrustworthy_id_tokens_are_refused(oidc_app, idp, misbehaviour, value, reason):
    setattr(idp.misbehave, misbehaviour, value)
    client = oidc_app.test_client()
    assert_refused(client, client.get(provider_answer(client)), reason)
    with oidc_app.app_context():
        assert db.session.scalar(select(User)) is None
        failure = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "auth.sign_in_failed"))
        assert reason in failure.details["reason"]


def test_an_unknown_provider_name_is_not_found(oidc_app, idp):
    assert oidc_app.test_client().get("/login/oidc/nobody").status_code == 404


def test_sign_in_page_offers_providers_and_local_sign_in_can_be_switched_off(oidc_app, idp, monkeypatch):
    client = oidc_app.test_client()
    page = client.get("/login").get_data(as_text=True)
    assert 'href="/login/oidc/test"' in page and 'name="password"' in page
    token = csrf_token_from(page)
    monkeypatch.setitem(oidc_app.config, "LOCAL_LOGIN_ENABLED", False)
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with Test IdP" in page and 'name="password"' not in page
    assert client.post("/login", data={"email": "a@b.example", "password": "x", "csrf_token": token}).status_code == 404


CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def portal_server(oidc_app) -> Iterator[str]:
    """The portal behind a real WSGI server on loopback, as a browser reaches it."""
    server = make_server("127.0.0.1", 0, oidc_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.mark.browser
def test_sign_in_through_the_full_redirect_flow_in_a_browser(portal_server, idp):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    csp_violations: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("console", lambda m: csp_violations.append(m.text) if "Content Security Policy" in m.text else None)
            page.goto(f"{portal_server}/projects/")
            assert "/login" in page.url
            page.get_by_role("link", name="Sign in with Test IdP").click()
            page.wait_for_url(f"{portal_server}/projects/")
            assert page.get_by_text("Eglė Šimkūnaitė").is_visible()
            page.screenshot(path=str(ARTIFACTS / "oidc-signed-in.png"), full_page=True)
            # Signing out goes through the provider, which ends its session, and comes back.
            page.get_by_role("button", name="Sign out").click()
            page.wait_for_url(f"{portal_server}/login?*")
            assert list(idp.sessions.values()) == [False]
            page.goto(f"{portal_server}/projects/")
            assert "/login" in page.url

            forged = browser.new_page()
            forged.goto(f"{portal_server}/login/oidc/test/callback?code=stolen&state=forged")
            assert forged.get_by_role("heading", name="Sign-in refused").is_visible()
            assert forged.get_by_text("state does not match").is_visible()
            forged.screenshot(path=str(ARTIFACTS / "oidc-refused.png"), full_page=True)
        finally:
            browser.close()
    assert csp_violations == []
