"""One owner per transaction: a request that fails leaves nothing behind and sends nothing,
and a unit of work of the reconciler refuses to commit its caller's unfinished changes."""
from __future__ import annotations

import pytest
from flask import abort
from sqlalchemy import func, select

from portal import create_app
from portal.extensions import db
from portal.identity.providers import create_local_user
from portal.mail import OutgoingMail, queue_mail_to
from portal.projects.models import Project
from portal.projects.operations import create_project
from portal.transactions import UnfinishedWork
from tests.conftest import sign_in


def _app_with_a_failing_route(database_url, tmp_path, failure):
    """The portal with one more route: it creates a project and mails its PI through the real
    rules, then fails the way ``failure`` says."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "PROPAGATE_EXCEPTIONS": False, "WTF_CSRF_ENABLED": False,
                      "INSTANCE_PATH": str(tmp_path), "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1"})

    def create_then_fail():
        pi = create_local_user("pi-tx@example.org", "Rūta Žemaitė", "secret", unix_username="rzemaite")
        create_project("tx-001", "Zażółć gęślą jaźń", pi)
        queue_mail_to(pi.email, lambda: ("Project created", "Your project tx-001 is ready."))
        if failure == "conflict":
            abort(409)
        raise RuntimeError("a bug after the mail was queued")

    app.add_url_rule("/test-create-then-fail", "create_then_fail", create_then_fail, methods=["POST"])
    return app


@pytest.mark.parametrize("failure,status", [("conflict", 409), ("bug", 500)])
def test_a_failing_request_leaves_no_row_and_sends_no_mail(app, database_url, tmp_path, smtp_server, make_user,
                                                          failure, status):
    _, email, password = make_user()
    failing = _app_with_a_failing_route(database_url, tmp_path, failure)
    failing.config.update(SMTP_HOST=app.config["SMTP_HOST"], SMTP_PORT=app.config["SMTP_PORT"])
    client = failing.test_client()
    sign_in(client, email, password)
    response = client.post("/test-create-then-fail")
    assert response.status_code == status
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Project)) == 0
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 0
    assert smtp_server.messages == []
    with failing.app_context():
        db.engine.dispose()


def test_the_same_request_that_succeeds_commits_and_then_mails(app, database_url, tmp_path, smtp_server, make_user):
    # The counterpart: the same rules in a request that answers 200 are kept, and the mail leaves.
    ok = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "TESTING": True, "WTF_CSRF_ENABLED": False, "INSTANCE_PATH": str(tmp_path),
                     "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1", "SMTP_HOST": app.config["SMTP_HOST"],
                     "SMTP_PORT": app.config["SMTP_PORT"]})

    def create():
        pi = create_local_user("pi-ok@example.org", "Rūta Žemaitė", "secret", unix_username="rzemaite2")
        create_project("tx-002", "Zażółć gęślą jaźń", pi)
        queue_mail_to(pi.email, lambda: ("Project created", "Your project tx-002 is ready."))
        return "created"

    ok.add_url_rule("/test-create", "create", create, methods=["POST"])
    _, email, password = make_user()
    client = ok.test_client()
    sign_in(client, email, password)
    assert client.post("/test-create").status_code == 200
    (message,) = smtp_server.wait_for(1)
    assert message["Subject"] == "Project created"
    with app.app_context():
        assert db.session.scalar(select(Project.title).where(Project.code == "tx-002")) == "Zażółć gęślą jaźń"
    with ok.app_context():
        db.engine.dispose()


def test_reconciling_refuses_the_callers_unfinished_changes(app_ctx):
    from portal.grants.reconcile import reconcile_site
    from portal.sites.operations import create_site

    site = create_site("Unfinished", "unfinished")
    db.session.commit()
    pi = create_local_user("pi-unfinished@example.org", "Jonas Jonaitis", "secret")
    db.session.flush()  # written but not committed
    with pytest.raises(UnfinishedWork):
        reconcile_site(site)
    db.session.rollback()
    assert db.session.get(type(pi), pi.id) is None  # nothing was committed on the caller's behalf
