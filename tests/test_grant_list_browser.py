"""The grants list in a real browser: staff sign in, search and filter, and the CSV they export is
exactly what the page shows, its sums the page's totals."""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest

from portal.formatting import format_number
from portal.identity.models import Role
from tests.browser import chromium_page, live_server, screenshot, sign_in_in_browser
from tests.listing_support import grant_facility


@pytest.fixture
def portal_server(app) -> Iterator[str]:
    """The portal behind a real WSGI server on loopback (werkzeug's, in a thread), as a browser reaches it."""
    with live_server(app) as base:
        yield base


@pytest.mark.browser
def test_staff_filter_the_grants_and_export_exactly_what_is_shown(app, make_user, portal_server, tmp_path):
    make_user(Role.STAFF, email="staff@facility.example")
    grant_facility(app, tmp_path, 40)  # even grants: Żaneta Kowalczyk's, on Kraków AI; odd: on Vilnius AI
    with chromium_page() as page:  # Debian's Chromium, headless, with the flags of tests/test_oidc.py
        sign_in_in_browser(page, portal_server, "staff@facility.example", "staff")
        page.wait_for_url(lambda url: "/login" not in url)
        page.goto(f"{portal_server}/grants/")
        assert "40 grants" in page.locator("#grant-totals").inner_text()

        page.get_by_role("searchbox").fill("Kowalczyk")
        page.locator('select[name="site"]').select_option("Kraków AI")
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(re.compile(r".*/grants/\?.*site=Krak"))
        shown = page.locator("table#grants tbody tr td:first-child").all_inner_texts()
        assert sorted(shown) == [f"ehpc-{n:05d}" for n in range(0, 40, 2)]
        totals = page.locator("#grant-totals").inner_text()
        assert totals.startswith("20 grants")
        screenshot(page, "grants-list")

        with page.expect_download() as caught:
            page.locator("#export-csv").click()
        text = tmp_path / "grants.csv"
        caught.value.save_as(str(text))

    rows = list(csv.DictReader(io.StringIO(text.read_text(encoding="utf-8-sig"))))
    assert [r["Project"] for r in rows] == shown
    used = sum(float(r["Core-hours used"]) for r in rows)
    awarded = sum(float(r["Core-hours awarded"]) for r in rows)
    core = _page_total(totals, "core-hours")
    assert core == f"{format_number(used)} used of {format_number(awarded)}"
    gpu_used = sum(float(r["GPU-hours used"]) for r in rows)
    gpu_awarded = sum(float(r["GPU-hours awarded"]) for r in rows)
    assert _page_total(totals, "GPU-hours") == f"{format_number(gpu_used)} used of {format_number(gpu_awarded)}"


def _page_total(line: str, unit: str) -> str:
    """'1,234 used of 5,678' for ``unit`` from the totals line ('20 grants · core-hours: … · GPU-hours: …')."""
    part = next(p.strip() for p in line.split("·") if p.strip().startswith(unit + ":"))
    return part.removeprefix(unit + ":").strip()
