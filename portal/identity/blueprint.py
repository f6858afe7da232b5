"""Sign-in pages and the administrators' user list."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from portal.audit.operations import record
from portal.extensions import db
from portal.identity import oidc
from portal.identity.access import admin_required, public
from portal.identity.forms import LoginForm, UserRolesForm
from portal.identity.models import Role, User
from portal.identity.operations import update_user_roles
from portal.identity.providers import LocalPasswordProvider
from portal.identity.ratelimit import Limit, client_address, configured, hit, too_many_requests

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
        refusal = _rate_limited(f"login:{client_address()}:{email}", f"login:{client_address()}",
                                actor_label=email, provider="local")
        if refusal is not None:
            return refusal
        user = LocalPasswordProvider().authenticate(email, form.password.data)
        if user is not None:
            _sign_in(user, "local")
            return redirect(_safe_next(request.args.get("next")))
        record("auth.sign_in_failed", actor_label=email, details={"provider": "local"}, independent=True)
        flash(_("Wrong e-mail or password."), "error")
        return _login_page(form), 401
    return _login_page(form if local_enabled else None)


def _login_page(form: LoginForm | None) -> str:
    return render_template("identity/login.html", form=form, providers=oidc.providers(),
                           next=request.args.get("next"))


def _rate_limited(bucket: str, address_bucket: str | None = None, *, actor_label: str = "", provider: str):
    """Count a sign-in attempt per address and account (and per address alone); a 429 answer if over."""
    limit = configured("LOGIN_RATE_LIMIT")
    verdict = hit(bucket, limit)
    if verdict.allowed and address_bucket is not None:
        # Many accounts tried from one address: allow ten accounts' worth of attempts.
        verdict = hit(address_bucket, Limit(limit.count * 10, limit.period))
    if verdict.allowed:
        return None
    record("auth.rate_limited", actor_label=actor_label, details={"provider": provider}, independent=True)
    return too_many_requests(verdict)


def _sign_in(user: User, provider: str) -> None:
    # A fresh session: nothing set before sign-in (a planted cookie, leftover flow state) survives it.
    session.clear()
    login_user(user)
    record("auth.sign_in", user, f"user:{user.id}", {"provider": provider})


def _refused(message: str, status: int = 400):
    return render_template("identity/refused.html", message=message), status


@bp.route("/login/oidc/<name>")
@public
def oidc_login(name: str):
    """Start signing in at an OpenID Connect provider."""
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    provider = oidc.provider_named(name) or abort(404)
    session["oidc_next"] = _safe_next(request.args.get("next"))
    try:
        return oidc.start_sign_in(provider)
    except oidc.SignInRefused as exc:
        return _refused(str(exc), 502)


@bp.route("/login/oidc/<name>/callback")
@public
def oidc_callback(name: str):
    """The provider sends the browser back here with a code; check everything, then sign in."""
    if current_user.is_authenticated:
        return redirect(url_for("web.index"))
    provider = oidc.provider_named(name) or abort(404)
    refusal = _rate_limited(f"oidc:{client_address()}", provider=provider.name)
    if refusal is not None:
        return refusal
    next_url = session.pop("oidc_next", None) or url_for("web.index")
    try:
        claims = oidc.finish_sign_in(provider)
        user, created = oidc.user_for_claims(provider, claims)
    except oidc.SignInRefused as exc:
        db.session.rollback()
        session.clear()
        record("auth.sign_in_failed", actor_label=provider.name,
               details={"provider": provider.name, "reason": str(exc)}, independent=True)
        return _refused(str(exc))
    if created:
        record("user.created", user, f"user:{user.id}", {"provider": provider.name, "issuer": provider.issuer})
    _sign_in(user, provider.name)
    return redirect(_safe_next(next_url))


@bp.route("/logout", methods=["POST"])
def logout():
    record("auth.sign_out", current_user, f"user:{current_user.id}")
    logout_user()
    session.clear()
    flash(_("You are signed out."), "info")
    return redirect(url_for("identity.login"))


@bp.route("/admin/users")
@admin_required
def users():
    people = db.session.scalars(select(User).order_by(User.name)).all()
    return render_template("identity/users.html", users=people)


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def edit_user(user_id: int):
    user = db.get_or_404(User, user_id)
    form = UserRolesForm(obj=None)
    form.roles.choices = [(r.value, str(r.label)) for r in Role]
    if request.method == "GET":
        form.roles.data = [r.value for r in user.roles]
        form.unix_username.data = user.unix_username or ""
    if form.validate_on_submit():
        error = update_user_roles(user, {Role(v) for v in form.roles.data},
                                  form.unix_username.data or None, acting_user=current_user)
        if error is None:
            flash(_("Saved."), "info")
            return redirect(url_for("identity.users"))
        flash(error, "error")
    return render_template("identity/edit_user.html", user=user, form=form)
