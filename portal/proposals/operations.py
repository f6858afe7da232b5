"""Business rules of the applicant's side: drafting, the team, evidence, submission, history.

Staff steps (admissibility, technical assessment, decision) are in :mod:`portal.proposals.decisions`.
Every function flushes and never commits; every change is written to the proposal's history.
"""
from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any, cast

from flask import current_app
from flask_babel import format_decimal
from flask_babel import gettext as _
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import CursorResult, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value

from portal.calls.models import Call
from portal.clock import utcnow
from portal.extensions import db
from portal.formatting import format_moment, format_number
from portal.identity.models import User
from portal.problems import Problems, check, parse_hours
from portal.projects.models import ProjectRole
from portal.proposals import notifications
from portal.proposals.models import EvidenceFile, Invitation, Proposal, ProposalEvent, ProposalRequest, ProposalState

log = logging.getLogger(__name__)

TEXT_FIELDS = {"title": 300, "abstract": 20000, "field_of_science": 200, "track": 32, "justification": 20000,
               "code_description": 20000, "scaling_evidence": 20000}
#: Filled in before a proposal may be submitted.
REQUIRED_FIELDS = ("title", "abstract", "field_of_science", "track", "justification", "code_description")
ALLOWED_EVIDENCE_TYPES = {"application/pdf", "text/csv", "text/plain", "image/png", "image/jpeg", "application/json"}


def record_event(proposal: Proposal, actor: User | None, action: str, changes: dict[str, Any] | None = None,
                 *, staff_only: bool = False) -> ProposalEvent:
    event = ProposalEvent(proposal_id=proposal.id, actor=actor, action=action, changes=changes or {},
                          staff_only=staff_only, at=utcnow())
    db.session.add(event)
    db.session.flush()
    log.info("proposal=%s %s by=%s %s", proposal.id, action, actor.id if actor else None, changes)
    return event


def claim_state(proposal: Proposal, state: ProposalState) -> ProposalState:
    """Move the proposal from the state it was read in to ``state``, unless someone else moved it
    meanwhile (then :class:`Problems` with ``conflict``, and nothing changed). Returns the old state.

    A compare-and-set UPDATE, the same on SQLite and PostgreSQL: of two steps at once (two staff
    awarding, an award and a reply), the second waits for the row, then finds the state changed
    and updates nothing. The state loaded earlier is never written back blindly.
    """
    read, now = proposal.state, utcnow()
    result = db.session.execute(
        update(Proposal).where(Proposal.id == proposal.id, Proposal.state == read)
        .values(state=state, updated_at=now).execution_options(synchronize_session=False))
    moved = cast("CursorResult[Any]", result).rowcount  # an UPDATE's result counts its rows
    if moved != 1:
        changed_meanwhile(proposal)
    # What the UPDATE stored, without marking the proposal changed (no second UPDATE at the flush).
    set_committed_value(proposal, "state", state)
    set_committed_value(proposal, "updated_at", now)
    return read


def changed_meanwhile(proposal: Proposal):
    """Refuse a step because the proposal's state changed since it was read (HTTP 409)."""
    now = db.session.scalar(select(Proposal.state).where(Proposal.id == proposal.id))
    raise Problems({"": _("Someone else changed this proposal meanwhile: it is now %(state)s. Nothing was changed; "
                          "reload the proposal and try again if still needed.", state=now.label if now else "")}, conflict=True)


def history_for(proposal: Proposal, user: User) -> list[ProposalEvent]:
    query = select(ProposalEvent).where(ProposalEvent.proposal_id == proposal.id)
    if not user.is_staff:
        query = query.where(ProposalEvent.staff_only.is_(False))
    return list(db.session.scalars(query.order_by(ProposalEvent.at, ProposalEvent.id)))


def proposals_visible_to(user: User) -> list[Proposal]:
    query = select(Proposal).order_by(Proposal.id.desc())
    if not user.is_staff:
        accepted = select(Invitation.proposal_id).where(Invitation.accepted_by_id == user.id)
        query = query.where(or_(Proposal.pi_id == user.id, Proposal.id.in_(accepted)))
    return list(db.session.scalars(query).unique())


