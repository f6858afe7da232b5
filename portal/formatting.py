"""Numbers as people read them, in the reader's locale (grouping, decimal sign)."""
from __future__ import annotations

from flask_babel import format_decimal


def format_number(value: float | int | None, *, empty: str = "—") -> str:
    """11800.4 -> '11,800'; 0.61234 -> '0.612'; None -> '—'."""
    if value is None:
        return empty
    magnitude = abs(value)
    if magnitude >= 100:
        return format_decimal(round(value), format="#,##0")
    if magnitude >= 1:
        return format_decimal(value, format="#,##0.##")
    return format_decimal(value, format="0.###")
