"""Business rules of peer review: assignment, conflicts of interest, scores, the committee ranking."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import select

from portal.calls.models import Call
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.summary import UNITS
from portal.identity.models import Role, User
from portal.problems import Problems, check
from portal.proposals import notifications
from portal.proposals.capacity import awarded_in_call
from portal.proposals.models import Proposal, ProposalState
from portal.proposals.operations import claim_state, record_event
from portal.reviews.models import CRITERIA, ReviewAssignment

log = logging.getLogger(__name__)


def assignments_for(user: User) -> list[ReviewAssignment]:
    """The reviewer's assignments, without those they declared a conflict on."""
    query = (select(ReviewAssignment).where(ReviewAssignment.reviewer_id == user.id,
                                            ReviewAssignment.has_conflict.is_not(True))
             .order_by(ReviewAssignment.assigned_at.desc()))
    return list(db.session.scalars(query).unique())


def accessible_assignment(user: User, assignment_id: int) -> ReviewAssignment | None:
    assignment = db.session.get(ReviewAssignment, assignment_id)
    return assignment if assignment is not None and assignment.can_access(user) else None


def reviews_of(proposal: Proposal) -> list[ReviewAssignment]:
    return list(db.session.scalars(select(ReviewAssignment).where(ReviewAssignment.proposal_id == proposal.id)
                                   .order_by(ReviewAssignment.id)).unique())


def submitted_reviews(proposal: Proposal) -> list[ReviewAssignment]:
    return [r for r in reviews_of(proposal) if r.submitted_at is not None]


def reviewers_available() -> list[User]:
    from portal.identity.models import RoleGrant

    return list(db.session.scalars(select(User).join(RoleGrant).where(RoleGrant.role == Role.REVIEWER,
                                                                      User.active.is_(True)).order_by(User.name)))


def assign_reviewer(proposal: Proposal, actor: User, reviewer: User | None) -> ReviewAssignment:
    if proposal.state not in (ProposalState.TECHNICALLY_ASSESSED, ProposalState.IN_REVIEW):
        raise Problems({"": _("Reviewers are assigned after the technical assessment.")}, conflict=True)
    if not proposal.call.needs_peer_review:
        raise Problems({"": _("This call has no peer review.")}, conflict=True)
    if reviewer is None or not reviewer.has_role(Role.REVIEWER):
        raise Problems({"reviewer": _("Choose a person with the reviewer role.")})
    if reviewer.id == proposal.pi_id or proposal.team_role_of(reviewer) is not None:
        raise Problems({"reviewer": _("A member of the team cannot review the proposal.")})
    if any(a.reviewer_id == reviewer.id for a in reviews_of(proposal)):
        raise Problems({"reviewer": _("Already assigned.")})
    assignment = ReviewAssignment(proposal=proposal, reviewer=reviewer)
    db.session.add(assignment)
    if proposal.state is ProposalState.TECHNICALLY_ASSESSED:
        claim_state(proposal, ProposalState.IN_REVIEW)
    db.session.flush()
    # Staff only: applicants never learn who reviews them.
    record_event(proposal, actor, "reviewer assigned", {"reviewer": reviewer.name, "state": proposal.state.value},
                 staff_only=True)
    notifications.notify_review_requested(assignment)
    return assignment


def declare_conflict(assignment: ReviewAssignment, has_conflict: bool, note: str = "") -> ReviewAssignment:
    if assignment.has_conflict is not None:
        raise Problems({"": _("You already declared.")}, conflict=True)
    assignment.has_conflict = bool(has_conflict)
    assignment.declared_at = utcnow()
    db.session.flush()
    record_event(assignment.proposal, assignment.reviewer, "conflict of interest declared",
                 {"reviewer": assignment.reviewer.name, "conflict": bool(has_conflict), "note": note[:200]},
                 staff_only=True)
    return assignment


