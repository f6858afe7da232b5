"""Sign-in and sign-out pages (the staff's user pages are in :mod:`portal.identity.people`)."""
from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user

from portal.audit.operations import record
from portal.identity import oidc
from portal.identity.access import public
from portal.identity.forms import LoginForm
from portal.identity.models import User
from portal.identity.providers import LocalPasswordProvider
from portal.identity.ratelimit import Limit, client_address, configured, exceeded, hit, too_many_requests
from portal.transactions import roll_back

bp = Blueprint("identity", __name__)


def _safe_next(target: str | None) -> str:
    """Only follow ``next`` to a path on this site (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("web.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    local_enabled = current_app.config["LOCAL_LOGIN_ENABLED"]
    if request.method == "POST" and not local_enabled:
        abort(404)
    form = LoginForm()
    if local_enabled and form.validate_on_submit():
        email = form.email.data.strip().lower()
        # Only failures are counted: colleagues behind one address never use up each other's budget.
        failures = _failure_buckets(f"login:{client_address()}:{email}")
        refusal = _over_limit(failures, actor_label=email, provider="local")
        if refusal is not None:
            return refusal
        user = LocalPasswordProvider().authenticate(email, form.password.data)
        if user is not None:
            _sign_in(user, "local")
            return redirect(_safe_next(request.args.get("next")))
        _count_failure(failures)
        record("auth.sign_in_failed", actor_label=email, details={"provider": "local"}, independent=True)
        flash(_("Wrong e-mail or password."), "error")
        return _login_page(form), 401
    return _login_page(form if local_enabled else None)


def _login_page(form: LoginForm | None) -> str:
    return render_template("identity/login.html", form=form, providers=oidc.providers(),
                           next=request.args.get("next"))


def _failure_buckets(bucket: str) -> list[tuple[str, Limit]]:
    """Failed sign-ins counted per ``bucket`` (an account or a browser at one address) and, ten
    times as many, per address alone: many accounts tried from one address hit the second."""
    limit = configured("LOGIN_RATE_LIMIT")
    return [(bucket, limit), (f"sign-in-failures:{client_address()}", Limit(limit.count * 10, limit.period))]


def _over_limit(buckets: list[tuple[str, Limit]], *, actor_label: str = "", provider: str):
    """A 429 answer when any bucket is at its limit already (looking does not count)."""
    for bucket, limit in buckets:
        verdict = exceeded(bucket, limit)
        if not verdict.allowed:
            record("auth.rate_limited", actor_label=actor_label, details={"provider": provider}, independent=True)
            return too_many_requests(verdict)
    return None


def _count_failure(buckets: list[tuple[str, Limit]]) -> None:
    for bucket, limit in buckets:
        hit(bucket, limit)


def _sign_in(user: User, provider: str) -> None:
    # A fresh session: nothing set before sign-in (a planted cookie, leftover flow state) survives it.
    session.clear()
    login_user(user)
    record("auth.sign_in", user, f"user:{user.id}", {"provider": provider})


def _refused(message: str, status: int = 400):
    return render_template("identity/refused.html", message=message), status


#: ID tokens larger than this are not kept for logout (the session is a cookie of about 4 KB);
#: the provider is then told the client instead (``client_id``).
MAX_KEPT_ID_TOKEN = 2000


@bp.route("/login/oidc/<name>")
@public
def oidc_login(name: str):
    """Start signing in at an OpenID Connect provider."""
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    provider = oidc.provider_named(name) or abort(404)
    session["oidc_next"] = _safe_next(request.args.get("next"))
    # Failures are counted per browser (and per address): one colleague's failures behind a
    # shared address do not lock out the others.
    session.setdefault("oidc_browser", secrets.token_urlsafe(12))
    try:
        return oidc.start_sign_in(provider)
    except oidc.SignInRefused as exc:
        return _refused(str(exc), exc.status)


@bp.route("/login/oidc/<name>/callback")
@public
def oidc_callback(name: str):
    """The provider sends the browser back here with a code; check everything, then sign in."""
    if current_user.is_authenticated:
        return redirect(url_for("web.index"))
    provider = oidc.provider_named(name) or abort(404)
    if request.args.get("error"):
        # The provider (or someone pretending to be it) says no: nothing was exchanged, nothing
        # is counted. The code is the provider's, e.g. access_denied when the person cancelled.
        error = request.args["error"][:100]
        current_app.logger.warning("OIDC provider %s answered the sign-in with error %s: %s", provider.name,
                                   error, request.args.get("error_description", "")[:300])
        return _refused(_("The identity provider did not sign you in (%(error)s).", error=error))
    browser = session.get("oidc_browser") or "none"
    failures = _failure_buckets(f"oidc:{provider.name}:{client_address()}:{browser}")
    refusal = _over_limit(failures, actor_label=provider.name, provider=provider.name)
    if refusal is not None:
        return refusal
    next_url = session.pop("oidc_next", None) or url_for("web.index")
    try:
        result = oidc.finish_sign_in(provider)
        user, created = oidc.user_for_claims(provider, result.claims)
    except oidc.SignInRefused as exc:
        roll_back()
        session.clear()
        session["oidc_browser"] = browser
        if exc.counts:
            _count_failure(failures)
        record("auth.sign_in_failed", actor_label=provider.name,
               details={"provider": provider.name, "reason": str(exc)}, independent=True)
        return _refused(str(exc), exc.status)
    if created:
        record("user.created", user, f"user:{user.id}", {"provider": provider.name, "issuer": provider.issuer})
    _sign_in(user, provider.name)
    session["oidc_provider"] = provider.name
    if len(result.id_token) <= MAX_KEPT_ID_TOKEN:
        session["oidc_id_token"] = result.id_token
    return redirect(_safe_next(next_url))


@bp.route("/logout", methods=["POST"])
def logout():
    """Sign out here and, when the person came through a provider that offers it, there too."""
    provider = oidc.provider_named(session.get("oidc_provider") or "")
    id_token = session.get("oidc_id_token")
    record("auth.sign_out", current_user, f"user:{current_user.id}")
    logout_user()
    session.clear()
    if provider is not None:
        target = oidc.logout_url(provider, id_token, url_for("identity.login", _external=True))
        if target is not None:
            # A page that moves on by itself rather than a redirect: the browser's form-action
            # policy ('self') would block a form post redirected to the provider's host.
            return render_template("identity/signing_out.html", target=target, provider=provider)
        flash(_("You are signed out of the portal. Close the browser to end your session at %(provider)s.",
                provider=provider.label), "info")
        return redirect(url_for("identity.login"))
    flash(_("You are signed out."), "info")
    return redirect(url_for("identity.login"))
