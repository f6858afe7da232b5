"""The demo's mail sink: an SMTP server on loopback that keeps every message in a Maildir in the
instance folder, and reading that Maildir back for the staff page.

A Maildir, not a table: the sink is not the portal (it must not need the database), writes each
message atomically (tmp/ then new/), and a reader never sees half a message.
"""
from __future__ import annotations

import email
import mailbox
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.utils import parsedate_to_datetime
from pathlib import Path

from flask import current_app

#: Messages the staff page shows, newest first.
SHOWN = 100


def mailbox_path() -> Path:
    return Path(current_app.instance_path) / "demo-mail"


def mailbox_exists() -> bool:
    return (mailbox_path() / "new").is_dir()


class MaildirHandler:
    """aiosmtpd handler: every message accepted is added to the Maildir."""

    def __init__(self, path: Path):
        self.box = mailbox.Maildir(str(path), create=True)

    async def handle_DATA(self, server, session, envelope):
        self.box.add(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


@dataclass(frozen=True)
class CaughtMail:
    key: str
    sender: str
    to: str
    subject: str
    sent: datetime | None
    body: str


def _text_of(message) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    return part.get_content() if part is not None else ""


def caught_messages(limit: int = SHOWN) -> tuple[int, list[CaughtMail]]:
    """How many messages the sink caught, and the newest ``limit`` of them."""
    if not mailbox_exists():
        return 0, []
    folder = mailbox_path()
    files = sorted((p for sub in ("new", "cur") for p in (folder / sub).iterdir() if p.is_file()),
                   key=lambda p: p.stat().st_mtime, reverse=True)
    messages = []
    for path in files[:limit]:
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        try:
            sent = parsedate_to_datetime(message["Date"]) if message["Date"] else None
        except (TypeError, ValueError):
            sent = None
        messages.append(CaughtMail(path.name, str(message["From"] or ""), str(message["To"] or ""),
                                   str(message["Subject"] or ""), sent, _text_of(message)))
    return len(files), messages


def serve(host: str, port: int, path: Path) -> None:
    """Run the sink until SIGTERM or SIGINT."""
    import logging
    import signal
    import threading

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every SMTP command at INFO
    path.parent.mkdir(parents=True, exist_ok=True)  # the instance folder, on a first start
    controller = Controller(MaildirHandler(path), hostname=host, port=port)
    controller.start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
    finally:
        controller.stop()