def submit_review(assignment: ReviewAssignment, scores: dict[str, Any], comment_applicant: str,
                  comment_committee: str) -> ReviewAssignment:
    if assignment.has_conflict is not False:
        raise Problems({"": _("Declare that you have no conflict of interest first.")}, conflict=True)
    if assignment.proposal.state is not ProposalState.IN_REVIEW:
        raise Problems({"": _("The review period of this proposal is over.")}, conflict=True)
    errors: dict[str, str] = {}
    parsed = {}
    for criterion in CRITERIA:
        raw = scores.get(criterion)
        try:
            value = int(str(raw).strip())
            if not 1 <= value <= 5:
                raise ValueError
            parsed[criterion] = value
        except (TypeError, ValueError):
            errors[f"score_{criterion}"] = _("A score from 1 to 5.")
    comment_applicant = (comment_applicant or "").strip()
    if not comment_applicant:
        errors["comment_applicant"] = _("Write comments for the applicants.")
    check(errors)
    for criterion, value in parsed.items():
        setattr(assignment, f"score_{criterion}", value)
    assignment.comment_applicant = comment_applicant[:20000]
    assignment.comment_committee = (comment_committee or "").strip()[:20000]
    assignment.submitted_at = utcnow()
    db.session.flush()
    record_event(assignment.proposal, assignment.reviewer, "review submitted",
                 {"reviewer": assignment.reviewer.name, **parsed}, staff_only=True)
    return assignment


@dataclass
class RankedProposal:
    proposal: Proposal
    score: float | None
    requested: dict[int, int]  # partition id -> minutes
    fits: dict[int, bool] = field(default_factory=dict)  # within the capacity left, in rank order
    # partition id -> minutes the technical assessment recommends (None: not assessed on it)
    recommended: dict[int, int | None] = field(default_factory=dict)


@dataclass
class PartitionDemand:
    partition_id: int
    label: str
    unit: str
    offered_minutes: int
    requested_minutes: int
    awarded_minutes: int = 0  # so far, on grants made from the call's proposals

    @property
    def remaining_minutes(self) -> int:
        """Capacity left to award (negative after a confirmed over-award)."""
        return self.offered_minutes - self.awarded_minutes

    @property
    def oversubscription(self) -> float:
        return self.requested_minutes / self.offered_minutes

    @property
    def oversubscribed(self) -> bool:
        return self.requested_minutes > self.offered_minutes


RANKED_STATES = (ProposalState.TECHNICALLY_ASSESSED, ProposalState.IN_REVIEW, ProposalState.REVIEWED,
                 ProposalState.REPLIED, ProposalState.AWARDED)


def committee_ranking(call: Call) -> tuple[list[RankedProposal], dict[int, PartitionDemand]]:
    """Proposals past the technical assessment, best mean score first, against the capacity on offer
    and what the call's awards already took."""
    proposals = db.session.scalars(select(Proposal).where(Proposal.call_id == call.id,
                                                          Proposal.state.in_(RANKED_STATES))).unique()
    rows = []
    for proposal in proposals:
        scores = [r.mean_score for r in submitted_reviews(proposal) if r.mean_score is not None]
        rows.append(RankedProposal(proposal, sum(scores) / len(scores) if scores else None,
                                   {r.partition_id: r.requested_minutes for r in proposal.requests},
                                   recommended={r.partition_id: r.recommended_minutes for r in proposal.requests}))
    rows.sort(key=lambda r: (r.score is None, -(r.score or 0), r.proposal.submitted_at or utcnow(), r.proposal.id))
    awarded = awarded_in_call(call)
    demand = {o.partition_id: PartitionDemand(o.partition_id, o.partition.label, str(UNITS[o.partition.resource_kind]),
                                              o.offered_minutes, 0, awarded.get(o.partition_id, 0))
              for o in call.offers}
    for row in rows:
        for partition_id, minutes in row.requested.items():
            if partition_id in demand:
                demand[partition_id].requested_minutes += minutes
                row.fits[partition_id] = demand[partition_id].requested_minutes <= demand[partition_id].offered_minutes
    return rows, demand
