"""Staff steps on a proposal: admissibility, technical assessment, releasing reviews, the decision."""
from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal.audit.operations import record
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.operations import create_grant
from portal.identity.models import User
from portal.problems import Problems, check, parse_hours
from portal.projects.models import Project
from portal.projects.operations import add_member, create_project
from portal.proposals import notifications
from portal.proposals.capacity import beyond_offer, lock_call
from portal.proposals.models import DECIDABLE, Proposal, ProposalState
from portal.proposals.operations import changed_meanwhile, claim_state, record_event

PROJECT_CODE = re.compile(r"^[a-z][a-z0-9-]{1,31}$")


def _require_state(proposal: Proposal, *states: ProposalState) -> None:
    if proposal.state not in states:
        raise Problems({"": _("Not possible while the proposal is %(state)s.", state=proposal.state.label)},
                       conflict=True)


def _move(proposal: Proposal, actor: User, action: str, state: ProposalState, **changes: Any) -> None:
    changes["state"] = [claim_state(proposal, state).value, state.value]
    record_event(proposal, actor, action, changes)


def check_admissibility(proposal: Proposal, actor: User, admissible: bool, comment: str = "",
                        now: datetime | None = None) -> Proposal:
    """Staff mark a submitted proposal admissible or not, once the cut-off has locked it."""
    _require_state(proposal, ProposalState.SUBMITTED)
    if not proposal.is_locked(now or utcnow()) and not proposal.call.is_continuous:
        raise Problems({"": _("Wait for the call's cut-off: the applicants may still change the proposal.")},
                       conflict=True)
    proposal.admissibility_comment = (comment or "").strip()[:20000]
    _move(proposal, actor, "admissibility checked",
          ProposalState.ADMISSIBLE if admissible else ProposalState.INADMISSIBLE, comment=proposal.admissibility_comment)
    if not admissible:
        proposal.decision_feedback = proposal.admissibility_comment
        notifications.notify_decision(proposal)
    return proposal


def assess_technically(proposal: Proposal, actor: User, feasible: bool, comment: str = "",
                       recommended: dict[Any, Any] | None = None) -> Proposal:
    """Feasible or not, the hours staff recommend per partition (blank: as requested), comments."""
    _require_state(proposal, ProposalState.ADMISSIBLE)
    errors: dict[str, str] = {}
    minutes: dict[int, int | None] = {}
    for raw_id, hours in (recommended or {}).items():
        field = f"recommend-{raw_id}"
        request = proposal.request_for(int(raw_id)) if str(raw_id).isdigit() and len(str(raw_id)) < 10 else None
        if request is None:
            errors[field] = _("The proposal asks for no time on partition %(id)s.", id=str(raw_id)[:20])
            continue
        minutes[request.partition_id] = parse_hours(hours, field, errors)
    check(errors)
    for request in proposal.requests:
        value = minutes.get(request.partition_id)
        request.recommended_minutes = request.requested_minutes if value is None else value
    proposal.technical_feasible = feasible
    proposal.technical_comment = (comment or "").strip()[:20000]
    _move(proposal, actor, "technically assessed", ProposalState.TECHNICALLY_ASSESSED, feasible=feasible,
          recommended={r.partition.label: r.recommended_hours for r in proposal.requests})
    return proposal


def release_reviews(proposal: Proposal, actor: User, now: datetime | None = None) -> Proposal:
    """Show the submitted reviews to the applicants and open the right-to-reply window."""
    from portal.reviews.operations import submitted_reviews

    _require_state(proposal, ProposalState.IN_REVIEW)
    reviews = submitted_reviews(proposal)
    needed = max(1, proposal.call.min_reviewers)
    if len(reviews) < needed:
        raise Problems({"": _("%(n)d of %(needed)d reviews are in.", n=len(reviews), needed=needed)}, conflict=True)
    proposal.reply_deadline = (now or utcnow()) + timedelta(days=current_app.config["REPLY_WINDOW_DAYS"])
    _move(proposal, actor, "reviews released", ProposalState.REVIEWED,
          reply_deadline=proposal.reply_deadline.isoformat(timespec="minutes"))
    notifications.notify_reviews_released(proposal)
    return proposal


def _new_project_code(proposal: Proposal) -> str:
    prefix = f"{proposal.call.code}-"
    taken = db.session.scalar(select(func.count()).select_from(Project).where(Project.code.like(prefix + "%")))
    code = f"{prefix}{taken + 1:03d}"
    while db.session.scalar(select(Project.id).where(Project.code == code)) is not None:
        taken += 1
        code = f"{prefix}{taken + 1:03d}"
    if not PROJECT_CODE.match(code):
        raise Problems({"": _("Cannot derive a valid project code from the call code %(code)s.", code=prefix)})
    return code


