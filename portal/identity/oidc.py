"""Sign-in through OpenID Connect providers (MyAccessID, eduGAIN proxies, Keycloak ...).

Providers come from ``PORTAL_OIDC_PROVIDERS``, a JSON list of objects with ``name``,
``label``, ``issuer``, ``client_id``, ``client_secret`` and optionally ``scopes``. Endpoints
and keys are discovered at ``<issuer>/.well-known/openid-configuration``. Authlib runs the
authorization code flow with PKCE (S256), checks ``state`` and ``nonce``, and validates the ID
token's signature against the provider's published keys and its ``iss``, ``aud``, ``exp``,
``iat`` and ``nonce`` claims.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, url_for
from flask_babel import gettext as _
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from sqlalchemy import func, select

from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import IdentityLink, User

#: Clock skew tolerated when checking ``exp`` and ``iat`` of ID tokens, in seconds.
LEEWAY = 60
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


@dataclass(frozen=True)
class OidcProvider:
    name: str  # in URLs: /login/oidc/<name>
    label: str  # on the sign-in button
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"


def parse_providers(raw: str | list[dict[str, Any]] | None) -> list[OidcProvider]:
    """Read the provider list (JSON text or parsed); a mistake stops the app at start."""
    items = json.loads(raw) if isinstance(raw, str) else (raw or [])
    providers = []
    for item in items:
        scopes = item.get("scopes") or "openid email profile"
        if isinstance(scopes, list):
            scopes = " ".join(scopes)
        provider = OidcProvider(name=item["name"], label=item.get("label") or item["name"], issuer=item["issuer"],
                                client_id=item["client_id"], client_secret=item.get("client_secret", ""),
                                scopes=scopes)
        if not _NAME.match(provider.name):
            raise ValueError(f"OIDC provider name {provider.name!r}: use lower-case letters, digits, '-', '_'")
        if "openid" not in provider.scopes.split():
            raise ValueError(f"OIDC provider {provider.name!r}: scopes must include 'openid'")
        providers.append(provider)
    if len({p.name for p in providers}) != len(providers):
        raise ValueError("OIDC provider names must be unique")
    return providers


def init_oidc(app: Flask) -> None:
    """One Authlib registry per app, so that apps with different providers can coexist (tests)."""
    providers = parse_providers(app.config.get("OIDC_PROVIDERS"))
    oauth = OAuth(app)
    for provider in providers:
        oauth.register(name=provider.name, client_id=provider.client_id, client_secret=provider.client_secret,
                       server_metadata_url=provider.discovery_url,
                       client_kwargs={"scope": provider.scopes, "code_challenge_method": "S256", "timeout": 15})
    app.extensions["portal_oidc"] = (oauth, {p.name: p for p in providers})


def providers() -> list[OidcProvider]:
    return list(current_app.extensions["portal_oidc"][1].values())


def provider_named(name: str) -> OidcProvider | None:
    return current_app.extensions["portal_oidc"][1].get(name)


def _client(provider: OidcProvider):
    oauth, _providers = current_app.extensions["portal_oidc"]
    return oauth.create_client(provider.name)


class SignInRefused(Exception):
    """The provider's answer cannot be trusted or used; the message says why, for the user."""


def _metadata(provider: OidcProvider) -> dict[str, Any]:
    try:
        metadata = _client(provider).load_server_metadata()
    except (requests.RequestException, ValueError) as exc:
        raise SignInRefused(_("The identity provider could not be reached. Try again later.")) from exc
    # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer it was fetched for.
    if metadata.get("issuer") != provider.issuer:
        raise SignInRefused(_("The identity provider's configuration names another issuer."))
    return metadata


