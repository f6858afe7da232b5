"""Business rules about people, shared by the web pages, the API and the CLI.

Every function here flushes and never commits. Changes to one account (its links, its state,
its profile's verification) first lock the account's row, so two staff doing the same thing at
once get one result and, the second, an :class:`AccountError` saying what happened meanwhile.
"""
from __future__ import annotations

import logging
import re
from datetime import datetime

from flask import has_request_context, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal.audit.operations import record
from portal.clock import utcnow
from portal.extensions import db
from portal.formatting import format_moment
from portal.identity.models import IdentityLink, Role, User
from portal.problems import Problems

log = logging.getLogger(__name__)

PROVIDER_SOURCE = "provider:"
#: Two-letter codes in Babel's territory list that ISO 3166-1 does not assign to a country
#: (exceptionally reserved, user-assigned, or groupings such as EU and UN).
NOT_ISO_3166 = frozenset({"AC", "CP", "CQ", "DG", "EA", "EU", "EZ", "IC", "QO", "TA", "UN", "XA", "XB", "XK", "ZZ"})
_ORCID = re.compile(r"^(\d{4})-?(\d{4})-?(\d{4})-?(\d{3}[\dX])$")


class AccountError(Problems):
    """An account, identity or profile cannot be changed as asked (``conflict``: someone else
    did it first)."""


def update_user_roles(user: User, roles: set[Role], unix_username: str | None, *,
                      acting_user: User) -> None:
    """Set a user's roles and Unix user name. Flushes; raises AccountError before any change."""
    if unix_username is not None and unix_username != user.unix_username:
        taken = db.session.scalar(select(User).where(User.unix_username == unix_username, User.id != user.id))
        if taken is not None:
            raise AccountError({"unix_username": _("The Unix user name %(name)s already belongs to %(other)s.",
                                                   name=unix_username, other=taken.name)})
    if user.id == acting_user.id and Role.ADMIN not in roles:
        raise AccountError({"roles": _("You cannot remove your own administrator role.")})
    before = {"roles": sorted(r.value for r in user.roles), "unix_username": user.unix_username}
    for role in Role:
        if role in roles:
            user.grant(role)
        else:
            user.revoke(role)
    user.unix_username = unix_username
    db.session.flush()
    record("user.roles_changed", acting_user, f"user:{user.id}",
           {"before": before, "after": {"roles": sorted(r.value for r in roles), "unix_username": unix_username}})


def user_by_email(email: str) -> User | None:
    return db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))


def _locked(user: User) -> User:
    """Lock the account's row for this transaction and read it (and its links) as committed now."""
    db.session.flush()
    db.session.execute(select(User).where(User.id == user.id).with_for_update()
                       .execution_options(populate_existing=True))
    db.session.expire(user, ["identity_links"])
    return user


def _audit(action: str, user: User, acting_user: User | None, details: dict | None = None) -> None:
    record(action, acting_user, f"user:{user.id}", details,
           actor_label=None if acting_user is not None else "command line")


def _who(user: User) -> str:
    return f"{user.name} <{user.email}>"


def _day(moment: datetime) -> str:
    """For the audit record: ISO, the same whoever reads it (messages use format_moment)."""
    return moment.strftime("%Y-%m-%d %H:%M")


# Identity links ---------------------------------------------------------------------------

def configured_provider(name: str):
    from portal.identity.oidc import provider_named, providers

    provider = provider_named((name or "").strip())
    if provider is None:
        known = ", ".join(p.name for p in providers()) or _("none")
        raise AccountError({"provider": _("No identity provider named “%(name)s” is configured (configured: "
                                          "%(known)s).", name=name, known=known)})
    return provider


def _holder_message(holder: User, user: User, provider_label: str, subject: str) -> str:
    if holder.id == user.id:
        return _("This %(provider)s account (subject %(subject)s) is already linked to %(user)s.",
                 provider=provider_label, subject=subject, user=_who(user))
    return _("This %(provider)s account (subject %(subject)s) is already linked to %(other)s; unlink it there "
             "first.", provider=provider_label, subject=subject, other=_who(holder))


def _link_holder(issuer: str, subject: str) -> User | None:
    return db.session.scalar(select(User).join(IdentityLink).where(IdentityLink.issuer == issuer,
                                                                   IdentityLink.subject == subject))


