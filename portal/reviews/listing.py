"""A reviewer's assignments a page at a time, searched and filtered in SQL (web page, CSV and API)."""
from __future__ import annotations

from sqlalchemy import Select, or_, select

from portal.calls.models import Call
from portal.extensions import db
from portal.identity.models import User
from portal.proposals.models import Proposal
from portal.reviews.models import ReviewAssignment
from portal.web.listing import PageRequest, matches_any

FILTERS = ("status", "call")
SORTS = ("newest", "oldest")
#: The ``status`` filter: conflicts not declared yet, to score, or submitted.
STATUSES = ("declare", "to_review", "submitted")


def _mine(viewer: User) -> Select:
    # As ever: only the reviewer's own assignments, never those they declared a conflict on.
    return select(ReviewAssignment).where(ReviewAssignment.reviewer_id == viewer.id,
                                          ReviewAssignment.has_conflict.is_not(True))


def filtered(viewer: User, page: PageRequest) -> Select:
    """``viewer``'s assignments matching the page; ``q`` searches the proposal title and the call."""
    query = _mine(viewer)
    if page.search:
        calls = select(Call.id).where(matches_any(page.search, Call.code, Call.title))
        query = query.where(ReviewAssignment.proposal_id.in_(select(Proposal.id).where(or_(
            matches_any(page.search, Proposal.title), Proposal.call_id.in_(calls)))))
    f = page.filters
    if f.get("call"):
        query = query.where(ReviewAssignment.proposal_id.in_(
            select(Proposal.id).join(Call, Call.id == Proposal.call_id).where(Call.code == f["call"])))
    status = f.get("status")
    if status == "declare":
        query = query.where(ReviewAssignment.has_conflict.is_(None))
    elif status == "to_review":
        query = query.where(ReviewAssignment.has_conflict.is_(False), ReviewAssignment.submitted_at.is_(None))
    elif status == "submitted":
        query = query.where(ReviewAssignment.submitted_at.is_not(None))
    return query


def ordered(query: Select, page: PageRequest) -> Select:
    """Newest assignment first (or oldest), stable by the id; the proposal and its call are joined
    (the models' defaults)."""
    if page.sort == "oldest":
        return query.order_by(ReviewAssignment.assigned_at, ReviewAssignment.id)
    return query.order_by(ReviewAssignment.assigned_at.desc(), ReviewAssignment.id.desc())


def filter_choices(viewer: User) -> dict[str, list[str]]:
    """The statuses, and the calls of the viewer's own assignments (not every call)."""
    calls = select(Call.code).where(Call.id.in_(select(Proposal.call_id).where(
        Proposal.id.in_(_mine(viewer).with_only_columns(ReviewAssignment.proposal_id))))).order_by(Call.code)
    return {"status": list(STATUSES), "call": list(db.session.scalars(calls))}


def status_of(assignment: ReviewAssignment) -> str:
    if assignment.submitted_at:
        return "submitted"
    return "declare" if assignment.has_conflict is None else "to_review"


CSV_HEADER = ("Assignment", "Proposal", "Title", "Call", "Status", "Assigned (UTC)", "Submitted (UTC)", "Mean score")


def csv_row(assignment: ReviewAssignment) -> tuple:
    proposal = assignment.proposal
    return (assignment.id, proposal.id, proposal.title, proposal.call.code, status_of(assignment),
            assignment.assigned_at, assignment.submitted_at, assignment.mean_score)
