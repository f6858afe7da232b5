"""Who owns a transaction: a web request, a CLI command, or one unit of work of the
reconciler service (one site reconciled, one message sent). Nothing else commits.

Rules (every ``operations`` module) add and flush, never commit: what a rule changes is real
only when its owner commits, and a failure anywhere in the owner rolls all of it back.
Work that may only happen once the change is real (sending mail) is queued with
:func:`after_commit`; :func:`commit` does it right after the commit and a rollback drops it.
So mail cannot leave for a change that was rolled back, by construction rather than by the
order in which hooks happen to be registered.

The web request's owner is :func:`finish_request` (an ``after_request`` hook): a response
under 400 commits, anything else rolls back, unless the view called :func:`keep_on_error`
(a failed Slurm call whose error note on the site must outlive the error response).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flask import g, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from portal.extensions import db

_AFTER_COMMIT = "after_commit"
_BATCHES = "after_commit_batches"
_WROTE = "wrote_uncommitted"


class UnfinishedWork(RuntimeError):
    """A unit of work was started while the caller's own changes were neither committed nor
    rolled back: committing them as a side effect would make them real too early."""


@event.listens_for(Session, "after_flush")
def _note_write(session, _flush_context) -> None:
    session.info[_WROTE] = True


@event.listens_for(Session, "after_commit")
def _forget_write(session) -> None:
    session.info.pop(_WROTE, None)


@event.listens_for(Session, "after_rollback")
def _forget_everything(session) -> None:
    # However the rollback came about (roll_back(), a view's own db.session.rollback(), the
    # session's removal at the end of a request), nothing queued for after the commit is left.
    session.info.pop(_WROTE, None)
    session.info.pop(_AFTER_COMMIT, None)
    session.info.pop(_BATCHES, None)


def require_clean_session() -> None:
    """Raise UnfinishedWork if this session holds changes its owner has not committed."""
    session = db.session()
    if session.new or session.dirty or session.deleted or session.info.get(_WROTE):
        raise UnfinishedWork("commit or roll back the current changes before starting a unit of work of its own")
    session.rollback()  # ends the read-only transaction, so the unit of work reads fresh data


def after_commit(action: Callable[[], object]) -> None:
    """Do ``action`` once the current transaction has committed; never if it rolls back."""
    db.session.info.setdefault(_AFTER_COMMIT, []).append(action)


def after_commit_batch(key: str, item: object, action: Callable[[list], object]) -> None:
    """Collect ``item`` under ``key``; once the transaction has committed, ``action`` runs once
    with everything collected under that key (e.g. every message a request queued, sent in
    one go); never if it rolls back."""
    batches = db.session.info.setdefault(_BATCHES, {})
    if key not in batches:
        batches[key] = []
        after_commit(lambda: action(batches.pop(key)))
    batches[key].append(item)


def commit() -> None:
    """Commit the owner's transaction, then do what it queued for after the commit."""
    db.session.commit()
    for action in db.session.info.pop(_AFTER_COMMIT, []):
        action()


def roll_back() -> None:
    """Roll the owner's transaction back, and forget what it queued for after the commit (the
    rollback listener above does that too, but only when a database transaction was open)."""
    db.session.rollback()
    _forget_everything(db.session())


@contextmanager
def unit_of_work() -> Iterator[None]:
    """A transaction owned by the block: committed at its end, rolled back on any exception
    (KeyboardInterrupt and SystemExit included: nothing half-done is kept)."""
    try:
        yield
    except BaseException:
        roll_back()
        raise
    commit()


def keep_on_error() -> None:
    """Keep this request's changes even though it answers with an error status."""
    if has_request_context():
        g.keep_transaction_on_error = True


def finish_request(response):
    """The web request's owner: commit when the response succeeded (or the view asked to keep
    its changes), else roll back; then what was queued for after the commit."""
    if response.status_code < 400 or g.pop("keep_transaction_on_error", False):
        commit()
    else:
        roll_back()
    return response