def link_identity(user: User, provider_name: str, subject: str, *, acting_user: User | None) -> IdentityLink:
    """Link the account ``subject`` at a configured provider to ``user``; flushes.

    The database's unique ``(issuer, subject)`` decides between two staff linking one identity
    at once: the second is told to whom it now belongs.
    """
    provider = configured_provider(provider_name)
    subject = (subject or "").strip()
    if not subject or len(subject) > 255:
        raise AccountError({"subject": _("Give the subject (the provider's identifier of the person, "
                                         "at most 255 characters).")})
    _locked(user)
    holder = _link_holder(provider.issuer, subject)
    if holder is not None:
        raise AccountError(_holder_message(holder, user, provider.label, subject), conflict=True)
    link = IdentityLink(user_id=user.id, issuer=provider.issuer, subject=subject, provider=provider.name)
    try:
        with db.session.begin_nested():
            db.session.add(link)
    except IntegrityError:  # linked by someone else after we looked
        holder = _link_holder(provider.issuer, subject)
        raise AccountError(_holder_message(holder, user, provider.label, subject) if holder else
                           _("Someone else changed this identity meanwhile; reload and try again."),
                           conflict=True) from None
    db.session.expire(user, ["identity_links"])
    _audit("user.identity_linked", user, acting_user,
           {"provider": provider.name, "issuer": provider.issuer, "subject": subject})
    return link


def find_link(user: User, provider_name: str, subject: str | None = None) -> IdentityLink:
    """The user's one link at the provider named ``provider_name`` (and with ``subject``, if given)."""
    from portal.identity.oidc import provider_named

    provider = provider_named(provider_name)
    issuer = provider.issuer if provider is not None else None
    links = [link for link in user.identity_links
             if link.provider == provider_name or (issuer is not None and link.issuer == issuer)]
    if subject:
        links = [link for link in links if link.subject == subject]
    if not links:
        raise AccountError(_("%(user)s has no identity at %(provider)s to unlink.", user=_who(user),
                             provider=provider_name + (f" ({subject})" if subject else "")), conflict=True)
    if len(links) > 1:
        raise AccountError({"subject": _("%(user)s has %(n)d identities at %(provider)s: say which subject to "
                                         "unlink (%(subjects)s).", user=_who(user), n=len(links),
                                         provider=provider_name,
                                         subjects=", ".join(link.subject for link in links))})
    return links[0]


def unlink_identity(user: User, link_id: int, *, acting_user: User | None, force: bool = False) -> None:
    """Remove one of the user's identity links; flushes.

    Refused when it is the last way the person can sign in (no password, no other link) unless
    ``force``; refused as a conflict when someone else removed it meanwhile.
    """
    _locked(user)
    link = next((link for link in user.identity_links if link.id == link_id), None)
    if link is None:
        raise AccountError(_("This identity is no longer linked to %(user)s: someone else unlinked it "
                             "meanwhile.", user=_who(user)), conflict=True)
    others = [other for other in user.identity_links if other.id != link.id]
    if not force and not user.password_hash and not others:
        raise AccountError(_("This is the last way %(user)s can sign in (no password, no other identity). "
                             "Unlinking it locks them out; confirm with “force” to do it anyway.",
                             user=_who(user)), conflict=True)
    details = {"provider": link.provider, "issuer": link.issuer, "subject": link.subject, "forced": force}
    db.session.execute(delete(IdentityLink).where(IdentityLink.id == link.id))
    db.session.expire(user, ["identity_links"])
    _audit("user.identity_unlinked", user, acting_user, details)


# Account state -----------------------------------------------------------------------------

def disable_user(user: User, reason: str, *, acting_user: User | None) -> None:
    """Disable an account: it is signed out at its next request, its tokens stop working, and its
    Slurm associations leave at the next reconcile (see :mod:`portal.grants.triggers`)."""
    reason = (reason or "").strip()
    if not reason or len(reason) > 500:
        raise AccountError({"reason": _("Give a reason (at most 500 characters): it is kept with the account.")})
    if acting_user is not None and acting_user.id == user.id:
        raise AccountError(_("You cannot disable your own account."))
    _locked(user)
    if not user.active:
        raise AccountError(_("%(user)s was already disabled on %(when)s (UTC): %(reason)s", user=_who(user),
                             when=format_moment(user.disabled_at), reason=user.disabled_reason),
                           conflict=True)
    user.active, user.disabled_at, user.disabled_reason = False, utcnow(), reason
    db.session.flush()
    _audit("user.disabled", user, acting_user, {"reason": reason})


def enable_user(user: User, *, acting_user: User | None) -> None:
    _locked(user)
    if user.active:
        raise AccountError(_("%(user)s is already active.", user=_who(user)), conflict=True)
    before = {"disabled_at": _day(user.disabled_at) if user.disabled_at else None, "reason": user.disabled_reason}
    user.active, user.disabled_at, user.disabled_reason = True, None, ""
    db.session.flush()
    _audit("user.enabled", user, acting_user, before)


