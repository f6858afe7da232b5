"""What the paginated list endpoints document: their headers (set by ``portal.web.listing.page_headers``) and
page arguments."""
from __future__ import annotations

import functools
from collections.abc import Callable
from types import ModuleType

from flask import request
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from portal.web.listing import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest, page_headers, page_request

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


def list_endpoint(blp: Blueprint, rule: str, args: type[PageArgs], schema: Schema, listing: ModuleType,
                  *, guard: Callable | None = None) -> Callable[[Callable[[PageRequest], Page]], Callable]:
    """Registers the JSON twin of a list page: ``view(page)`` gets the arguments the page reads (the
    ``listing`` module's FILTERS and SORTS, through ``page_request``) and returns one ``Page``; the
    endpoint answers its rows as ``schema`` with the X-Total-Count and Link headers. ``args``
    documents and checks the query; ``guard`` (e.g. ``require_role(...)``) runs before it."""
    def register(view: Callable[[PageRequest], Page]) -> Callable:
        @functools.wraps(view)
        def endpoint(**_args):
            page = page_request(listing.FILTERS, listing.SORTS)
            rows = view(page)
            return rows.items, 200, page_headers(request.endpoint or "", page, rows)

        documented = blp.arguments(args, location="query", as_kwargs=True)(
            blp.response(200, schema, headers=LIST_HEADERS)(endpoint))
        return blp.route(rule)(guard(documented) if guard else documented)
    return register
