"""Mail leaves only after the change it reports is committed, and is never lost."""
from __future__ import annotations

from sqlalchemy import select

from portal.extensions import db
from portal.mail import OutgoingMail, queue_mail, send_pending
from portal.transactions import commit


def test_queued_mail_is_sent_after_commit_with_text_intact(app_ctx, smtp_server):
    queue_mail(["pi@example.org"], "Wniosek złożony — Paraiška pateikta", "Dziękujemy, Agnieszka Wiśniewska.")
    assert smtp_server.messages == []  # nothing leaves before the commit
    commit()
    message = smtp_server.wait_for(1)[0]
    assert message["Subject"] == "Wniosek złożony — Paraiška pateikta"
    assert "Agnieszka Wiśniewska" in message.get_content()
    assert db.session.scalar(select(OutgoingMail)).sent_at is not None


def test_rolled_back_change_sends_nothing(app, client, smtp_server):
    with app.test_request_context():
        queue_mail("x@example.org", "never", "never")
        db.session.rollback()  # any rollback, not only the owner's roll_back(), drops what was queued
        commit()  # a later commit of the same session sends nothing that was rolled back
    assert smtp_server.messages == []
    with app.app_context():
        assert db.session.scalar(select(OutgoingMail)) is None


def test_mail_refused_by_the_server_waits_in_the_outbox(app, app_ctx, smtp_server):
    working_port = app.config["SMTP_PORT"]
    app.config["SMTP_PORT"] = 1  # nothing listens there
    queue_mail("pi@example.org", "Decision", "Awarded.")
    commit()  # the server refuses: the change stays committed, the message waits
    pending = db.session.scalar(select(OutgoingMail))
    assert pending.sent_at is None and pending.attempts == 1 and "SMTP" in pending.last_error
    app.config["SMTP_PORT"] = working_port
    result = app.test_cli_runner().invoke(args=["mail", "send-pending"])
    assert "Sent 1 message" in result.output
    assert [m["Subject"] for m in smtp_server.wait_for(1)] == ["Decision"]
    assert send_pending() == 0  # nothing is sent twice