def verify_profile(user: User, *, acting_user: User | None) -> None:
    """Staff confirm the organisation and country a person gave."""
    _locked(user)
    if not user.affiliation and not user.country:
        raise AccountError(_("%(user)s has given no organisation or country to verify.", user=_who(user)))
    if user.profile_verified_at is not None:
        raise AccountError(_("The profile of %(user)s was already verified on %(when)s (UTC).", user=_who(user),
                             when=format_moment(user.profile_verified_at)), conflict=True)
    user.profile_verified_at = utcnow()
    user.profile_verified_by_id = acting_user.id if acting_user is not None else None
    db.session.flush()
    _audit("user.profile_verified", user, acting_user, {"affiliation": user.affiliation, "country": user.country})


# The person's own profile ------------------------------------------------------------------

def countries(locale=None) -> list[tuple[str, str]]:
    """ISO 3166-1 alpha-2 codes with their names in ``locale`` (default: the request's), by name."""
    from babel import Locale

    names = Locale.parse(str(locale or get_locale() or "en")).territories
    return sorted(((code, name) for code, name in names.items()
                   if len(code) == 2 and code.isalpha() and code not in NOT_ISO_3166), key=lambda item: item[1])


def country_name(code: str | None) -> str:
    return dict(countries()).get(code or "", code or "")


def normalise_country(raw: str | None) -> str | None:
    code = (raw or "").strip().upper()
    if not code:
        return None
    if code not in dict(countries("en")):
        raise AccountError({"country": _("“%(code)s” is not an ISO 3166-1 country code.", code=raw)})
    return code


def normalise_orcid(raw: str | None) -> str | None:
    """``0000-0002-1825-0097`` from that or ``https://orcid.org/0000-0002-1825-0097``; checksum-checked."""
    text = (raw or "").strip()
    for prefix in ("https://orcid.org/", "http://orcid.org/", "orcid.org/"):
        if text.lower().startswith(prefix):
            text = text[len(prefix):]
    if not text:
        return None
    match = _ORCID.match(text.upper())
    if match is None:
        raise AccountError({"orcid": _("An ORCID iD looks like 0000-0002-1825-0097.")})
    digits = "".join(match.groups())
    if _orcid_check_digit(digits[:15]) != digits[15]:
        raise AccountError({"orcid": _("%(orcid)s is not a valid ORCID iD: its check digit does not match "
                                       "(a typing mistake?).", orcid="-".join(match.groups()))})
    return "-".join(match.groups())


def _orcid_check_digit(base: str) -> str:
    """ISO 7064 MOD 11-2, as ORCID specifies."""
    total = 0
    for digit in base:
        total = (total + int(digit)) * 2
    result = (12 - total % 11) % 11
    return "X" if result == 10 else str(result)


def _checked(check, raw: str | None, errors: dict[str, str]) -> str | None:
    try:
        return check(raw)
    except AccountError as exc:
        errors.update(exc.errors)
        return raw


def profile_from_provider(user: User) -> str | None:
    """The provider's name when organisation and country come from an identity provider."""
    return user.profile_source[len(PROVIDER_SOURCE):] if user.profile_source.startswith(PROVIDER_SOURCE) else None


def update_profile(user: User, *, affiliation: str, country: str | None, orcid: str | None) -> bool:
    """Save the person's own profile; True if anything changed. Flushes.

    Organisation and country that an identity provider supplies cannot be changed here. A
    changed organisation or country is the person's own word again: no longer verified.
    """
    errors: dict[str, str] = {}
    affiliation = (affiliation or "").strip()
    if len(affiliation) > 300:
        errors["affiliation"] = _("At most %(n)d characters.", n=300)
    country = _checked(normalise_country, country, errors)
    orcid = _checked(normalise_orcid, orcid, errors)
    organisation_changed = affiliation != user.affiliation or country != user.country
    if organisation_changed and profile_from_provider(user):
        errors[""] = _("Your organisation and country come from your identity provider and cannot be changed here.")
    if errors:
        raise AccountError(errors)
    before = {"affiliation": user.affiliation, "country": user.country, "orcid": user.orcid}
    if organisation_changed:
        user.affiliation, user.country = affiliation, country
        user.profile_source, user.profile_verified_at, user.profile_verified_by_id = "self", None, None
    user.orcid = orcid
    if before == {"affiliation": user.affiliation, "country": user.country, "orcid": user.orcid}:
        return False
    db.session.flush()
    record("user.profile_changed", user, f"user:{user.id}",
           {"before": before, "after": {"affiliation": affiliation, "country": country, "orcid": orcid}})
    return True


def profile_url() -> str:
    return url_for("account.profile") if has_request_context() else "/account/profile"
