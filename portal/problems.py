"""The one way a rule says no: ``raise Problems(...)`` (or a feature's subclass of it).

Why one convention: the page, the JSON API and the CLI all call the same rules, and each
must show a refusal the same way — per field beside the form, as ``{"message", "errors"}``
in JSON, as lines on stderr. A rule that returned an error string, or raised an exception
with only a message, made every caller translate it on its own. So:

- A rule checks before it changes anything and raises :class:`Problems` with a message per
  field (``""`` for the request as a whole), in words for people, translatable.
- ``conflict=True`` marks a request that is fine in itself but not in the current state:
  someone else changed or decided it first (HTTP 409). Otherwise the input is wrong (422),
  unless a feature's subclass says otherwise (``status``).
- Features subclass it for callers that catch only their own (``GrantError``, ``TeamError``…).
- The outside world failing is not a refusal: Slurm, mail and identity providers raise their
  own errors (``SchedulerError``, ``MailError``…), which pages show as 503.

An uncaught Problems becomes the same answer everywhere (portal/web/errors.py), and the
request's transaction is rolled back (portal/transactions.py).
"""
from __future__ import annotations

from collections.abc import Mapping


class Problems(ValueError):
    """What is wrong, per field (``""`` for the whole thing); messages are for people.

    Raised before anything changes, so the caller shows the messages and nothing is stored.
    """

    #: The HTTP status of a refusal that is not a conflict (a subclass may say otherwise).
    status = 422
    #: Fine in itself but not now: someone else came first (a subclass may make it the default).
    conflict = False

    def __init__(self, errors: Mapping[str, str] | str, *, conflict: bool | None = None):
        # A message alone (a str, or a lazily translated one) is about the whole request.
        self.errors = dict(errors) if isinstance(errors, Mapping) else {"": errors}
        # str() is for people too (a flash, a CLI error line): the messages, without field keys.
        super().__init__(" ".join(str(message) for message in self.errors.values()))
        if conflict is not None:
            self.conflict = conflict

    @property
    def message(self) -> str:
        """One line for the whole refusal: the general message, else every field's."""
        return str(self.errors.get("") or self)

    @property
    def http_status(self) -> int:
        return 409 if self.conflict else self.status


def check(errors: dict[str, str], *, conflict: bool = False) -> None:
    """Raise the problems gathered in ``errors``, if any."""
    if errors:
        raise Problems(errors, conflict=conflict)


def parse_hours(raw, field: str, errors: dict[str, str], *, allow_blank: bool = True) -> int | None:
    """Hours typed by a person, sent as JSON or given to a rule, as integer minutes (how every
    budget is stored); problems go into ``errors`` under ``field``."""
    from flask_babel import gettext as _

    if raw is None or (isinstance(raw, str) and not raw.strip()):
        if not allow_blank:
            errors[field] = _("Enter a number of hours.")
        return None
    try:
        hours = float(str(raw).strip().replace(",", "."))
    except ValueError:
        errors[field] = _("Enter a number of hours, e.g. 1000.")
        return None
    if hours != hours or hours in (float("inf"), float("-inf")):
        errors[field] = _("Enter a number of hours, e.g. 1000.")
        return None
    if hours < 0:
        errors[field] = _("Hours cannot be negative.")
        return None
    if hours > 10**12:
        errors[field] = _("That is more hours than any system has.")
        return None
    return round(hours * 60)
