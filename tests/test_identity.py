"""Local sign-in, roles, and what each role sees."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.identity.models import Role, User
from tests.conftest import csrf_token_from, sign_in


def test_password_is_stored_hashed_and_sign_in_works(app, client, make_user):
    _, email, password = make_user(Role.PI)
    with app.app_context():
        stored = db.session.scalar(select(User.password_hash).where(User.email == email))
    assert password not in stored and stored.startswith(("scrypt:", "pbkdf2:"))
    response = sign_in(client, email, password)
    assert response.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Principal investigator" in page


def test_wrong_password_is_refused_without_a_session(client, make_user):
    _, email, _ = make_user(Role.STAFF)
    response = sign_in(client, email, "not-the-password")
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302  # still anonymous


def test_sign_in_without_csrf_token_is_refused(client, make_user):
    _, email, password = make_user()
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_sign_out(client, make_user):
    _, email, password = make_user()
    sign_in(client, email, password)
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302


def test_next_parameter_cannot_redirect_off_site(client, make_user):
    _, email, password = make_user()
    page = client.get("/login?next=//evil.example/x")
    response = client.post("/login?next=//evil.example/x", data={
        "email": email, "password": password, "csrf_token": csrf_token_from(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/"


def test_navigation_follows_roles(client, make_user):
    _, email, password = make_user(Role.ADMIN)
    sign_in(client, email, password)
    assert 'href="/admin/users"' in client.get("/").get_data(as_text=True)
    client2 = client.application.test_client()
    _, email2, password2 = make_user(Role.MEMBER)
    sign_in(client2, email2, password2)
    assert 'href="/admin/users"' not in client2.get("/").get_data(as_text=True)


def test_admin_changes_roles_and_unix_name_with_validation(app, client, make_user):
    _, admin_email, admin_password = make_user(Role.ADMIN)
    target_id, _, _ = make_user(Role.MEMBER, name="Jūratė Žemaitytė")
    sign_in(client, admin_email, admin_password)
    form_page = client.get(f"/admin/users/{target_id}").get_data(as_text=True)
    assert "Jūratė Žemaitytė" in form_page  # text in any language shown intact
    token = csrf_token_from(form_page)
    bad = client.post(f"/admin/users/{target_id}", data={
        "csrf_token": token, "roles": ["member"], "unix_username": "x --uid=0"})
    assert bad.status_code == 200 and "Lower-case letters" in bad.get_data(as_text=True)
    ok = client.post(f"/admin/users/{target_id}", data={
        "csrf_token": token, "roles": ["member", "reviewer"], "unix_username": "jzemaityte"})
    assert ok.status_code == 302
    with app.app_context():
        user = db.session.get(User, target_id)
        assert user.roles == {Role.MEMBER, Role.REVIEWER}
        assert user.unix_username == "jzemaityte"
