"""The signed-in user's own settings: personal API tokens."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from portal.identity.forms import TokenForm
from portal.identity.tokens import MAX_DAYS, TokenError, TokenScope, create_token, own_token, revoke_token, tokens_of

bp = Blueprint("account", __name__, url_prefix="/account")


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    form = TokenForm()
    form.scope.choices = [(s.value, str(s.label)) for s in TokenScope]
    secret = None
    if form.validate_on_submit():
        try:
            token, secret = create_token(current_user, form.name.data, TokenScope(form.scope.data), form.days.data)
        except TokenError as exc:
            flash(str(exc), "error")
        else:
            flash(_("Token “%(name)s” created. Copy it now: it is not shown again.", name=token.name), "info")
            form = TokenForm(formdata=None)
            form.scope.choices = [(s.value, str(s.label)) for s in TokenScope]
    response = render_template("identity/tokens.html", form=form, tokens=tokens_of(current_user),
                               secret=secret, max_days=MAX_DAYS)
    return response, 200, {"Cache-Control": "no-store"}


@bp.route("/tokens/<int:token_id>/revoke", methods=["POST"])
def revoke(token_id: int):
    token = own_token(current_user, token_id) or abort(404)
    revoke_token(token, acting_user=current_user)
    flash(_("Token “%(name)s” revoked.", name=token.name), "info")
    return redirect(url_for("account.tokens"))
