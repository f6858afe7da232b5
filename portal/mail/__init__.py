"""Outgoing e-mail through an outbox.

Mail is written to the ``outgoing_mail`` table in the same transaction as the change it
reports, and handed to SMTP only after that transaction commits (``portal.transactions``): a rolled-back change sends
nothing, and a message SMTP refused stays in the outbox for ``flask mail send-pending``.
Messages to people are written in each recipient's language (``queue_mail_to``).
"""
from portal.mail.outbox import OutgoingMail, queue_mail, queue_mail_to, send_pending

__all__ = ["OutgoingMail", "queue_mail", "queue_mail_to", "send_pending"]
