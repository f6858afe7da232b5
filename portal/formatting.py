"""Numbers, dates and times as people read them, in the reader's locale.

Times are stored as naive UTC and shown in UTC (the pages say so). Polish and Lithuanian take
their short CLDR patterns (5.12.2026 13:05; 2026-12-05 13:05). English keeps ISO 8601: Babel's
plain "en" is American (12/5/26, 1:05 PM), which a European facility's users misread.
"""
from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from babel.numbers import NumberPattern, parse_pattern
from flask_babel import format_date, format_datetime, get_locale

_ISO_DATE = "yyyy-MM-dd"


@lru_cache(maxsize=None)
def _number_pattern(pattern: str) -> NumberPattern:
    # Parsed once: lists format a hundred numbers a page, and parsing was most of the cost.
    return parse_pattern(pattern)


def format_number(value: float | int | None, *, empty: str = "—") -> str:
    """11800.4 -> '11,800' (pl: '11 800'); 0.61234 -> '0.612' (lt: '0,612'); None -> '—'."""
    if value is None:
        return empty
    magnitude = abs(value)
    if magnitude >= 100:
        value, pattern = round(value), "#,##0"
    elif magnitude >= 1:
        pattern = "#,##0.##"
    else:
        pattern = "0.###"
    return _number_pattern(pattern).apply(value, get_locale())


def _date_pattern() -> str:
    locale = get_locale()
    if locale is None or locale.language == "en":
        return _ISO_DATE
    return locale.date_formats["short"].pattern


def format_day(value: date | datetime | None, *, empty: str = "—") -> str:
    """A calendar day: 2026-12-05, 5.12.2026, 2026-12-05."""
    if value is None:
        return empty
    if isinstance(value, datetime):
        return format_datetime(value, _date_pattern())
    return format_date(value, _date_pattern())


def format_moment(value: datetime | None, *, seconds: bool = False, time_only: bool = False,
                  empty: str = "—") -> str:
    """A moment in UTC: 2026-12-05 13:05, 5.12.2026, 13:05, 2026-12-05 13:05 (``seconds``: :07)."""
    if value is None:
        return empty
    time_pattern = "HH:mm:ss" if seconds else "HH:mm"
    if time_only:
        return format_datetime(value, time_pattern)
    locale = get_locale()
    if locale is None or locale.language == "en":
        return format_datetime(value, f"{_ISO_DATE} {time_pattern}")
    # CLDR's glue, "{1}, {0}" in Polish and "{1} {0}" in Lithuanian, is itself a pattern.
    return format_datetime(value, locale.datetime_formats["short"].format(time_pattern, _date_pattern()))
