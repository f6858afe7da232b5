"""The interface in English, Polish and Lithuanian: complete catalogs, the language each person
chose (kept across sessions), dates and numbers per locale, e-mails in the recipient's language."""
from __future__ import annotations

import io
import os
import re
import subprocess
from datetime import datetime
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from sqlalchemy import select

from portal.extensions import db
from portal.i18n import LOCALE_COOKIE, SHOWN_VALUES
from portal.identity.models import Role, User
from tests.conftest import csrf_token_from, sign_in

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "portal" / "translations"
TRANSLATED = ("pl", "lt")
# %(name)s, %(n)d, %% (Python formatting in gettext) and {name} (str.format) must survive translation.
PLACEHOLDER = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)[sdifr]|%%|%[sd]|\{[A-Za-z_0-9]*\}")
NBSP = "\u00a0"


def _placeholders(text: str) -> list[str]:
    return sorted(PLACEHOLDER.findall(text))


def _key(value):
    return value if isinstance(value, str) else tuple(value)


def _catalog(locale: str, domain: str = "messages"):
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / f"{domain}.po", "rb") as f:
        return read_po(f, locale=locale)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """Every user-facing string in the source now, extracted as scripts/translations.sh does."""
    pot = tmp_path_factory.mktemp("i18n") / "messages.pot"
    subprocess.run([str(ROOT / "scripts" / "translations.sh"), "extract"], cwd=ROOT, check=True,
                   env={**os.environ, "POT": str(pot)}, capture_output=True)
    with open(pot, "rb") as f:
        catalog = read_po(f)
    assert len(catalog) > 500, "extraction found too few strings: is babel.cfg still reading portal/?"
    return catalog


@pytest.mark.parametrize("locale", TRANSLATED)
def test_catalog_translates_every_user_facing_string(extracted, locale):
    """Fails when a string in the source (Python or template) has no Polish or Lithuanian
    translation: run `scripts/translations.sh update`, translate, then `... compile`."""
    catalog = _catalog(locale)
    assert catalog.num_plurals == 3, catalog.plural_forms
    missing, fuzzy, broken = [], [], []
    for message in extracted:
        if not message.id:
            continue
        key = message.id if isinstance(message.id, str) else message.id[0]
        entry = catalog.get(message.id, message.context)
        forms = ([] if entry is None else [entry.string] if isinstance(entry.string, str) else list(entry.string))
        if entry is None or not forms or not all(f.strip() for f in forms):
            missing.append(key)
            continue
        if entry.fuzzy:
            fuzzy.append(key)
        if isinstance(message.id, str):
            if _placeholders(forms[0]) != _placeholders(message.id):
                broken.append((key, forms[0]))
        else:
            if len(forms) != 3:
                broken.append((key, f"{len(forms)} plural forms"))
            wanted = set(PLACEHOLDER.findall(message.id[1]))
            broken.extend((key, f) for f in forms if set(PLACEHOLDER.findall(f)) != wanted)
    assert not missing, f"{len(missing)} strings without a {locale} translation, e.g. {missing[:10]}"
    assert not fuzzy, f"fuzzy {locale} translations: {fuzzy[:10]}"
    assert not broken, f"{locale} translations whose placeholders differ from the English: {broken[:10]}"


@pytest.mark.parametrize("domain", ("messages", "wtforms"))
@pytest.mark.parametrize("locale", TRANSLATED)
def test_compiled_catalog_is_the_current_one(locale, domain):
    """The committed .mo (what the portal reads, in a clean clone and in the wheel) matches its .po."""
    fresh = io.BytesIO()
    write_mo(fresh, _catalog(locale, domain))  # what `pybabel compile` writes (fuzzy entries left out)
    fresh.seek(0)
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / f"{domain}.mo", "rb") as f:
        assert _messages(read_mo(f)) == _messages(read_mo(fresh)), "run scripts/translations.sh compile"


def _messages(catalog) -> dict:
    return {(m.context, _key(m.id)): _key(m.string) for m in catalog if m.id}


