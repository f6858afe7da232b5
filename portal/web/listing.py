"""Lists at facility scale: one page of rows in a stable order, a search, filters, CSV export.

Every list page and its JSON twin read the same arguments (``q``, the list's filters, ``sort``,
``page``, ``per_page``) through :func:`page_request`, run two SQL queries (the page and the
count) through :func:`paginate`, and export exactly what the filter shows with
:func:`csv_response`. The number of queries does not grow with the number of rows.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from flask import Response, request, url_for
from sqlalchemy import ColumnElement, Select, func, literal_column, or_, select

from portal.extensions import db

DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 200
#: Rows fetched at a time while a CSV export streams.
EXPORT_CHUNK = 1000


@dataclass(frozen=True)
class PageRequest:
    number: int
    size: int
    search: str
    sort: str
    filters: dict[str, str]

    def args(self, **changes: Any) -> dict[str, Any]:
        """The query arguments of this listing with ``changes``: for links to other pages and sorts."""
        values: dict[str, Any] = {**{k: v for k, v in self.filters.items() if v}, "q": self.search or None,
                                  "sort": self.sort, "page": self.number,
                                  "per_page": self.size if self.size != DEFAULT_PAGE_SIZE else None}
        values.update(changes)
        return {k: v for k, v in values.items() if v not in (None, "")}


def _positive(name: str, default: int, most: int) -> int:
    try:
        value = int(request.args.get(name, default))
    except ValueError:
        return default
    return min(max(value, 1), most)


def page_request(filters: Sequence[str] = (), sorts: Sequence[str] = ("",)) -> PageRequest:
    """Read a listing's arguments; anything out of range falls back to the default, never a 500."""
    sort = request.args.get("sort", sorts[0])
    return PageRequest(number=_positive("page", 1, 1_000_000), size=_positive("per_page", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE),
                       search=request.args.get("q", "").strip()[:200], sort=sort if sort in sorts else sorts[0],
                       filters={name: request.args.get(name, "").strip()[:100] for name in filters})


@dataclass(frozen=True)
class Page:
    items: list[Any]
    number: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.pages

    @property
    def first_row(self) -> int:
        return 0 if not self.total else (self.number - 1) * self.size + 1

    @property
    def last_row(self) -> int:
        return min(self.number * self.size, self.total)


def paginate(query: Select, page: PageRequest, *, scalars: bool = True, total: int | None = None) -> Page:
    """One page of ``query`` (which must already have a stable ORDER BY) and the number of rows.

    The count keeps the query's FROM, joins and WHERE but none of its columns: a list's
    computed columns (a PI's name, say) would otherwise be worked out for every matching
    row just to be counted. (List queries filter with EXISTS, never DISTINCT or GROUP BY,
    so one row is one item.) A caller that counted already, in the same scan as its totals,
    passes ``total``.
    """
    if total is None:
        counted = query.order_by(None).with_only_columns(literal_column("1"), maintain_column_froms=True)
        total = db.session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    number = min(page.number, max(1, -(-total // page.size)))
    limited = query.limit(page.size).offset((number - 1) * page.size)
    items = list(db.session.scalars(limited)) if scalars else list(db.session.execute(limited))
    return Page(items, number, page.size, total)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%`` and ``_`` taken literally (escape ``\\``)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matches_any(text: str, *columns: Any) -> ColumnElement[bool]:
    """``text`` found anywhere in any of ``columns``, ignoring case, its LIKE wildcards taken literally."""
    pattern = like_pattern(text.lower())
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))


def parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def csv_response(filename: str, header: Sequence[str], query: Select, row: Callable[[Any], Iterable[Any]], *,
                 scalars: bool = True) -> Response:
    """Every row of ``query`` as a CSV attachment, read in chunks of :data:`EXPORT_CHUNK` rows.

    Built before the response is sent, not streamed: a stream would hold the request's database
    transaction open for as long as the client takes to read it. Cells that a spreadsheet would
    run as a formula (starting with ``= + - @``) are prefixed with an apostrophe (CSV
    injection); the text is UTF-8 with a byte-order mark so that spreadsheet programs show
    Polish and Lithuanian letters intact.
    """
    def cells(values: Iterable[Any]) -> list[str]:
        out = []
        for value in values:
            text = "" if value is None else (value.isoformat() if isinstance(value, date) else str(value))
            if text[:1] in ("=", "+", "-", "@") and not _is_number(text):
                text = "'" + text
            out.append(text)
        return out

    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(header)
    offset = 0
    while True:
        chunk = query.limit(EXPORT_CHUNK).offset(offset)
        rows = list(db.session.scalars(chunk)) if scalars else list(db.session.execute(chunk))
        for item in rows:
            writer.writerow(cells(row(item)))
        if len(rows) < EXPORT_CHUNK:
            break
        offset += EXPORT_CHUNK
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def page_headers(endpoint: str, page: PageRequest, rows: Page) -> dict[str, str]:
    """An API list's ``X-Total-Count`` and RFC 8288 ``Link`` (next, prev) headers for ``rows``."""
    links = []
    if rows.has_next:
        links.append(f'<{url_for(endpoint, **page.args(page=rows.number + 1))}>; rel="next"')
    if rows.has_previous:
        links.append(f'<{url_for(endpoint, **page.args(page=rows.number - 1))}>; rel="prev"')
    headers = {"X-Total-Count": str(rows.total)}
    if links:
        headers["Link"] = ", ".join(links)
    return headers
