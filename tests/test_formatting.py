"""Numbers and days as the pages show them, checked against Babel's own CLDR formatting."""
from __future__ import annotations

import random
from datetime import date, datetime
from decimal import Decimal

import pytest
from babel import Locale
from babel.dates import format_date
from babel.numbers import parse_pattern
from flask_babel import force_locale

from portal.formatting import format_day, format_number


def babel_number(value, locale: str) -> str:
    """What Babel's patterns give: the reference ``format_number`` must equal."""
    magnitude = abs(value)
    if magnitude >= 100:
        value, pattern = round(value), "#,##0"
    elif magnitude >= 1:
        pattern = "#,##0.##"
    else:
        pattern = "0.###"
    return parse_pattern(pattern).apply(value, Locale.parse(locale))


def numbers() -> list:
    picked = random.Random(17)
    values = [0, 1, -1, 99.995, 100, 999.5, 1000, 1000.5, 2.675, 2.665, 0.0005, 0.0015, 0.9995, 12345678, 1e12,
              -0.25, -1234.5, 0.1 + 0.2, Decimal("2.675"), Decimal("12345.5"), 7, 10_000, 123456]
    for _ in range(3000):
        scale = 10 ** picked.randint(-4, 9)
        values.append(round(picked.uniform(-1, 1) * scale, picked.randint(0, 6)))
    return values


@pytest.mark.parametrize("locale", ["en", "pl", "lt"])
def test_numbers_equal_babels_patterns_in_each_language(app, locale):
    with app.test_request_context("/"), force_locale(locale):
        mismatches = [(v, format_number(v), babel_number(v, locale)) for v in numbers()
                      if format_number(v) != babel_number(v, locale)]
    assert mismatches == []


def test_numbers_use_the_readers_separators(app):
    with app.test_request_context("/"):
        with force_locale("pl"):
            assert format_number(11800.4) == "11\u00a0800"
            assert format_number(2.675) == "2,68"
        with force_locale("en"):
            assert format_number(11800.4) == "11,800"
            assert format_number(None) == "—"


@pytest.mark.parametrize("locale", ["en", "pl", "lt"])
def test_days_equal_babels_short_date_or_iso(app, locale):
    days = [date(2026, 12, 5), date(2027, 1, 31), datetime(2026, 3, 1, 23, 59, 59)]
    with app.test_request_context("/"), force_locale(locale):
        shown = [format_day(d) for d in days]
    if locale == "en":
        assert shown == ["2026-12-05", "2027-01-31", "2026-03-01"]
    else:
        pattern = Locale.parse(locale).date_formats["short"].pattern
        assert shown == [format_date(d.date() if isinstance(d, datetime) else d, pattern, locale=locale) for d in days]
        assert shown[0] == {"pl": "5.12.2026", "lt": "2026-12-05"}[locale]
