"""The audit log list (staff): a page at a time, filtered in SQL, and its CSV export."""
from __future__ import annotations

from sqlalchemy import Select, or_
from sqlalchemy.orm import joinedload

from portal.audit.models import AuditEvent
from portal.audit.operations import ACTIONS, EventFilter, events_query
from portal.web.listing import PageRequest, matches_any, parse_day

FILTERS = ("action", "actor", "target", "since", "until")
SORTS = ("newest", "oldest")


def filtered(page: PageRequest) -> Select:
    """Events matching the page: ``action`` exactly, ``actor`` in a name or e-mail, ``target`` in the
    target, ``since``/``until`` as days (inclusive); ``q`` searches the target and who acted."""
    f = page.filters
    query = events_query(EventFilter(action=f.get("action") or None, actor=f.get("actor") or None,
                                     since=parse_day(f.get("since", "")), until=parse_day(f.get("until", ""))))
    if f.get("target"):
        query = query.where(matches_any(f["target"], AuditEvent.target))
    if page.search:
        query = query.where(or_(events_query(EventFilter(actor=page.search)).whereclause,
                                matches_any(page.search, AuditEvent.target)))
    return query


def ordered(query: Select, page: PageRequest) -> Select:
    """Newest first (or oldest), made stable by the id; who acted is joined, not read per row."""
    order = (AuditEvent.created_at.desc(), AuditEvent.id.desc()) if page.sort == "newest" else (
        AuditEvent.created_at, AuditEvent.id)
    return query.options(joinedload(AuditEvent.actor)).order_by(None).order_by(*order)


def filter_choices() -> dict[str, list[str]]:
    return {"action": list(ACTIONS)}


CSV_HEADER = ("When (UTC)", "Action", "Who", "Who (e-mail)", "Target", "Details", "Address")


def csv_row(event: AuditEvent) -> tuple:
    details = "; ".join(f"{k}: {v}" for k, v in sorted((event.details or {}).items()))
    return (event.created_at, event.action, event.actor.name if event.actor else event.actor_label,
            event.actor.email if event.actor else "", event.target, details, event.ip_address)