@pytest.mark.parametrize("locale", TRANSLATED)
def test_form_library_messages_have_every_language(locale):
    """WTForms' own messages (a required field, a number out of range) in our catalogs: WTForms
    ships no Lithuanian, and its Polish is incomplete (and once says "required" for "cannot be edited")."""
    from wtforms.i18n import messages_path

    with open(Path(messages_path()) / "wtforms.pot", "rb") as f:
        theirs = [m.id for m in read_po(f) if m.id]
    with open(TRANSLATIONS / locale / "LC_MESSAGES" / "wtforms.po", "rb") as f:
        ours = {_key(m.id): m for m in read_po(f, locale=locale) if m.id}
    for msgid in theirs:
        entry = ours.get(_key(msgid))
        assert entry is not None and not entry.fuzzy and all(_key(entry.string)), msgid
        forms = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        english = msgid if isinstance(msgid, str) else msgid[1]
        assert all(set(PLACEHOLDER.findall(f)) == set(PLACEHOLDER.findall(english)) for f in forms), msgid


@pytest.mark.parametrize("locale, required, out_of_range", [
    ("en", "This field is required.", "Number must be between 1 and 365."),
    ("pl", "To pole jest wymagane.", "Liczba musi mieścić się w zakresie od 1 do 365."),
    ("lt", "Šis laukas privalomas.", "Skaičius turi būti nuo 1 iki 365."),
])
def test_form_errors_are_in_the_readers_language(app, make_user, locale, required, out_of_range):
    _, email, password = make_user(Role.MEMBER)
    client = app.test_client()
    sign_in(client, email, password)
    if locale != "en":
        _switch(client, locale)
    token = csrf_token_from(client.get("/account/tokens").get_data(as_text=True))
    page = client.post("/account/tokens", data={"csrf_token": token, "name": "", "scope": "read", "days": "400"})
    text = page.get_data(as_text=True)
    assert _lang(text) == locale
    assert f'<span class="field-error">{required}</span>' in text
    assert f'<span class="field-error">{out_of_range}</span>' in text


def test_stored_values_shown_through_gettext_are_marked_for_extraction():
    """Statuses are stored in English and shown as _(value); a new one must reach the catalogs."""
    from portal.benchmarks.models import Verdict
    from portal.calls.listing import STATUSES as CALL_STATUSES
    from portal.grants.models import GrantStatus, RequestStatus
    from portal.projects.models import ProjectStatus
    from portal.proposals.models import ProposalState
    from portal.reviews.listing import STATUSES as REVIEW_STATUSES

    shown = {s.value for enum in (ProjectStatus, GrantStatus, RequestStatus, ProposalState, Verdict) for s in enum}
    assert shown | set(CALL_STATUSES) | set(REVIEW_STATUSES) <= set(SHOWN_VALUES)


def test_csv_headers_are_in_the_catalogs(extracted):
    """Exports translate their headers as _(h): each header must be a message of the catalogs."""
    import importlib
    import pkgutil

    import portal

    headers = {}
    for feature in pkgutil.iter_modules(portal.__path__):
        if feature.ispkg and (ROOT / "portal" / feature.name / "listing.py").exists():
            listing = importlib.import_module(f"portal.{feature.name}.listing")
            headers.update({h: feature.name for h in getattr(listing, "CSV_HEADER", ())})
    assert len(headers) > 20
    messages = {m.id for m in extracted if m.id and not m.context}
    assert not {h: f for h, f in headers.items() if h not in messages}, "mark them with N_ in portal/i18n.py"


def _switch(client, locale: str, page: str = "/account/profile", **extra):
    token = csrf_token_from(client.get(page).get_data(as_text=True))
    return client.post("/account/language", data={"csrf_token": token, "locale": locale, "next": page, **extra})


def _lang(html: str) -> str:
    return re.search(r'<html lang="([a-z]+)">', html).group(1)


