"""Staff pages about people: the user list and one person's page, where administrators change
roles, identity links and the account's state. The rules are in :mod:`portal.identity.operations`."""
from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import pgettext
from flask_login import current_user
from sqlalchemy import Select, exists, select, text

from portal.clock import utcnow
from portal.extensions import db
from portal.identity import oidc
from portal.identity.access import admin_required, staff_required
from portal.identity.forms import ConfirmForm, DisableUserForm, LinkIdentityForm, UnlinkIdentityForm, UserRolesForm
from portal.identity.models import Role, RoleGrant, User
from portal.identity.operations import AccountError, country_name, disable_user, enable_user, link_identity, profile_from_provider, unlink_identity, update_user_roles, verify_profile
from portal.transactions import roll_back
from portal.web.listing import PageRequest, csv_response, matches_any, page_request, paginate

bp = Blueprint("people", __name__, url_prefix="/admin/users")


USER_FILTERS = ("role", "status", "country")
# The countries people's organisations are in, for the filter menu: one index lookup per
# country (a skip scan written out), where SELECT DISTINCT read all 60,000 accounts (8 ms).
COUNTRIES_IN_USE = text("""
    WITH RECURSIVE found(country) AS (
        SELECT MIN(country) FROM users
        UNION ALL
        SELECT (SELECT MIN(country) FROM users WHERE country > found.country) FROM found WHERE found.country IS NOT NULL)
    SELECT country FROM found WHERE country IS NOT NULL ORDER BY country""")
USER_SORTS = ("name", "newest", "email")


def _people(page: PageRequest) -> Select:
    """Accounts matching the search (name, e-mail, Unix name, organisation) and filters, in a stable order."""
    query = select(User)
    if page.search:
        query = query.where(matches_any(page.search, User.name, User.email, User.unix_username, User.affiliation))
    f = page.filters
    if f.get("role") in {r.value for r in Role}:
        query = query.where(exists(select(RoleGrant.id).where(RoleGrant.user_id == User.id,
                                                              RoleGrant.role == Role(f["role"]))))
    if f.get("status") in ("active", "disabled"):
        query = query.where(User.active.is_(f["status"] == "active"))
    if f.get("country"):
        query = query.where(User.country == f["country"].upper())
    order = {"name": (User.name,), "newest": (User.created_at.desc(),), "email": (User.email,)}[page.sort]
    return query.order_by(*order, User.id)


@bp.route("")
@staff_required
def users():
    """Every account, a page at a time, searchable and filterable (staff)."""
    page = page_request(USER_FILTERS, USER_SORTS)
    countries = db.session.scalars(COUNTRIES_IN_USE)
    choices = {"role": [r.value for r in Role], "status": ["active", "disabled"], "country": list(countries)}
    return render_template("identity/users.html", rows=paginate(_people(page), page), page=page, choices=choices)


@bp.route("/export.csv")
@staff_required
def export():
    """Every account the list's filter shows, as CSV (staff, as the list)."""
    page = page_request(USER_FILTERS, USER_SORTS)

    def row(user: User):
        return (user.name, user.email, user.unix_username or "", user.affiliation, user.country or "",
                " ".join(sorted(r.value for r in user.roles)), "active" if user.active else "disabled",
                user.created_at.date())

    header = (pgettext("person", "Name"), _("E-mail"), _("Unix user"), _("Organisation"), _("Country"), _("Roles"), _("Account"),
              _("Created"))
    return csv_response(f"users-{utcnow().date().isoformat()}.csv", header, _people(page), row)


def _roles_form(**kwargs) -> UserRolesForm:
    form = UserRolesForm(**kwargs)
    form.roles.choices = [(r.value, str(r.label)) for r in Role]
    return form


def _link_form() -> LinkIdentityForm:
    form = LinkIdentityForm()
    form.provider.choices = [(p.name, f"{p.label} ({p.name})") for p in oidc.providers()]
    return form