def visible_proposal(user: User, proposal_id: int) -> Proposal | None:
    proposal = db.session.get(Proposal, proposal_id)
    return proposal if proposal is not None and proposal.can_view(user) else None


def create_proposal(call: Call, pi: User, data: dict[str, Any], requests: dict[Any, Any] | None = None,
                    now: datetime | None = None) -> Proposal:
    now = now or utcnow()
    if not call.accepts_submissions(now):
        raise Problems({"": _("This call is not open for proposals.")}, conflict=True)
    proposal = Proposal(call=call, pi=pi, state=ProposalState.DRAFT, created_at=now, updated_at=now)
    _apply(proposal, data, requests or {})  # raises before anything is added
    db.session.add(proposal)
    db.session.flush()
    record_event(proposal, pi, "created", {"title": proposal.title})
    return proposal


def update_proposal(proposal: Proposal, actor: User, data: dict[str, Any], requests: dict[Any, Any] | None,
                    now: datetime | None = None) -> dict[str, Any]:
    """Change a draft (or a submitted proposal before the cut-off); returns what changed."""
    now = now or utcnow()
    if proposal.is_locked(now):
        raise Problems({"": _("This proposal is locked: the call's cut-off has passed or it is under assessment.")},
                       conflict=True)
    changes = _apply(proposal, data, requests)
    if changes:
        proposal.updated_at = now
        db.session.flush()
        record_event(proposal, actor, "edited", changes)
    return changes


