"""Business rules about calls: seeding the access modes, opening calls."""
from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from portal.calls.models import AccessMode, Call, CallPartition, ReviewWorkflow, Track
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import User
from portal.problems import check, parse_hours
from portal.sites.models import Partition

log = logging.getLogger(__name__)

#: The EuroHPC-style access modes (see DOMAIN.md): name, review workflow, typical months.
DEFAULT_ACCESS_MODES = (
    ("Benchmark", ReviewWorkflow.TECHNICAL, 3, "Small; evidence for larger calls."),
    ("Development", ReviewWorkflow.TECHNICAL, 12, "Code development and porting."),
    ("Regular", ReviewWorkflow.FULL, 12, "Renewable; cut-off dates."),
    ("Extreme Scale", ReviewWorkflow.FULL, 12, "The largest awards."),
    ("AI Factory Playground", ReviewWorkflow.TECHNICAL, 3, "Onboarding; first come, first served."),
    ("AI Factory Fast Lane", ReviewWorkflow.TECHNICAL, 6, "Fast technical and light scientific review."),
    ("AI Factory Large Scale", ReviewWorkflow.FULL, 12, "Very large GPU-hour requests; full review."),
)

CODE_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,15}$")  # leaves room for "-NNN" in a 32-character project code
COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")


def seed_access_modes() -> list[AccessMode]:
    """Create the default access modes that are missing; running it again changes nothing."""
    existing = {m.name: m for m in db.session.scalars(select(AccessMode))}
    for name, workflow, months, description in DEFAULT_ACCESS_MODES:
        if name not in existing:
            existing[name] = AccessMode(name=name, review_workflow=workflow, typical_months=months,
                                        description=description)
            db.session.add(existing[name])
    db.session.flush()
    return sorted(existing.values(), key=lambda m: m.id)


def access_modes() -> list[AccessMode]:
    return list(db.session.scalars(select(AccessMode).order_by(AccessMode.id)))


def calls_visible_to(user: User, now: datetime | None = None) -> list[Call]:
    """Staff see every call; everyone else the calls that have opened."""
    query = select(Call).order_by(Call.opens_at.desc(), Call.id.desc())
    if not user.is_staff:
        query = query.where(Call.opens_at <= (now or utcnow()))
    return list(db.session.scalars(query).unique())


def visible_call(user: User, call_id: int) -> Call | None:
    call = db.session.get(Call, call_id)
    if call is None or (not user.is_staff and call.opens_at > utcnow()):
        return None
    return call


def create_call(*, code: str, title: str, access_mode: AccessMode | None, tracks: list[str],
                opens_at: datetime | None, closes_at: datetime | None, allocation_start: date | None,
                allocation_end: date | None, offers: dict[Any, tuple[Any, Any]],
                review_workflow: ReviewWorkflow | None = None, eligible_countries: Sequence[str] = (),
                description: str = "", min_reviewers: int = 2) -> Call:
    """Open a call; ``offers`` maps partition ids to (hours offered, most hours one proposal may ask).

    Every problem is reported at once, per field, and nothing is stored while any remains.
    """
    errors: dict[str, str] = {}
    code = (code or "").strip().lower()
    if not CODE_PATTERN.match(code):
        errors["code"] = _("2-16 lower-case letters, digits and '-', starting with a letter.")
    elif db.session.scalar(select(Call.id).where(Call.code == code)) is not None:
        errors["code"] = _("Another call has this code.")
    if not (title or "").strip():
        errors["title"] = _("Give the call a title.")
    if access_mode is None:
        errors["access_mode"] = _("Choose an access mode.")
    valid_tracks = {t.value for t in Track}
    if not tracks or any(t not in valid_tracks for t in tracks):
        errors["tracks"] = _("Choose at least one track.")
    countries = [c.strip().upper() for c in eligible_countries if c.strip()]
    if any(not COUNTRY_PATTERN.match(c) for c in countries):
        errors["eligible_countries"] = _("Two-letter country codes (ISO 3166), separated by commas.")
    if opens_at is None:
        errors["opens_at"] = _("When does the call open?")
    elif closes_at is not None and closes_at <= opens_at:
        errors["closes_at"] = _("The cut-off must come after the opening.")
    if allocation_start is None or allocation_end is None:
        errors["allocation_end"] = _("Give the allocation period.")
    elif allocation_end <= allocation_start:
        errors["allocation_end"] = _("The allocation period must end after it starts.")
    if min_reviewers is None or min_reviewers < 0 or min_reviewers > 10:
        errors["min_reviewers"] = _("Between 0 and 10 reviewers.")
    call_offers = _parse_offers(offers, errors)
    check(errors)
    assert access_mode is not None  # check() raised otherwise
    call = Call(code=code, title=title.strip(), description=description or "", access_mode=access_mode,
                review_workflow=review_workflow or access_mode.review_workflow, tracks=",".join(tracks),
                eligible_countries=",".join(countries), opens_at=opens_at, closes_at=closes_at,
                allocation_start=allocation_start, allocation_end=allocation_end, min_reviewers=min_reviewers,
                offers=call_offers)
    db.session.add(call)
    db.session.flush()
    log.info("call created code=%s mode=%s offers=%d", code, access_mode.name, len(call_offers))
    return call


def _parse_offers(offers: dict[Any, tuple[Any, Any]], errors: dict[str, str]) -> list[CallPartition]:
    result = []
    for raw_id, (offered, most) in offers.items():
        field = f"offer-{raw_id}"
        partition = db.session.get(Partition, raw_id) if str(raw_id).isdigit() and int(raw_id) < 2**31 else None
        if partition is None:
            errors[field] = _("There is no partition %(id)s.", id=raw_id)
            continue
        offered_minutes = parse_hours(offered, field, errors)
        max_minutes = parse_hours(most, f"max-{raw_id}", errors)
        if offered_minutes is None and max_minutes is None:
            continue  # not on offer
        if not offered_minutes or not max_minutes:
            errors.setdefault(field, _("Give both the hours offered and the most one proposal may ask for."))
            continue
        if max_minutes > offered_minutes:
            errors[f"max-{raw_id}"] = _("The most one proposal may ask for cannot exceed the hours offered.")
            continue
        result.append(CallPartition(partition=partition, offered_minutes=offered_minutes,
                                    max_request_minutes=max_minutes))
    if not result and not errors:
        errors["offers"] = _("Offer at least one partition.")
    return result
