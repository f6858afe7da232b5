"""The interface languages and how one is chosen for a request or an e-mail.

English is the source language (every string is written in English and goes through Babel);
Polish and Lithuanian are the facility's other languages, translated in
``portal/translations/<locale>/LC_MESSAGES/messages.po`` (see ``scripts/translations.sh``).
"""
from __future__ import annotations

from pathlib import Path

from flask import g, has_request_context, request
from flask_babel import get_locale, get_translations

TRANSLATIONS_DIR = Path(__file__).resolve().parent / "translations"

# Each language named in itself: a person who cannot read the current one still finds theirs.
LOCALES: dict[str, str] = {"en": "English", "pl": "Polski", "lt": "Lietuvių"}
DEFAULT_LOCALE = "en"
LOCALE_COOKIE = "portal_locale"
LOCALE_COOKIE_MAX_AGE = 365 * 24 * 3600


def select_locale() -> str | None:
    """The person's saved choice, then the browser's cookie, then Accept-Language."""
    if not has_request_context():
        return None  # the command line: the default locale
    if not g.get("_portal_selecting_locale"):
        # Loading the user may itself translate a message (a disabled account is signed out
        # with a flash); that inner call skips the user instead of loading it again forever.
        g._portal_selecting_locale = True
        try:
            from flask_login import current_user

            chosen = getattr(current_user, "locale", None)
        finally:
            g._portal_selecting_locale = False
        if chosen in LOCALES:
            return chosen
    cookie = request.cookies.get(LOCALE_COOKIE)
    if cookie in LOCALES:
        return cookie
    return request.accept_languages.best_match(list(LOCALES)) or DEFAULT_LOCALE


def _babel_context():
    """Flask-Babel's per-request namespace once it has chosen the locale; None before, or outside a request."""
    try:
        ctx = g._flask_babel
        _ = ctx.babel_locale  # raises until Flask-Babel has chosen the request's locale
    except (AttributeError, RuntimeError):
        return None
    return ctx


def current_locale():
    """The locale in force (``get_locale()``, a ``force_locale`` block included), read cheaply.

    A list page formats a hundred numbers and dates and asks for a hundred translations;
    Flask-Babel's own lookup of the locale and its catalog costs a few microseconds each
    time (context lookups and ``str(locale)`` for the cache key), together about a tenth of
    a list page. Once Flask-Babel has chosen the request's locale it sits on its context.
    """
    ctx = _babel_context()
    return ctx.babel_locale if ctx is not None else get_locale()


def current_translations():
    """The catalog of the locale in force, found once per request and locale."""
    ctx = _babel_context()
    if ctx is None:
        return get_translations()
    cached = getattr(ctx, "portal_translations", None)
    # Compared by identity: force_locale (mail in the recipient's language) puts another
    # Locale object on the context for its block and restores the request's one after.
    if cached is None or cached[0] is not ctx.babel_locale:
        cached = ctx.portal_translations = (ctx.babel_locale, get_translations())
    return cached[1]


def install_template_gettext(app) -> None:
    """Templates' ``_``, ``ngettext`` and ``pgettext`` through :func:`current_translations`."""
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: current_translations().ugettext(s),
        ngettext=lambda s, p, n: current_translations().ungettext(s, p, n),
        pgettext=lambda c, s: current_translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: current_translations().unpgettext(c, s, p, n),
        newstyle=True)


def N_(message: str) -> str:
    """Mark ``message`` for extraction only; it is translated where it is shown (``_(value)``)."""
    return message


# Stored values that pages show through ``_(value)`` (status columns, filter menus) and CSV
# headers translated as ``_(h)``: marked here so that extraction puts them in the catalogs.
# tests/test_i18n.py fails when an enum, status list or CSV header gains a value missing from
# the catalogs. Slurm's own job states and audit action names stay as they are.
SHOWN_VALUES = (
    # projects, grants (statuses) and grant requests
    N_("pending"), N_("active"), N_("suspended"), N_("closed"), N_("expired"),
    N_("open"), N_("approved"), N_("refused"),
    # proposals (states, as the filter menu offers them)
    N_("draft"), N_("submitted"), N_("admissible"), N_("inadmissible"), N_("technically_assessed"),
    N_("in_review"), N_("reviewed"), N_("replied"), N_("awarded"), N_("rejected"),
    # calls, review assignments, benchmark verdicts
    N_("upcoming"), N_("declare"), N_("to_review"), N_("passed"), N_("failed"), N_("no_reference"),
    # CSV column headers (each feature's listing.CSV_HEADER) not said elsewhere
    N_("Largest cost (minutes)"), N_("PI e-mail"), N_("People"), N_("Review workflow"), N_("Allocation start"),
    N_("Allocation end"), N_("Who (e-mail)"), N_("Assignment"), N_("Assigned (UTC)"), N_("Id"), N_("Created (UTC)"),
    N_("Measured (UTC)"), N_("Array"), N_("References entry"),
)


class FormTranslations:
    """WTForms' own messages ("This field is required.") in the reader's language.

    WTForms ships Polish but no Lithuanian: ``portal/translations/<locale>/LC_MESSAGES/wtforms.po``
    fills in, with WTForms' catalog behind it. Installed as every FlaskForm's
    ``Meta.get_translations`` (WTForms' hook for this) by :func:`install_form_translations`.
    """

    def _translations(self):
        from babel import support
        from flask_babel import get_locale
        from wtforms.i18n import messages_path

        locale = get_locale()
        cache = g.setdefault("_portal_form_translations", {})
        if str(locale) not in cache:
            theirs = support.Translations.load(messages_path(), [locale], domain="wtforms")
            ours = support.Translations.load(str(TRANSLATIONS_DIR), [locale], domain="wtforms")
            if isinstance(ours, support.Translations):
                ours.add_fallback(theirs)
                theirs = ours
            cache[str(locale)] = theirs
        return cache[str(locale)]

    def gettext(self, string: str) -> str:
        return self._translations().ugettext(string)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._translations().ungettext(singular, plural, n)


def install_form_translations() -> None:
    from flask import current_app
    from flask_wtf import FlaskForm

    translations = FormTranslations()

    def get_translations(meta, form):
        if not current_app.config.get("WTF_I18N_ENABLED", True) or not has_request_context():
            return None  # WTForms' English
        return translations

    FlaskForm.Meta.get_translations = get_translations