def _user_page(user: User, roles_form: UserRolesForm | None = None, status: int = 200):
    """The person's page; ``roles_form`` as posted, or else filled in from the account."""
    if roles_form is None:
        roles_form = _roles_form(formdata=None)
        roles_form.roles.data = [r.value for r in user.roles]
        roles_form.unix_username.data = user.unix_username or ""
    configured = {p.name: p for p in oidc.providers()}
    by_issuer = {p.issuer: p for p in configured.values()}
    links = [(link, configured.get(link.provider) or by_issuer.get(link.issuer)) for link in user.identity_links]
    verifier = db.session.get(User, user.profile_verified_by_id) if user.profile_verified_by_id else None
    return render_template(
        "identity/edit_user.html", user=user, form=roles_form, links=links, verifier=verifier,
        country=country_name(user.country), provider_source=profile_from_provider(user), configured=configured,
        link_form=_link_form(), unlink_form=UnlinkIdentityForm(formdata=None), disable_form=DisableUserForm(formdata=None),
        confirm_form=ConfirmForm(formdata=None)), status


@bp.route("/<int:user_id>", methods=["GET", "POST"])
@staff_required
def user(user_id: int):
    person = db.get_or_404(User, user_id)
    if request.method == "GET":
        return _user_page(person)
    if not current_user.has_role(Role.ADMIN):
        abort(403)
    form = _roles_form()
    if form.validate_on_submit():
        try:
            update_user_roles(person, {Role(v) for v in form.roles.data}, form.unix_username.data or None,
                              acting_user=current_user)
        except AccountError as exc:
            flash(exc.message, "error")
            return _user_page(person, form, status=400)
        flash(_("Saved."), "info")
        return redirect(url_for("people.users"))
    return _user_page(person, form)


def _change(user_id: int, make_form: Callable, change: Callable[[User, object], str]):
    """Validate the form ``make_form`` makes, run ``change(user, form)`` (an operation) and go back to the user's page,
    saying what was done; a refusal is shown on the page (400, or 409 when someone else came first)."""
    person = db.get_or_404(User, user_id)
    form = make_form()
    if not form.validate_on_submit():
        messages = [f"{getattr(form, name).label.text}: {'; '.join(map(str, errors))}"
                    for name, errors in form.errors.items() if name != "csrf_token"]
        flash(" ".join(messages) or _("The form expired; reload the page and try again."), "error")
        return _user_page(person, status=400)
    try:
        done = change(person, form)
    except AccountError as exc:
        roll_back()
        flash(str(exc), "error")
        return _user_page(db.get_or_404(User, user_id), status=409 if exc.conflict else 400)
    flash(done, "info")
    return redirect(url_for("people.user", user_id=person.id))


@bp.route("/<int:user_id>/link", methods=["POST"])
@admin_required
def link(user_id: int):
    def change(person: User, form: LinkIdentityForm) -> str:
        made = link_identity(person, form.provider.data, form.subject.data, acting_user=current_user)
        return _("Linked %(provider)s subject %(subject)s.", provider=made.provider, subject=made.subject)

    return _change(user_id, _link_form, change)


@bp.route("/<int:user_id>/unlink", methods=["POST"])
@admin_required
def unlink(user_id: int):
    def change(person: User, form: UnlinkIdentityForm) -> str:
        link_id = int(form.link_id.data) if str(form.link_id.data).isdigit() else 0
        unlink_identity(person, link_id, acting_user=current_user, force=form.force.data)
        return _("Identity unlinked.")

    return _change(user_id, UnlinkIdentityForm, change)


@bp.route("/<int:user_id>/disable", methods=["POST"])
@admin_required
def disable(user_id: int):
    def change(person: User, form: DisableUserForm) -> str:
        disable_user(person, form.reason.data, acting_user=current_user)
        return _("The account is disabled: it is signed out at its next request.")

    return _change(user_id, DisableUserForm, change)


@bp.route("/<int:user_id>/enable", methods=["POST"])
@admin_required
def enable(user_id: int):
    def change(person: User, _form) -> str:
        enable_user(person, acting_user=current_user)
        return _("The account is active again.")

    return _change(user_id, ConfirmForm, change)


@bp.route("/<int:user_id>/verify-profile", methods=["POST"])
@admin_required
def verify(user_id: int):
    def change(person: User, _form) -> str:
        verify_profile(person, acting_user=current_user)
        return _("Organisation and country verified.")

    return _change(user_id, ConfirmForm, change)
