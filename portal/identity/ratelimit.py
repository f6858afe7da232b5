"""Rate limits that hold across gunicorn workers and hosts: fixed-window counters in the database.

Each call to :func:`hit` adds one to the counter of ``(bucket, window)`` with a single atomic
``INSERT ... ON CONFLICT DO UPDATE ... RETURNING`` and says whether the caller is over the limit.
Counters are written in their own short transaction, so a refused request (whose own
transaction is rolled back) still counts.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from flask import current_app, jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite

from portal.extensions import db
from portal.identity.models import RateLimitCounter

#: Counters older than this are deleted as new ones are written.
KEEP_SECONDS = 86_400


@dataclass(frozen=True)
class Limit:
    count: int
    period: int  # seconds

    @classmethod
    def parse(cls, text: str) -> Limit:
        """``"10/300"``: 10 per 300 seconds."""
        count, _sep, period = text.partition("/")
        limit = cls(int(count), int(period or 60))
        if limit.count < 1 or limit.period < 1:
            raise ValueError(f"rate limit must be positive: {text!r}")
        return limit


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until the window ends


def _window(limit: Limit, now: float) -> tuple[int, int]:
    start = int(now) // limit.period * limit.period
    return start, max(1, start + limit.period - int(now))


def hit(bucket: str, limit: Limit, *, now: float | None = None) -> Verdict:
    """Count one event in ``bucket``; refused once more than ``limit.count`` fall in one window."""
    now = time.time() if now is None else now
    start, retry_after = _window(limit, now)
    table = RateLimitCounter.__table__
    dialect = postgresql if db.engine.dialect.name == "postgresql" else sqlite
    upsert = dialect.insert(table).values(bucket=bucket[:400], window_start=start, count=1)
    upsert = upsert.on_conflict_do_update(
        index_elements=[table.c.bucket, table.c.window_start], set_={"count": table.c.count + 1}
    ).returning(table.c.count)
    with db.engine.begin() as conn:
        count = conn.execute(upsert).scalar_one()
        conn.execute(delete(table).where(table.c.window_start < int(now) - KEEP_SECONDS))
    return Verdict(count <= limit.count, retry_after)


def exceeded(bucket: str, limit: Limit, *, now: float | None = None) -> Verdict:
    """Look without counting: is ``bucket`` already at its limit in this window?"""
    now = time.time() if now is None else now
    start, retry_after = _window(limit, now)
    table = RateLimitCounter.__table__
    with db.engine.connect() as conn:
        count = conn.execute(select(table.c.count).where(
            table.c.bucket == bucket[:400], table.c.window_start == start)).scalar() or 0
    return Verdict(count < limit.count, retry_after)


def configured(name: str) -> Limit:
    """The limit set as ``PORTAL_<name>`` (e.g. ``LOGIN_RATE_LIMIT``)."""
    return Limit.parse(current_app.config[name])


def client_address() -> str:
    # With PROXY_FIX_HOPS set, ProxyFix has already put the client's address here.
    return request.remote_addr or "unknown"


def too_many_requests(verdict: Verdict):
    """The 429 answer: JSON for the API, a page for people; both say when to try again."""
    from portal.identity.access import is_api_request

    message = _("Too many attempts. Try again in %(seconds)d seconds.", seconds=verdict.retry_after)
    if is_api_request():
        response = jsonify(code=429, status="Too Many Requests", message=message)
    else:
        response = current_app.make_response(render_template("identity/refused.html", message=message))
    response.status_code = 429
    response.headers["Retry-After"] = str(verdict.retry_after)
    return response