def award_proposal(proposal: Proposal, actor: User, *, start_date: date | None, end_date: date | None,
                   hours: dict[Any, Any], confirm_over_award: bool = False) -> Proposal:
    """Award time: a grant on the proposal's project (created with the team if it has none).

    Refused when, with what the call's earlier awards took, it exceeds the call's offer on a
    partition, unless staff confirm the over-award (kept in the history and the audit log).
    """
    if proposal.state not in DECIDABLE:
        _require_state(proposal, *DECIDABLE)
    if proposal.call.needs_peer_review and proposal.state in (ProposalState.TECHNICALLY_ASSESSED,
                                                              ProposalState.IN_REVIEW):
        raise Problems({"": _("Release the reviews to the applicants before deciding.")}, conflict=True)
    errors: dict[str, str] = {}
    if start_date is None or end_date is None:
        errors["end_date"] = _("Give the start and end of the allocation.")
    elif end_date <= start_date:
        errors["end_date"] = _("The allocation must end after it starts.")
    asked: dict[int, int] = {}  # partition id -> minutes
    for raw_id, amount in hours.items():
        field = f"award-{raw_id}"
        offer = proposal.call.offer_for(int(raw_id)) if str(raw_id).isdigit() and len(str(raw_id)) < 10 else None
        if offer is None:
            errors[field] = _("Partition %(id)s is not offered in this call.", id=str(raw_id)[:20])
            continue
        minutes = parse_hours(amount, field, errors)
        if minutes:
            asked[offer.partition_id] = minutes
    if not asked and not errors:
        errors["hours"] = _("Award time on at least one partition.")
    check(errors)
    # From here on no other award in this call runs: "already awarded" stays true until the commit.
    lock_call(proposal.call)
    if db.session.scalar(select(Proposal.state).where(Proposal.id == proposal.id)) is not proposal.state:
        changed_meanwhile(proposal)  # decided while this award waited for the lock: a 409, not an over-award
    excess = beyond_offer(proposal.call, asked)
    if excess and not confirm_over_award:
        raise Problems({"": _("This award is more than the call offers. Nothing was changed; confirm an over-award "
                              "to award it anyway."), **{f"award-{e.partition.id}": e.message() for e in excess}})
    previous = claim_state(proposal, ProposalState.AWARDED)
    project = proposal.project
    if project is None:
        project = create_project(_new_project_code(proposal), proposal.title[:300], proposal.pi,
                                 description=proposal.abstract)
        for invitation in proposal.invitations:
            if invitation.accepted_by is not None:
                add_member(project, invitation.accepted_by, invitation.role)
        proposal.project = project
    awarded = {proposal.call.offer_for(partition_id).partition: minutes / 60 for partition_id, minutes in asked.items()}
    grant = create_grant(project, title=f"{proposal.call.title}: {proposal.title}"[:300], start_date=start_date,
                         end_date=end_date, hours=awarded)
    proposal.grant = grant
    details = {"project": project.code, "hours": {p.label: h for p, h in awarded.items()},
               "start": start_date.isoformat(), "end": end_date.isoformat()}
    record_event(proposal, actor, "awarded", {"state": [previous.value, ProposalState.AWARDED.value], **details})
    over = {e.partition.label: e.record() for e in excess}
    if over:
        record_event(proposal, actor, "over-award confirmed", over, staff_only=True)
    record("award.granted", actor, f"proposal:{proposal.id}", {**details, "grant": grant.id,
                                                               **({"over_award": over} if over else {})})
    notifications.notify_decision(proposal)
    return proposal


def reject_proposal(proposal: Proposal, actor: User, feedback: str) -> Proposal:
    _require_state(proposal, ProposalState.SUBMITTED, ProposalState.ADMISSIBLE, *DECIDABLE)
    feedback = (feedback or "").strip()
    if not feedback:
        raise Problems({"feedback": _("Tell the applicants why.")})
    proposal.decision_feedback = feedback[:20000]
    _move(proposal, actor, "rejected", ProposalState.REJECTED, feedback=_trim(feedback))
    record("proposal.rejected", actor, f"proposal:{proposal.id}", {})
    notifications.notify_decision(proposal)
    return proposal


def _trim(text: str) -> str:
    return text[:200]
