"""The security baseline: CSRF on every form, rate limits, headers and cookies, and the audit log."""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.audit.operations import record
from portal.extensions import db
from portal.identity.models import Role, User
from portal.identity.ratelimit import Limit, hit
from tests.access_matrix import ENDPOINTS, RUN_TOKEN, url_for_rule
from tests.conftest import csrf_token_from, sign_in

TEMPLATES = Path(__file__).resolve().parent.parent / "portal" / "templates"


def test_every_form_post_needs_a_csrf_token(app, make_user):
    admin_id, email, password = make_user(Role.ADMIN)
    ids = {"site_id": 1, "project_id": 1, "user_id": admin_id, "run_id": 1, "partition_id": 1,
           "token_id": 1, "name": "x", "call_id": 1, "proposal_id": 1, "assignment_id": 1, "token": "x",
           "job_id": 1, "template": "serial", "grant_id": 1, "request_id": 1, "acceptance_id": 1, "reference_id": 1}
    client = app.test_client()
    sign_in(client, email, password)
    for endpoint in sorted(ENDPOINTS):
        if ENDPOINTS[endpoint][0] == RUN_TOKEN:
            continue  # takes no cookie at all, only its run's upload token (a session gets 401: test_access)
        for rule in app.url_map.iter_rules(endpoint):
            for method in sorted(rule.methods & {"POST", "PUT", "PATCH", "DELETE"}):
                url = url_for_rule(app, endpoint, ids)
                response = client.open(url, method=method, data={})
                assert response.status_code == 400, f"{method} {url} accepted without a CSRF token"
    assert client.get("/").status_code == 200  # still signed in: every refusal was CSRF


def test_sign_in_is_rate_limited_per_address_and_account(app, make_user, monkeypatch):
    monkeypatch.setitem(app.config, "LOGIN_RATE_LIMIT", "3/300")
    _, email, password = make_user()
    _, other_email, other_password = make_user()
    client = app.test_client()
    for _attempt in range(3):
        assert sign_in(client, email, "wrong").status_code == 401
    limited = sign_in(client, email, password)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0
    assert "Too many attempts" in limited.get_data(as_text=True)
    assert client.get("/").status_code == 302  # the right password did not get in either
    assert sign_in(client, other_email, other_password).status_code == 302  # other accounts are not locked
    with app.app_context():
        actions = list(db.session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == ["auth.sign_in_failed"] * 3 + ["auth.rate_limited", "auth.sign_in"]


def test_rate_limit_counts_exactly_under_concurrency(app):
    """Counters are atomic in the database, so workers on several hosts share them."""
    results: list[bool] = []
    limit = Limit(10, 3600)

    def worker():
        with app.app_context():
            for _i in range(5):
                results.append(hit("concurrency-test", limit, now=1_000_000).allowed)

    threads = [threading.Thread(target=worker) for _t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 10 and results.count(False) == 20
    with app.app_context():
        assert hit("concurrency-test", limit, now=1_003_600).allowed  # a new window


def test_security_headers_and_cookies(app, client, make_user, monkeypatch):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response.headers  # plain HTTP in development
    _, email, password = make_user()
    cookie = sign_in(client, email, password).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    monkeypatch.setitem(app.config, "SESSION_COOKIE_SECURE", True)
    secure = app.test_client()
    assert secure.get("/login").headers["Strict-Transport-Security"].startswith("max-age=31536000")
    assert "Secure" in sign_in(secure, email, password).headers["Set-Cookie"]


def test_templates_have_no_inline_scripts_or_styles():
    for template in TEMPLATES.rglob("*.html"):
        source = template.read_text()
        for pattern in ("<script>", "<style", " style=", " onclick=", " onload=", "javascript:"):
            assert pattern not in source, f"{template.name} has {pattern!r}: the CSP forbids it"


def test_audit_log_records_sign_in_out_and_role_changes(app, client, make_user):
    admin_id, email, password = make_user(Role.ADMIN)
    target_id, _, _ = make_user(Role.MEMBER, name="Łukasz Żółć")
    sign_in(client, email, "wrong")
    sign_in(client, email, password)
    token = csrf_token_from(client.get(f"/admin/users/{target_id}").get_data(as_text=True))
    client.post(f"/admin/users/{target_id}", data={"csrf_token": token, "roles": ["member", "pi"],
                                                   "unix_username": "lzolc"})
    client.post("/logout", data={"csrf_token": token})
    with app.app_context():
        events = list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.id)))
    assert [e.action for e in events] == ["auth.sign_in_failed", "auth.sign_in", "user.roles_changed",
                                          "auth.sign_out"]
    change = events[2]
    assert change.actor_id == admin_id and change.target == f"user:{target_id}"
    assert change.details == {"before": {"roles": ["member"], "unix_username": None},
                              "after": {"roles": ["member", "pi"], "unix_username": "lzolc"}}
    assert events[0].actor_id is None and events[0].actor_label == email and events[0].ip_address


@pytest.fixture
def logged_events(app, make_user):
    staff_id, staff_email, staff_password = make_user(Role.STAFF, name="Staff Person")
    pi_id, _, _ = make_user(Role.PI, name="Žygimantas Šlapelis")
    with app.app_context():
        pi = db.session.get(User, pi_id)
        record("award.granted", pi, "proposal:7", {"note": "Skirta 1000 GPU valandų"})
        record("slurm.changed", None, "account:p-001", {"change": "GrpTRESMins"}, actor_label="reconciler")
        db.session.add(AuditEvent(action="auth.sign_in", actor_id=pi_id, target=f"user:{pi_id}",
                                   created_at=datetime(2020, 6, 1, 12, 0)))
        db.session.commit()
    return staff_email, staff_password


def test_staff_read_and_filter_the_audit_log(app, client, logged_events):
    staff_email, staff_password = logged_events
    sign_in(client, staff_email, staff_password)
    page = client.get("/audit").get_data(as_text=True)
    assert "Skirta 1000 GPU valandų" in page and "Žygimantas Šlapelis" in page and "reconciler" in page
    only_awards = client.get("/audit?action=award.granted").get_data(as_text=True)
    assert "proposal:7" in only_awards and "account:p-001" not in only_awards
    by_actor = client.get("/audit?actor=%C5%BEygimantas").get_data(as_text=True)  # "žygimantas"
    assert "proposal:7" in by_actor and "account:p-001" not in by_actor
    today = date.today().isoformat()
    in_2020 = client.get("/audit?since=2020-01-01&until=2020-12-31").get_data(as_text=True)
    assert "proposal:7" not in in_2020 and "Signed in" in in_2020
    recent = client.get(f"/audit?since={(date.today() - timedelta(days=1)).isoformat()}&until={today}")
    assert "proposal:7" in recent.get_data(as_text=True)
    assert client.get("/audit?since=not-a-date").status_code == 200


def test_nul_characters_are_refused_before_they_reach_the_database(app, client, make_user):
    _, email, password = make_user()
    sign_in(client, email, password)
    assert client.get("/api/projects?filter=%00").status_code == 400
    assert client.get("/projects/?q=a%00b").status_code == 400
