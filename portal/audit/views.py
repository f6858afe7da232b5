"""The staff page that reads and filters the audit log, and its CSV export."""
from __future__ import annotations

from flask import Blueprint, render_template
from flask_babel import gettext as _

from portal.audit import listing
from portal.audit.operations import ACTIONS
from portal.clock import utcnow
from portal.identity.access import staff_required
from portal.web.listing import csv_response, page_request, paginate

bp = Blueprint("audit", __name__)


@bp.route("/audit")
@staff_required
def index():
    """Events a page at a time, newest first, filtered by action, who, target and day."""
    page = page_request(listing.FILTERS, listing.SORTS)
    events = paginate(listing.ordered(listing.filtered(page), page), page)
    return render_template("audit/index.html", events=events, page=page, labels=ACTIONS,
                           choices=listing.filter_choices())


@bp.route("/audit/export.csv")
@staff_required
def export():
    """The events the filter shows, as CSV."""
    page = page_request(listing.FILTERS, listing.SORTS)
    return csv_response(f"audit-{utcnow().date().isoformat()}.csv", [_(h) for h in listing.CSV_HEADER],
                        listing.ordered(listing.filtered(page), page), listing.csv_row)
