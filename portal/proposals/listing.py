"""The proposals list: a page at a time, searched and filtered in SQL (web page, CSV and API)."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import joinedload, lazyload

from portal.calls.models import Call
from portal.extensions import db
from portal.identity.models import User
from portal.projects.models import Project
from portal.proposals.models import Invitation, Proposal, ProposalState
from portal.web.listing import PageRequest, matches_any, parse_day

FILTERS = ("state", "call", "submitted_after", "submitted_before")
SORTS = ("newest", "submitted", "title", "call")


def filtered(viewer: User, page: PageRequest) -> Select:
    """Proposals ``viewer`` may see (staff: all; others: as PI or accepted team member) matching the page."""
    query = select(Proposal)
    if not viewer.is_staff:
        accepted = select(Invitation.proposal_id).where(Invitation.accepted_by_id == viewer.id)
        query = query.where(or_(Proposal.pi_id == viewer.id, Proposal.id.in_(accepted)))
    if text := page.search:
        query = query.where(or_(
            matches_any(text, Proposal.title),
            Proposal.pi_id.in_(select(User.id).where(matches_any(text, User.name, User.email))),
            Proposal.call_id.in_(select(Call.id).where(matches_any(text, Call.code, Call.title))),
            exists(select(Project.id).where(Project.id == Proposal.project_id, matches_any(text, Project.code)))))
    f = page.filters
    if f.get("state") in {s.value for s in ProposalState}:
        query = query.where(Proposal.state == ProposalState(f["state"]))
    if f.get("call"):
        query = query.where(Proposal.call_id.in_(select(Call.id).where(Call.code == f["call"])))
    if parse_day(f.get("submitted_after", "")):
        query = query.where(Proposal.submitted_at >= datetime.combine(parse_day(f["submitted_after"]), time.min))
    if parse_day(f.get("submitted_before", "")):
        end = datetime.combine(parse_day(f["submitted_before"]) + timedelta(days=1), time.min)
        query = query.where(Proposal.submitted_at < end)
    return query


def ordered(query: Select, page: PageRequest) -> Select:
    """The page's order, made stable by the id (newest first by default, as the list always was)."""
    order = {"newest": (), "submitted": (Proposal.submitted_at.desc().nulls_last(),), "title": (Proposal.title,),
             "call": (select(Call.code).where(Call.id == Proposal.call_id).scalar_subquery(),)}[page.sort]
    # The call and the PI are joined, the requests and invitations read in one query each (model defaults).
    return query.order_by(*order, Proposal.id.desc())


def shown_as_rows(query: Select) -> Select:
    """``query`` loading only what a row of the list or its CSV shows: title, call, PI, state.

    A proposal's defaults load its requests, invitations, the call's offers and the PI's
    roles (the proposal page needs them); for 25 rows that was four more queries and most of
    the page's time, none of it shown.
    """
    return query.options(lazyload(Proposal.requests), lazyload(Proposal.invitations),
                         joinedload(Proposal.call).lazyload(Call.offers),
                         joinedload(Proposal.pi).lazyload(User.role_grants))


def filter_choices() -> dict[str, list[str]]:
    return {"state": [s.value for s in ProposalState],
            "call": list(db.session.scalars(select(Call.code).order_by(Call.code)))}


def csv_row(proposal: Proposal) -> tuple:
    return (proposal.id, proposal.title, proposal.call.code, proposal.pi.name, proposal.pi.email,
            proposal.state.value, proposal.track, proposal.submitted_at, proposal.created_at)


CSV_HEADER = ("Id", "Title", "Call", "PI", "PI e-mail", "State", "Track", "Submitted (UTC)", "Created (UTC)")
