"""HPC allocation portal: calls, proposals, review, and grants that Slurm enforces."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from flask import Flask, current_app

from portal import config as portal_config
from portal.shipped import shipped_folder

__version__ = "0.1.0"
MIGRATIONS_DIR = shipped_folder("migrations")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the application. ``config`` overrides what the environment gives."""
    instance_path = (config or {}).get("INSTANCE_PATH") or os.environ.get("PORTAL_INSTANCE_PATH")
    app = Flask(__name__, instance_path=str(Path(instance_path).resolve()) if instance_path else None)
    app.config.from_mapping(portal_config.from_environment(Path(app.instance_path)))
    from portal.web.converters import DatabaseIdConverter

    app.url_map.converters["int"] = DatabaseIdConverter
    if config:
        app.config.update(config)
        if "SQLALCHEMY_DATABASE_URI" in config:
            app.config["SQLALCHEMY_DATABASE_URI"] = portal_config.normalise_database_url(
                config["SQLALCHEMY_DATABASE_URI"])
    if not app.debug:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin set-up chatter, per worker

    from portal import models  # noqa: F401  (registers every table)
    from portal.extensions import babel, csrf, db, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True, compare_type=True)
    # Sign-in is checked before CSRF, so anonymous callers get 401 / the sign-in page.
    from portal.identity.access import enforce_sign_in, protect_from_csrf
    from portal.web.input import refuse_nul_characters

    app.before_request(enforce_sign_in)
    app.before_request(refuse_nul_characters)
    # CSRF is checked by protect_from_csrf, which knows API-token requests carry no cookie.
    app.config["WTF_CSRF_CHECK_DEFAULT"] = False
    csrf.init_app(app)
    app.before_request(protect_from_csrf)
    if app.config.get("PROXY_FIX_HOPS"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["PROXY_FIX_HOPS"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    babel.init_app(app, locale_selector=_select_locale)
    from portal.i18n import install_form_translations, install_template_gettext

    install_template_gettext(app)
    install_form_translations()  # WTForms' own messages in Lithuanian too
    _init_login(app, login_manager)
    from portal.identity.oidc import init_oidc

    init_oidc(app)

    from portal.routes import register_api, register_pages
    from portal.web.errors import register_error_handlers

    register_pages(app)
    register_api(app)
    register_error_handlers(app)
    from portal.grants.triggers import init_app as init_grants

    init_grants(app)
    from portal.transactions import finish_request

    app.after_request(finish_request)  # the request owns its transaction (portal.transactions)
    app.after_request(_security_headers)
    _register_template_helpers(app)

    from portal.cli import register_cli

    register_cli(app)
    return app


def _select_locale() -> str | None:
    from portal.i18n import select_locale

    return select_locale()


def _init_login(app: Flask, login_manager) -> None:
    from sqlalchemy.orm import joinedload

    from portal.extensions import db
    from portal.identity.models import User

    login_manager.init_app(app)
    login_manager.login_view = "identity.login"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_user(user_id: str) -> User | None:
        # Flask-Login checks is_active only in login_user; a session of an account disabled
        # since then would go on working, so the loader refuses it: signed out at the next request.
        # The roles come in the same query: every page asks them, and a second round trip to
        # PostgreSQL on every request cost more than the join.
        user = db.session.get(User, int(user_id), options=[joinedload(User.role_grants)])
        if user is not None and not user.is_active:
            _sign_out_disabled()
            return None
        return user

    from portal.identity.access import load_user_from_request

    login_manager.request_loader(load_user_from_request)


def _sign_out_disabled() -> None:
    from flask import flash, session
    from flask_babel import gettext as _

    session.clear()
    flash(_("Your account is disabled, so you were signed out. Contact the facility staff."), "error")


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
    )
    response.headers.setdefault("X-Frame-Options", "DENY")
    if current_app.config["SESSION_COOKIE_SECURE"]:
        response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    return response


def _register_template_helpers(app: Flask) -> None:
    from flask_babel import get_locale

    from portal.formatting import format_day, format_moment, format_number
    from portal.i18n import LOCALES
    from portal.identity.models import Role

    app.jinja_env.globals["Role"] = Role
    app.jinja_env.globals["LOCALES"] = LOCALES
    app.jinja_env.globals["get_locale"] = get_locale
    app.jinja_env.filters["num"] = format_number
    app.jinja_env.filters["day"] = format_day  # dates and times in the reader's locale (UTC)
    app.jinja_env.filters["moment"] = format_moment
