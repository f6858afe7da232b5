"""The error every operation of calls, proposals and reviews raises for bad input or a bad moment."""
from __future__ import annotations


class Problems(ValueError):
    """What is wrong, per field (``""`` for the whole thing); messages are for people.

    Raised before anything changes, so the caller shows the messages and nothing is stored.
    ``conflict`` marks a request that is fine in itself but not allowed in the current state.
    """

    def __init__(self, errors: dict[str, str], *, conflict: bool = False):
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))
        self.errors = errors
        self.conflict = conflict


def check(errors: dict[str, str], *, conflict: bool = False) -> None:
    if errors:
        raise Problems(errors, conflict=conflict)


def parse_hours(raw, field: str, errors: dict[str, str], *, allow_blank: bool = True) -> int | None:
    """Hours typed by a person or sent as JSON, as integer minutes; problems go into ``errors``."""
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