def _apply(proposal: Proposal, data: dict[str, Any], requests: dict[Any, Any] | None) -> dict[str, Any]:
    """Validate everything first, then change; returns {field: [old, new]}."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    for name, limit in TEXT_FIELDS.items():
        if name in data and data[name] is not None:
            value = str(data[name]).strip()
            if len(value) > limit:
                errors[name] = _("At most %(n)d characters.", n=limit)
            values[name] = value
    if values.get("track") and values["track"] not in {t.value for t in proposal.call.track_list}:
        errors["track"] = _("Choose one of the call's tracks.")
    if "storage_tib" in data and data["storage_tib"] not in (None, ""):
        try:
            tib = float(str(data["storage_tib"]).replace(",", "."))
            if not tib >= 0 or tib > 100_000:
                raise ValueError
            values["storage_gib"] = round(tib * 1024)
        except ValueError:
            errors["storage_tib"] = _("Storage in TiB: a number of zero or more.")
    new_requests = _parse_requests(proposal.call, requests, errors) if requests is not None else None
    check(errors)
    changes = {}
    for name, value in values.items():
        old = getattr(proposal, name)
        if old != value:
            changes[name] = [_short(old), _short(value)]
            setattr(proposal, name, value)
    if new_requests is not None:
        for offer, minutes in new_requests.items():
            existing = proposal.request_for(offer.partition_id)
            old = existing.requested_minutes if existing else 0
            if old == minutes:
                continue
            changes[f"hours {offer.partition.label}"] = [old / 60, minutes / 60]
            if existing is None:
                proposal.requests.append(ProposalRequest(partition=offer.partition, requested_minutes=minutes))
            elif minutes == 0:
                proposal.requests.remove(existing)
            else:
                existing.requested_minutes = minutes
    return changes


def _short(value: Any) -> Any:
    return value[:200] + "…" if isinstance(value, str) and len(value) > 200 else value


def _parse_requests(call: Call, requests: dict[Any, Any], errors: dict[str, str]) -> dict:
    """{partition id: hours} → {offer: minutes}; unknown partitions, negatives and excess are errors."""
    parsed = {}
    for raw_id, hours in requests.items():
        field = f"request-{raw_id}"
        offer = call.offer_for(int(raw_id)) if str(raw_id).isdigit() and len(str(raw_id)) < 10 else None
        if offer is None:
            errors[field] = _("Partition %(id)s is not offered in this call.", id=str(raw_id)[:20])
            continue
        minutes = parse_hours(hours, field, errors)
        if minutes is None:
            minutes = 0 if field not in errors else None
        if minutes is None:
            continue
        if minutes > offer.max_request_minutes:
            unit = _("GPU-hours") if offer.partition.resource_kind.value == "gpu" else _("core-hours")
            errors[field] = _("At most %(max)s %(unit)s may be requested on %(partition)s.",
                              max=format_number(offer.max_request_hours), unit=unit, partition=offer.partition.label)
            continue
        parsed[offer] = minutes
    for offer in call.offers:
        parsed.setdefault(offer, 0)
    return parsed


def attach_evidence(proposal: Proposal, actor: User, filename: str, content_type: str, data: bytes,
                    now: datetime | None = None) -> EvidenceFile:
    now = now or utcnow()
    if proposal.is_locked(now):
        raise Problems({"evidence": _("This proposal is locked.")}, conflict=True)
    limit = current_app.config["PROPOSAL_UPLOAD_MAX_BYTES"]
    content_type = (content_type or "").split(";")[0].strip().lower()
    if len(data) > limit:
        raise Problems({"evidence": _("The file is %(size)s MiB; at most %(limit)s MiB may be uploaded.",
                                      size=format_decimal(len(data) / 2**20, "0.0"), limit=format_number(limit / 2**20))})
    if not data:
        raise Problems({"evidence": _("The file is empty.")})
    if content_type not in ALLOWED_EVIDENCE_TYPES:
        raise Problems({"evidence": _("Upload a PDF, CSV, text, JSON, PNG or JPEG file.")})
    safe_name = (filename or "evidence").replace("/", "_").replace("\\", "_")[-200:]
    if proposal.evidence is None:
        proposal.evidence = EvidenceFile(filename=safe_name, content_type=content_type, size=len(data), data=data)
    else:
        proposal.evidence.filename, proposal.evidence.content_type = safe_name, content_type
        proposal.evidence.size, proposal.evidence.data, proposal.evidence.uploaded_at = len(data), data, now
    db.session.flush()
    record_event(proposal, actor, "evidence uploaded", {"file": safe_name, "bytes": len(data)})
    return proposal.evidence


def submission_problems(proposal: Proposal, now: datetime) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not proposal.call.accepts_submissions(now):
        errors[""] = _("The call's cut-off (%(when)s UTC) has passed: proposals can no longer be submitted.",
                       when=format_moment(proposal.call.closes_at))
        return errors
    for name in REQUIRED_FIELDS:
        if not getattr(proposal, name):
            errors[name] = _("Required before submission.")
    if not any(r.requested_minutes > 0 for r in proposal.requests):
        errors["requests"] = _("Ask for time on at least one partition.")
    if not proposal.scaling_evidence and proposal.evidence is None:
        errors["scaling_evidence"] = _("Give scaling evidence as numbers or upload a file.")
    refusal = eligibility_problem(proposal.call, proposal.pi)
    if refusal:
        errors[""] = refusal
    return errors


def eligibility_problem(call: Call, pi: User) -> str | None:
    """Why the PI's organisation may not apply to ``call`` (its eligible countries), or None.

    The country is the one on the PI's profile; with ``ELIGIBILITY_REQUIRES_VERIFIED_PROFILE``
    it counts only once staff verified it (or an identity provider supplied it).
    """
    from portal.identity.operations import profile_url

    countries = call.country_list
    if not countries:
        return None
    if not pi.country:
        return _("The call is open to organisations in %(countries)s, and your organisation's country is not set: "
                 "set it on your profile page (%(url)s).", countries=", ".join(countries), url=profile_url())
    if pi.country.upper() not in countries:
        return _("The call is open to organisations in %(countries)s; your organisation's country is %(c)s.",
                 countries=", ".join(countries), c=pi.country)
    if current_app.config.get("ELIGIBILITY_REQUIRES_VERIFIED_PROFILE") and pi.profile_verified_at is None:
        return _("The call is open to organisations in %(countries)s. Your organisation's country (%(c)s) is "
                 "declared on your profile page, but the facility staff have not verified it yet; submit again "
                 "once they have.", countries=", ".join(countries), c=pi.country)
    return None


def submit_proposal(proposal: Proposal, actor: User, now: datetime | None = None) -> Proposal:
    now = now or utcnow()
    if proposal.state is not ProposalState.DRAFT:
        raise Problems({"": _("Only a draft can be submitted.")}, conflict=True)
    errors = submission_problems(proposal, now)
    check(errors, conflict="" in errors and len(errors) == 1)
    claim_state(proposal, ProposalState.SUBMITTED)
    proposal.submitted_at = now
    db.session.flush()
    record_event(proposal, actor, "submitted", {"state": ["draft", "submitted"]})
    notifications.notify_submitted(proposal)
    return proposal


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="proposal-invitation")


def invite_member(proposal: Proposal, actor: User, email: str, role: ProjectRole) -> Invitation:
    email = (email or "").strip()
    errors = {}
    if "@" not in email or len(email) > 320 or " " in email:
        errors["email"] = _("Enter an e-mail address.")
    elif any(i.email.lower() == email.lower() for i in proposal.invitations) or email.lower() == proposal.pi.email.lower():
        errors["email"] = _("This person is already in the team or invited.")
    if role not in (ProjectRole.CO_PI, ProjectRole.MEMBER):
        errors["role"] = _("Invite a co-PI or a member.")
    if proposal.state in (ProposalState.AWARDED, ProposalState.REJECTED, ProposalState.INADMISSIBLE):
        errors[""] = _("The proposal is closed.")
    check(errors)
    invitation = Invitation(proposal=proposal, email=email, role=role, nonce=secrets.token_urlsafe(24))
    db.session.add(invitation)
    db.session.flush()
    record_event(proposal, actor, "invited", {"email": email, "role": role.value})
    notifications.notify_invited(invitation, _serializer().dumps(invitation.nonce))
    return invitation


def find_invitation(token: str, user: User) -> Invitation | None:
    """The invitation behind ``token`` if it was sent to ``user``'s address; None otherwise, so
    only the person invited learns anything about it (page and API alike)."""
    try:
        nonce = _serializer().loads(token)
    except BadSignature:
        return None
    invitation = db.session.scalar(select(Invitation).where(Invitation.nonce == nonce))
    if invitation is None or invitation.email.lower() != (user.email or "").lower():
        return None
    return invitation


def accept_invitation(invitation: Invitation, user: User) -> Invitation:
    """The signed-in user joins if the invitation was sent to their address; a link works once."""
    if invitation.accepted_at is not None:
        raise Problems({"": _("This invitation was already used.")}, conflict=True)
    if invitation.email.lower() != user.email.lower():
        raise Problems({"": _("This invitation was sent to another e-mail address.")}, conflict=True)
    if not user.email_verified:
        raise Problems({"": _("Your e-mail address %(email)s was not confirmed by your identity provider, so it "
                              "cannot be used to accept an invitation sent to it. Sign in with a provider that "
                              "confirms it, or ask the facility staff.", email=user.email)}, conflict=True)
    invitation.accepted_at = utcnow()
    invitation.accepted_by_id = user.id
    db.session.flush()
    record_event(invitation.proposal, user, "invitation accepted",
                 {"email": invitation.email, "role": invitation.role.value})
    if invitation.proposal.project is not None:
        from portal.projects.operations import add_member

        add_member(invitation.proposal.project, user, invitation.role)
    return invitation


def reply_to_reviews(proposal: Proposal, actor: User, text: str, now: datetime | None = None) -> Proposal:
    now = now or utcnow()
    if proposal.state not in (ProposalState.REVIEWED, ProposalState.REPLIED):
        raise Problems({"reply": _("There are no reviews to reply to yet.")}, conflict=True)
    if proposal.reply_deadline is None or now > proposal.reply_deadline:
        raise Problems({"reply": _("The right-to-reply window has closed.")}, conflict=True)
    text = (text or "").strip()
    if not text:
        raise Problems({"reply": _("Write your reply.")})
    if len(text) > 20000:
        raise Problems({"reply": _("At most %(n)d characters.", n=20000)})
    changes = {"reply": [_short(proposal.reply), _short(text)], "state": [proposal.state.value, "replied"]}
    claim_state(proposal, ProposalState.REPLIED)  # not over a decision taken meanwhile
    proposal.reply = text
    db.session.flush()
    record_event(proposal, actor, "replied to reviews", changes)
    return proposal