def test_language_choice_is_kept_per_person_across_sessions(app, make_user):
    user_id, email, password = make_user(Role.PI, name="Rūta Žemaitytė")
    _, other_email, other_password = make_user(Role.PI)
    client = app.test_client()
    sign_in(client, email, password)
    assert _lang(client.get("/account/profile").get_data(as_text=True)) == "en"

    response = _switch(client, "lt")
    assert response.status_code == 302 and response.headers["Location"] == "/account/profile"
    page = client.get("/account/profile").get_data(as_text=True)
    assert _lang(page) == "lt" and "Kalba pakeista." in page and "Jūsų profilis" in page
    assert '<option value="lt" lang="lt" selected>Lietuvių</option>' in page
    with app.app_context():
        assert db.session.get(User, user_id).locale == "lt"

    # Another browser, no cookie, a browser that asks for Polish: the person's choice wins.
    elsewhere = app.test_client()
    sign_in(elsewhere, email, password)
    home = elsewhere.get("/", headers={"Accept-Language": "pl,en;q=0.5"}).get_data(as_text=True)
    assert _lang(home) == "lt" and "Skydelis" in home and "Dashboard" not in home

    # Someone else, in a fresh browser, still gets English.
    someone = app.test_client()
    sign_in(someone, other_email, other_password)
    assert _lang(someone.get("/").get_data(as_text=True)) == "en"


def test_the_switch_needs_the_csrf_token_a_known_language_and_a_local_next(app, make_user):
    user_id, email, password = make_user(Role.MEMBER)
    client = app.test_client()
    sign_in(client, email, password)
    assert client.post("/account/language", data={"locale": "pl", "next": "/"}).status_code == 400
    assert _switch(client, "de").status_code == 400
    with app.app_context():
        assert db.session.get(User, user_id).locale is None
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    evil = client.post("/account/language", data={"csrf_token": token, "locale": "pl", "next": "//evil.example/x"})
    assert evil.headers["Location"] == "/"


