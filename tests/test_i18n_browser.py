"""The language switch in a real browser: a PI's dashboard in English, Polish and Lithuanian,
one screenshot each in test-artifacts/ (dashboard-en.png, dashboard-pl.png, dashboard-lt.png)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from portal.extensions import db
from portal.identity.models import Role
from tests.browser import chromium_page, live_server, screenshot, sign_in_in_browser

# What the dashboard's navigation and the footer's switch say in each language.
NAVIGATION = {"en": ("Dashboard", "Calls"), "pl": ("Pulpit", "Nabory"), "lt": ("Skydelis", "Kvietimai")}
BUTTON = {"en": "English", "pl": "Polski", "lt": "Lietuvių"}


@pytest.fixture
def portal_server(app) -> Iterator[str]:
    with live_server(app) as base:
        yield base


@pytest.mark.browser
def test_the_dashboard_in_each_language(app, make_user, portal_server):
    from tests.proposal_support import make_call, make_site

    make_user(Role.PI, name="Jūratė Łukasiewicz", email="jurate@vu.example")
    with app.app_context():
        cpu, gpu = make_site()
        make_call(cpu, gpu)  # an open call, so the dashboard has something to show
        db.session.commit()
    with chromium_page() as page:
        sign_in_in_browser(page, portal_server, "jurate@vu.example", "jurate")
        page.wait_for_url(lambda url: "/login" not in url)
        for locale in ("en", "pl", "lt"):
            if locale != "en":
                page.locator("#language-switch").get_by_role("button", name=BUTTON[locale]).click()
            page.wait_for_selector(f'html[lang="{locale}"]')
            assert page.url.rstrip("/") == portal_server  # back on the page the switch was used on
            nav = page.locator("header nav").inner_text()
            assert all(word in nav for word in NAVIGATION[locale]), nav
            current = page.locator("#language-switch button[aria-current]").inner_text()
            assert current == BUTTON[locale]
            screenshot(page, f"dashboard-{locale}")
        page.reload()  # the choice is kept
        assert page.locator("html").get_attribute("lang") == "lt"
