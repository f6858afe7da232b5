"""What the paginated list endpoints document: their headers (set by ``portal.web.listing.page_headers``) and
page arguments."""
from __future__ import annotations

from marshmallow import Schema, fields

from portal.web.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

#: For ``@blp.response(..., headers=LIST_HEADERS)``: documents both headers in the OpenAPI.
LIST_HEADERS = {
    "X-Total-Count": {"description": "rows matching the filter, on all pages", "schema": {"type": "integer"}},
    "Link": {"description": "RFC 8288 links to the next and previous pages", "schema": {"type": "string"}}}

PAGE_DESCRIPTION = "1-based page number"
PER_PAGE_DESCRIPTION = f"rows per page, 1 to {MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})"


class PageArgs(Schema):
    """The page arguments every list endpoint takes; its own filters subclass this."""

    page = fields.Int(metadata={"description": PAGE_DESCRIPTION})
    per_page = fields.Int(metadata={"description": PER_PAGE_DESCRIPTION})
