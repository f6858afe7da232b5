from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask_babel import force_locale
from sqlalchemy import String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import utcnow
from portal.extensions import db
from portal.mail.smtp import MailError, send_message
from portal.transactions import after_commit_batch, unit_of_work

log = logging.getLogger(__name__)


class OutgoingMail(db.Model):
    __tablename__ = "outgoing_mail"

    id: Mapped[int] = mapped_column(primary_key=True)
    to_addresses: Mapped[str] = mapped_column(Text)  # comma-separated
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


def queue_mail(to: list[str] | str, subject: str, body: str) -> OutgoingMail:
    """Put a message in the outbox (flushes; sent once the caller's transaction commits)."""
    recipients = [to] if isinstance(to, str) else list(to)
    mail = OutgoingMail(to_addresses=", ".join(recipients), subject=subject[:300], body=body)
    db.session.add(mail)
    db.session.flush()
    after_commit_batch("mail", mail.id, _deliver_ids)  # everything the transaction queued, in one go
    return mail


def queue_mail_to(to: list[str] | str, compose: Callable[[], tuple[str, str]]) -> list[OutgoingMail]:
    """Queue a message written in each recipient's language: ``compose()`` returns
    ``(subject, body)`` and is called once per language among the recipients, with that
    language active (gettext, dates, numbers). An address with no account, or a person who
    chose no language, gets the default one."""
    by_locale: dict[str, list[str]] = {}
    for address in [to] if isinstance(to, str) else to:
        by_locale.setdefault(_locale_of_address(address), []).append(address)
    mails = []
    for locale, addresses in by_locale.items():
        with force_locale(locale):
            subject, body = compose()
        mails.append(queue_mail(addresses, subject, body))
    return mails


def _locale_of_address(address: str) -> str:
    from portal.i18n import DEFAULT_LOCALE, LOCALES
    from portal.identity.models import User

    chosen = db.session.scalar(select(User.locale).where(func.lower(User.email) == address.strip().lower()).limit(1))
    return chosen if chosen in LOCALES else DEFAULT_LOCALE


def _deliver(mails: list[OutgoingMail]) -> int:
    """Send each message and record the attempts, in one unit of work of its own: the rows
    send_pending locked stay locked until every one is recorded, so no other worker sends
    them meanwhile."""
    sent = 0
    with unit_of_work():
        for mail in mails:
            mail.attempts += 1
            try:
                send_message([a.strip() for a in mail.to_addresses.split(",")], mail.subject, mail.body)
            except MailError as exc:
                mail.last_error = str(exc)
                log.warning("mail %s not sent (attempt %d): %s", mail.id, mail.attempts, exc)
            else:
                mail.sent_at = utcnow()
                mail.last_error = None
                sent += 1
    return sent


def _deliver_ids(ids: list[int]) -> int:
    """Send the given queued messages (after the transaction that queued them committed)."""
    mails = db.session.scalars(select(OutgoingMail).where(OutgoingMail.id.in_(ids),
                                                          OutgoingMail.sent_at.is_(None))).all()
    return _deliver(list(mails))


def send_pending(limit: int = 500) -> int:
    """Retry unsent mail; rows another worker is sending are skipped, not sent twice."""
    query = (select(OutgoingMail).where(OutgoingMail.sent_at.is_(None)).order_by(OutgoingMail.id)
             .limit(limit).with_for_update(skip_locked=True))
    return _deliver(list(db.session.scalars(query)))
