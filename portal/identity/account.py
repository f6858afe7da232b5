"""The signed-in user's own settings: profile and personal API tokens."""
from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_login import current_user

from portal.i18n import LOCALE_COOKIE, LOCALE_COOKIE_MAX_AGE, LOCALES
from portal.identity.access import public
from portal.identity.forms import ProfileForm, TokenForm
from portal.identity.models import TokenScope
from portal.identity.operations import AccountError, countries, country_name, profile_from_provider, update_profile
from portal.identity.tokens import MAX_DAYS, TokenError, create_token, own_token, revoke_token, tokens_of
from portal.identity.views import _safe_next

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


@bp.route("/profile", methods=["GET", "POST"])
def profile():
    """Organisation, country and ORCID iD; what an identity provider supplies is shown, not edited."""
    provider = profile_from_provider(current_user)
    form = ProfileForm(formdata=None, obj=current_user) if request.method == "GET" else ProfileForm()
    form.country.choices = [("", _("Not set"))] + countries()
    errors: dict[str, str] = {}
    if form.validate_on_submit():
        try:
            # What the provider supplies is not on the form: keep it as it is.
            changed = update_profile(current_user, orcid=form.orcid.data,
                                     affiliation=current_user.affiliation if provider else form.affiliation.data,
                                     country=current_user.country if provider else form.country.data)
        except AccountError as exc:
            errors = exc.errors
        else:
            flash(_("Profile saved.") if changed else _("Nothing changed."), "info")
            return redirect(url_for("account.profile"))
    elif request.method == "POST":
        errors = {name: "; ".join(map(str, messages)) for name, messages in form.errors.items()}
    status = 422 if errors else 200
    return render_template("identity/profile.html", form=form, errors=errors, provider=provider,
                           provider_label=_provider_label(provider), country=country_name(current_user.country)), status


@bp.route("/language", methods=["POST"])
@public
def language():
    """The interface language: kept on the person (so e-mails follow it) and in a cookie for
    the browser (so the sign-in page and a signed-out visitor get it too)."""
    chosen = request.form.get("locale", "")
    if chosen not in LOCALES:
        abort(400)
    if current_user.is_authenticated:
        current_user.locale = chosen
    with force_locale(chosen):  # the confirmation is already in the new language
        flash(_("Language changed."), "info")
    response = redirect(_safe_next(request.form.get("next")))
    response.set_cookie(LOCALE_COOKIE, chosen, max_age=LOCALE_COOKIE_MAX_AGE, httponly=True, samesite="Lax",
                        secure=current_app.config["SESSION_COOKIE_SECURE"])
    return response


def _provider_label(name: str | None) -> str:
    from portal.identity.oidc import provider_named

    found = provider_named(name) if name else None
    return found.label if found is not None else (name or "")
