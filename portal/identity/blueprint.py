"""Sign-in pages and the administrators' user list."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user, logout_user
from sqlalchemy import select

from portal.extensions import db
from portal.identity.access import admin_required, public
from portal.identity.forms import LoginForm, UserRolesForm
from portal.identity.models import Role, User
from portal.identity.operations import update_user_roles
from portal.identity.providers import LocalPasswordProvider

bp = Blueprint("identity", __name__)


def _safe_next(target: str | None) -> str:
    """Only follow ``next`` to a path on this site (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("web.index")


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if not current_app.config["LOCAL_LOGIN_ENABLED"]:
        abort(404)
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = LoginForm()
    if form.validate_on_submit():
        user = LocalPasswordProvider().authenticate(form.email.data, form.password.data)
        if user is not None:
            login_user(user)
            current_app.logger.info("sign-in user=%s provider=local", user.id)
            return redirect(_safe_next(request.args.get("next")))
        flash(_("Wrong e-mail or password."), "error")
        return render_template("identity/login.html", form=form), 401
    return render_template("identity/login.html", form=form)


@bp.route("/logout", methods=["POST"])
def logout():
    logout_user()
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