def start_sign_in(provider: OidcProvider):
    """The redirect to the provider; Authlib keeps state, nonce and the PKCE verifier in the session."""
    _metadata(provider)
    redirect_uri = url_for("identity.oidc_callback", name=provider.name, _external=True)
    try:
        return _client(provider).authorize_redirect(redirect_uri)
    except (requests.RequestException, AuthlibBaseError) as exc:
        raise SignInRefused(_("The identity provider could not be reached. Try again later.")) from exc


def finish_sign_in(provider: OidcProvider) -> dict[str, Any]:
    """Check the provider's answer and return the ID token's validated claims."""
    _metadata(provider)
    claims_options = {"iss": {"essential": True, "value": provider.issuer}, "sub": {"essential": True}}
    try:
        token = _client(provider).authorize_access_token(claims_options=claims_options, leeway=LEEWAY)
    except Exception as exc:  # noqa: BLE001 — every failure is a refusal; _reason names the known ones
        raise SignInRefused(_reason(exc)) from exc
    claims = token.get("userinfo")
    if not claims:
        raise SignInRefused(_("The identity provider sent no ID token."))
    return dict(claims)


def _reason(exc: Exception) -> str:
    if isinstance(exc, MismatchingStateError):
        return _("This answer does not belong to a sign-in started in this browser, or it was used already "
                 "(state does not match).")
    if isinstance(exc, OAuthError):
        return _("The identity provider refused: %(error)s", error=exc.description or exc.error)
    if isinstance(exc, ExpiredTokenError):
        return _("The identity provider's ID token has expired.")
    if isinstance(exc, (InvalidClaimError, MissingClaimError)):
        claim = getattr(exc, "claim", "")
        if claim == "iss":
            return _("The ID token comes from an unknown issuer.")
        if claim == "nonce":
            return _("The ID token does not belong to this sign-in (nonce does not match).")
        return _("The ID token is not valid: %(error)s", error=exc.description)
    if isinstance(exc, JoseError):
        return _("The ID token's signature could not be verified.")
    if isinstance(exc, requests.RequestException):
        return _("The identity provider could not be reached. Try again later.")
    current_app.logger.exception("unexpected OpenID Connect failure")
    return _("The sign-in could not be completed.")


def _text(claims: dict[str, Any], *names: str) -> str:
    for name in names:
        value = claims.get(name)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value)
        if value:
            return str(value).strip()
    return ""


def user_for_claims(provider: OidcProvider, claims: dict[str, Any]) -> tuple[User, bool]:
    """Find the user linked to ``(issuer, sub)``, or create one on first sign-in. Flushes.

    Returns the user and whether it was created. Never links by e-mail: an address that already
    belongs to someone else is refused, and staff link such accounts by hand.
    """
    subject = str(claims["sub"])
    link = db.session.scalar(select(IdentityLink).where(IdentityLink.issuer == provider.issuer,
                                                        IdentityLink.subject == subject))
    name = _text(claims, "name")[:200] or " ".join(
        filter(None, (_text(claims, "given_name"), _text(claims, "family_name"))))[:200]
    affiliation = _text(claims, "schac_home_organization", "eduperson_scoped_affiliation",
                        "voperson_external_affiliation", "organization")[:300]
    created = False
    if link is None:
        email = _text(claims, "email").lower()
        if not email or len(email) > 320:
            raise SignInRefused(_("The identity provider did not release your e-mail address."))
        if db.session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
            raise SignInRefused(_("An account with the e-mail address %(email)s exists already. Ask the "
                                  "facility staff to link your identity provider account to it.", email=email))
        link = IdentityLink(user=User(email=email, name=name or email, affiliation=affiliation),
                            issuer=provider.issuer, subject=subject)
        db.session.add(link)
        db.session.flush()  # column defaults (active) apply
        created = True
    user = link.user
    if not user.active:
        raise SignInRefused(_("Your account is disabled. Contact the facility staff."))
    if name and not created:
        user.name = name
    if affiliation and not created:
        user.affiliation = affiliation
    link.last_sign_in_at = utcnow()
    db.session.flush()
    return user, created