def test_visitors_get_their_cookie_then_accept_language(app):
    client = app.test_client()
    login = client.get("/login", headers={"Accept-Language": "lt-LT,lt;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert _lang(login) == "lt" and "Prisijungti" in login
    assert _lang(client.get("/login", headers={"Accept-Language": "de,fr"}).get_data(as_text=True)) == "en"

    # The switch works before signing in: a cookie, which beats Accept-Language.
    response = _switch(client, "pl", page="/login")
    assert response.status_code == 302
    cookie = client.get_cookie(LOCALE_COOKIE)
    assert cookie.value == "pl" and cookie.http_only and cookie.same_site == "Lax"
    login = client.get("/login", headers={"Accept-Language": "lt"}).get_data(as_text=True)
    assert _lang(login) == "pl" and "Zaloguj się" in login and "Zmieniono język." in login
    client.set_cookie(LOCALE_COOKIE, "xx")  # a value the portal never set is ignored
    assert _lang(client.get("/login", headers={"Accept-Language": "lt"}).get_data(as_text=True)) == "lt"


def test_error_pages_speak_the_readers_language(app, make_user):
    _, email, password = make_user(Role.MEMBER)
    client = app.test_client()
    sign_in(client, email, password)
    _switch(client, "pl")
    missing = client.get("/proposals/999999")
    assert missing.status_code == 404 and "404 · Nie znaleziono" in missing.get_data(as_text=True)
    visitor = app.test_client()
    expired = visitor.post("/account/language", data={"locale": "pl"}, headers={"Accept-Language": "lt"})
    text = expired.get_data(as_text=True)
    assert expired.status_code == 400 and "400 · Netinkama užklausa" in text
    assert "Formos galiojimas baigėsi; įkelkite puslapį iš naujo ir bandykite dar kartą." in text
    assert "CSRF" not in text


@pytest.mark.parametrize("locale, heading, offered, opens", [
    ("en", "Partitions on offer", "100,000", "{d:%Y-%m-%d %H:%M}"),
    ("pl", "Oferowane partycje", f"100{NBSP}000", "{d.day}.{d:%m.%Y, %H:%M}"),
    ("lt", "Siūlomos particijos", f"100{NBSP}000", "{d:%Y-%m-%d %H:%M}"),
])
def test_a_page_in_each_language_formats_numbers_and_dates_its_way(app, make_user, locale, heading, offered, opens):
    from tests.proposal_support import make_call, make_site

    _, email, password = make_user(Role.PI)
    with app.app_context():
        cpu, gpu = make_site()
        call = make_call(cpu, gpu)
        call.opens_at = datetime(2026, 3, 4, 9, 5)
        db.session.commit()
        call_id = call.id
    client = app.test_client()
    sign_in(client, email, password)
    if locale != "en":
        _switch(client, locale)
    page = client.get(f"/calls/{call_id}").get_data(as_text=True)
    assert _lang(page) == locale and heading in page
    assert f"<td>Żywiec AI Factory / cpu</td><td>{offered} " in page
    assert f"<dd>{opens.format(d=datetime(2026, 3, 4, 9, 5))}</dd>" in page
    expected_day = {"en": "2027-01-01", "pl": "1.01.2027", "lt": "2027-01-01"}[locale]
    assert f"<dd>{expected_day} – " in page


def test_mail_is_written_in_each_recipients_language(app, make_user, smtp_server):
    """A proposal goes through submission to peer review while the current request is in
    Lithuanian: the invited co-PI chose Polish, the reviewer Lithuanian, the PI nothing; the
    staff office is an address with no account. Each message is in its recipient's language."""
    from portal.transactions import commit
    from tests.proposal_support import PROPOSAL_TEXT, review_world

    pi_id, pi_email, _ = make_user(Role.PI)
    staff_id, _, _ = make_user(Role.STAFF)
    _, invitee_email, invitee_password = make_user(Role.MEMBER, email="zofia@uw.example")
    reviewer_id, reviewer_email, reviewer_password = make_user(Role.REVIEWER, email="jurate@vu.example")
    for email, password, locale in ((invitee_email, invitee_password, "pl"), (reviewer_email, reviewer_password, "lt")):
        chooser = app.test_client()
        sign_in(chooser, email, password)
        assert _switch(chooser, locale).status_code == 302
    with app.test_request_context("/", headers={"Accept-Language": "lt"}):
        review_world(pi_id, staff_id, reviewer_id, invitee_email)
        commit()  # and then the queued mail goes out
    smtp_server.wait_for(4)
    title = PROPOSAL_TEXT["title"]

    [invitation] = smtp_server.to(invitee_email)
    assert invitation["Subject"] == f"Zaproszenie do wniosku „{title}”"
    assert f"zaprasza Cię do wniosku „{title}” jako: współkierownik." in invitation.get_content()
    [review] = smtp_server.to(reviewer_email)
    assert review["Subject"] == f"Prašoma recenzijos: {title}"
    assert "Pirmiausia deklaruokite, ar turite interesų konfliktą" in review.get_content()
    [submitted] = smtp_server.to(pi_email)
    assert submitted["Subject"] == f"Proposal submitted: {title}" and "was submitted" in submitted.get_content()
    [office] = smtp_server.to(app.config["STAFF_EMAIL"])
    assert office["Subject"] == f"Proposal submitted: {title}"


def test_text_in_any_language_is_stored_and_shown_intact(app, make_user):
    """A Lithuanian interface, a title mixing Polish, Lithuanian and other scripts: saved and shown as typed."""
    from tests.proposal_support import PROPOSAL_TEXT, make_call, make_site

    title = "Żółć gęślą jaźń – Šiaulių ąčęėįšųūž – Ελληνικά 東京"
    _, email, password = make_user(Role.PI)
    with app.app_context():
        cpu, gpu = make_site()
        call_id = make_call(cpu, gpu).id
        cpu_id = cpu.id
        db.session.commit()
    client = app.test_client()
    sign_in(client, email, password)
    _switch(client, "lt")
    form = client.get(f"/proposals/new/{call_id}").get_data(as_text=True)
    assert _lang(form) == "lt"
    data = {**PROPOSAL_TEXT, "title": title, "csrf_token": csrf_token_from(form), f"request-{cpu_id}": "100"}
    response = client.post(f"/proposals/new/{call_id}", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert f"<h1>{title}</h1>" in page or title in page
    with app.app_context():
        from portal.proposals.models import Proposal

        assert db.session.scalar(select(Proposal.title)) == title
