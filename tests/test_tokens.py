"""Personal API tokens: shown once, stored hashed, scoped, expiring, revocable."""
from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, text, update

from portal.audit.models import AuditEvent
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import ApiToken, Role, TokenScope, User
from portal.identity.tokens import create_token
from tests.conftest import csrf_token_from, sign_in

SECRET = re.compile(r'id="new-token">(hpcp_[A-Za-z0-9_-]+)<')


def new_token(app, user_id: int, scope: TokenScope = TokenScope.READ_WRITE, days: int = 30) -> tuple[int, str]:
    with app.app_context():
        token, secret = create_token(db.session.get(User, user_id), "test", scope, days)
        db.session.commit()
        return token.id, secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_token_is_shown_once_and_stored_only_as_a_digest(app, client, make_user):
    user_id, email, password = make_user(Role.MEMBER)
    sign_in(client, email, password)
    page = client.get("/account/tokens").get_data(as_text=True)
    created = client.post("/account/tokens", data={"csrf_token": csrf_token_from(page), "name": "Nešiojamas CLI",
                                                   "scope": "read", "days": "30"})
    assert created.headers["Cache-Control"] == "no-store"
    secret = SECRET.search(created.get_data(as_text=True)).group(1)
    assert secret not in client.get("/account/tokens").get_data(as_text=True)
    assert "Nešiojamas CLI" in client.get("/account/tokens").get_data(as_text=True)
    with app.app_context():
        dump = " ".join(str(v) for row in db.session.execute(text("SELECT * FROM api_tokens")) for v in row)
        token = db.session.scalar(select(ApiToken))
        assert token.scope is TokenScope.READ and token.expires_at > utcnow() + timedelta(days=29)
    assert secret not in dump and secret[5:] not in dump
    assert app.test_client().get("/api/me", headers=bearer(secret)).get_json()["email"] == email


def test_read_token_cannot_write(app, make_user):
    user_id, _, _ = make_user()
    token_id, secret = new_token(app, user_id, TokenScope.READ)
    api = app.test_client()
    assert api.get("/api/projects", headers=bearer(secret)).status_code == 200
    refused = api.delete(f"/api/tokens/{token_id}", headers=bearer(secret))
    assert refused.status_code == 403 and "may only read" in refused.get_json()["message"]
    with app.app_context():
        assert db.session.get(ApiToken, token_id).revoked_at is None


def test_revoked_and_expired_tokens_are_refused(app, make_user):
    user_id, _, _ = make_user()
    token_id, secret = new_token(app, user_id)
    api = app.test_client()
    assert api.delete(f"/api/tokens/{token_id}", headers=bearer(secret)).status_code == 204
    revoked = api.get("/api/me", headers=bearer(secret))
    assert revoked.status_code == 401 and "revoked" in revoked.get_json()["message"]
    assert revoked.headers["WWW-Authenticate"].startswith("Bearer")

    token_id, secret = new_token(app, user_id)
    with app.app_context():
        db.session.execute(update(ApiToken).where(ApiToken.id == token_id).values(expires_at=utcnow() - timedelta(minutes=1)))
        db.session.commit()
    expired = api.get("/api/me", headers=bearer(secret))
    assert expired.status_code == 401 and "expired" in expired.get_json()["message"]
    unknown = api.get("/api/me", headers=bearer("hpcp_" + "x" * 43))
    assert unknown.status_code == 401 and "not valid" in unknown.get_json()["message"]
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["token.created", "token.revoked", "token.refused", "token.created", "token.refused",
                       "token.refused"]


def test_a_token_cannot_make_more_tokens_but_a_session_can_with_csrf(app, client, make_user):
    user_id, email, password = make_user()
    _, secret = new_token(app, user_id)
    body = {"name": "ci", "scope": "read", "days": 7}
    minted = app.test_client().post("/api/tokens", json=body, headers=bearer(secret))
    assert minted.status_code == 403
    sign_in(client, email, password)
    assert client.post("/api/tokens", json=body).status_code == 400  # cookie without CSRF header
    csrf = csrf_token_from(client.get("/").get_data(as_text=True))
    created = client.post("/api/tokens", json=body, headers={"X-CSRFToken": csrf})
    assert created.status_code == 201 and created.get_json()["token"].startswith("hpcp_")
    assert "token" not in client.get("/api/tokens").get_json()[0]
    # A request may not carry both a session and a token: which would it be?
    assert client.get("/api/me", headers=bearer(secret)).status_code == 400


def test_only_the_owner_revokes_a_token(app, client, make_user):
    owner_id, _, _ = make_user()
    _, email, password = make_user(Role.ADMIN)
    token_id, _ = new_token(app, owner_id)
    sign_in(client, email, password)
    csrf = csrf_token_from(client.get("/").get_data(as_text=True))
    assert client.post(f"/account/tokens/{token_id}/revoke", data={"csrf_token": csrf}).status_code == 404


def test_token_failures_are_rate_limited_per_address(app, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "TOKEN_RATE_LIMIT", "3/300")
    user_id, _, _ = make_user()
    _, secret = new_token(app, user_id)
    api = app.test_client()
    for _attempt in range(3):
        assert api.get("/api/me", headers=bearer("hpcp_guess")).status_code == 401
    limited = api.get("/api/me", headers=bearer(secret))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many attempts" in limited.get_json()["message"]


def test_cli_creates_a_token(app, make_user):
    _, email, _ = make_user()
    result = app.test_cli_runner().invoke(args=["tokens", "create", "--email", email, "--scope", "read",
                                                "--days", "30"])
    assert result.exit_code == 0, result.output
    secret = result.stdout.strip().splitlines()[-1]
    assert app.test_client().get("/api/me", headers=bearer(secret)).get_json()["email"] == email
    too_long = app.test_cli_runner().invoke(args=["tokens", "create", "--email", email, "--days", "400"])
    assert too_long.exit_code != 0 and "1 to 365 days" in too_long.output
