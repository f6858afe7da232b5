"""The portal's notion of now: naive UTC, as every timestamp column stores it."""
from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
