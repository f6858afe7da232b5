"""The calls list: a page at a time, searched and filtered in SQL (web page, CSV and API)."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, and_, or_, select

from portal.calls.models import AccessMode, Call
from portal.extensions import db
from portal.identity.models import User
from portal.web.listing import PageRequest, matches_any

FILTERS = ("mode", "status")
SORTS = ("newest", "closing", "code", "title")
#: The ``status`` filter: open for submissions now, not yet open (staff only see these), or past the cut-off.
STATUSES = ("open", "upcoming", "closed")


def filtered(viewer: User, page: PageRequest, now: datetime) -> Select:
    """Calls ``viewer`` may see (staff: all; others: those that have opened) matching the page."""
    query = select(Call)
    if not viewer.is_staff:
        query = query.where(Call.opens_at <= now)
    if page.search:
        query = query.where(matches_any(page.search, Call.code, Call.title))
    f = page.filters
    if f.get("mode"):
        query = query.where(Call.access_mode_id.in_(select(AccessMode.id).where(AccessMode.name == f["mode"])))
    status = f.get("status")
    if status == "open":
        query = query.where(Call.opens_at <= now, or_(Call.closes_at.is_(None), Call.closes_at > now))
    elif status == "upcoming":
        query = query.where(Call.opens_at > now)
    elif status == "closed":
        query = query.where(and_(Call.closes_at.is_not(None), Call.closes_at <= now))
    return query


def ordered(query: Select, page: PageRequest) -> Select:
    """The page's order, made stable by the id; the access mode is joined and the offers read in one query
    (the model's defaults)."""
    order = {"newest": (Call.opens_at.desc(),), "closing": (Call.closes_at.is_(None), Call.closes_at),
             "code": (Call.code,), "title": (Call.title,)}[page.sort]
    return query.order_by(*order, Call.id.desc())


def filter_choices() -> dict[str, list[str]]:
    return {"mode": list(db.session.scalars(select(AccessMode.name).order_by(AccessMode.name))),
            "status": list(STATUSES)}


def status_of(call: Call, now: datetime) -> str:
    if call.accepts_submissions(now):
        return "open"
    return "upcoming" if call.opens_at > now else "closed"


CSV_HEADER = ("Code", "Title", "Access mode", "Review workflow", "Opens (UTC)", "Cut-off (UTC)", "Status",
              "Allocation start", "Allocation end")


def csv_row_at(now: datetime):
    def row(call: Call) -> tuple:
        return (call.code, call.title, call.access_mode.name, call.review_workflow.value, call.opens_at,
                call.closes_at, status_of(call, now), call.allocation_start, call.allocation_end)
    return row
