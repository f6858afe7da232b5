"""Sign-in through OpenID Connect providers (MyAccessID, eduGAIN proxies, Keycloak ...).

Providers come from ``PORTAL_OIDC_PROVIDERS``, a JSON list of objects. Required: ``name``
(in URLs, ``/login/oidc/<name>``), ``issuer`` (exactly as the provider's discovery document
spells it, trailing slash included), ``client_id`` and ``client_secret``. Optional, with
defaults:

- ``label`` (the sign-in button), ``scopes`` ("openid email profile");
- ``token_endpoint_auth_method``: ``client_secret_basic`` (default) or ``client_secret_post``;
- ``connect_timeout`` (3 s) and ``timeout`` (7 s, reading an answer): every call to the
  provider is bounded by them; ``leeway`` (60 s of clock skew on ``exp``/``iat``);
  ``discovery_ttl`` (3600 s before the discovery document and keys are read again);
- ``email_verified``: ``"required"`` (default: an address counts as verified only when the
  provider says ``email_verified: true``) or ``"assumed"`` (the provider verifies every address
  it releases, as some federations do without saying so). An unverified address is stored but
  never used to accept an invitation;
- ``userinfo`` (true): also read the userinfo endpoint when the provider offers one, for
  claims it does not put into the ID token;
- ``claims``: which claims hold ``email``, ``email_verified``, ``name``, ``organisation`` and
  ``country`` (a claim name or a list tried in order); ``country_from_organisation_domain``
  (false): take the country from the organisation's domain (``uni.example.lt`` is LT);
- ``roles``: ``[{"claim": "eduperson_entitlement", "value": "urn:geant:...:staff#*", "role":
  "staff"}]``: a facility role for everyone whose claim (a string or a list) has a value
  matching the pattern (``*`` and ``?`` wildcards, case-sensitive). Roles granted this way are
  taken away at a later sign-in whose claims no longer match; roles staff granted stay;
- ``logout`` (true): signing out of the portal also ends the provider's session when the
  provider offers RP-initiated logout (``end_session_endpoint``).

Authlib runs the authorization code flow with PKCE (S256), checks ``state`` and ``nonce``, and
validates the ID token's signature against the provider's published keys and its ``iss``,
``aud``, ``exp``, ``iat`` and ``nonce`` claims. A mistake in the configuration stops the app
at start with a message naming the provider and the key.
"""
from __future__ import annotations

import difflib
import fnmatch
import ipaddress
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from authlib.integrations.flask_client import OAuth
from flask import Flask, current_app, url_for
from flask_babel import gettext as _
from joserfc.errors import ExpiredTokenError, InvalidClaimError, JoseError, MissingClaimError
from sqlalchemy import func, select

from portal.audit.operations import record
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import IdentityLink, Role, User

log = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")
AUTH_METHODS = ("client_secret_basic", "client_secret_post")
EMAIL_POLICIES = ("required", "assumed")
#: Where each profile value is looked for, unless the provider's ``claims`` says otherwise.
DEFAULT_CLAIMS: dict[str, tuple[str, ...]] = {
    "email": ("email",),
    "email_verified": ("email_verified",),
    "name": ("name",),
    "organisation": ("schac_home_organization", "organisation", "organization",
                     "voperson_external_affiliation", "eduperson_scoped_affiliation"),
    "country": ("country", "schac_country", "c"),
}
#: How long a provider that could not be reached is not asked again (per worker), so that a
#: provider that hangs costs one timeout per minute instead of one per sign-in.
UNREACHABLE_BACKOFF = 60.0
KNOWN_KEYS = {"name", "label", "issuer", "client_id", "client_secret", "scopes", "token_endpoint_auth_method",
              "connect_timeout", "timeout", "leeway", "discovery_ttl", "email_verified", "userinfo", "claims",
              "country_from_organisation_domain", "roles", "logout"}


class ProviderConfigError(ValueError):
    """``PORTAL_OIDC_PROVIDERS`` cannot be used; the message names the provider and the key."""


@dataclass(frozen=True)
class RoleRule:
    claim: str
    pattern: str
    role: Role

    def matches(self, claims: dict[str, Any]) -> bool:
        value = claims.get(self.claim)
        values = value if isinstance(value, list) else [value]
        return any(isinstance(v, str) and fnmatch.fnmatchcase(v, self.pattern) for v in values)


@dataclass(frozen=True)
class OidcProvider:
    name: str  # in URLs: /login/oidc/<name>
    label: str  # on the sign-in button
    issuer: str
    client_id: str
    client_secret: str
    scopes: str = "openid email profile"
    token_endpoint_auth_method: str = "client_secret_basic"
    connect_timeout: float = 3.0
    timeout: float = 7.0
    leeway: int = 60
    discovery_ttl: float = 3600.0
    email_verified: str = "required"
    userinfo: bool = True
    claims: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_CLAIMS), hash=False)
    country_from_organisation_domain: bool = False
    roles: tuple[RoleRule, ...] = ()
    logout: bool = True

    @property
    def discovery_url(self) -> str:
        return self.issuer.rstrip("/") + "/.well-known/openid-configuration"

    @property
    def role_source(self) -> str:
        return f"oidc:{self.name}"


def _problem(index: int, item: dict[str, Any], message: str) -> ProviderConfigError:
    label = f" ({item['name']!r})" if isinstance(item, dict) and isinstance(item.get("name"), str) else ""
    return ProviderConfigError(f"PORTAL_OIDC_PROVIDERS[{index}]{label}: {message}")


def _number(index, item, key, default, low, high) -> float:
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise _problem(index, item, f"{key!r} must be a number of seconds from {low} to {high}, not {value!r}")
    return float(value)


def _flag(index, item, key, default) -> bool:
    value = item.get(key, default)
    if not isinstance(value, bool):
        raise _problem(index, item, f"{key!r} must be true or false, not {value!r}")
    return value


def _issuer(index: int, item: dict[str, Any]) -> str:
    issuer = item["issuer"]
    parts = urlsplit(issuer) if isinstance(issuer, str) else None
    if parts is None or not parts.netloc or parts.query or parts.fragment:
        raise _problem(index, item, f"'issuer' must be the provider's URL (https://...), not {issuer!r}")
    host = parts.hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise _problem(index, item, f"'issuer' must use https (plain http only on this machine's loopback): {issuer!r}")
    return issuer


def _claims(index: int, item: dict[str, Any]) -> dict[str, tuple[str, ...]]:
    given = item.get("claims", {})
    if not isinstance(given, dict):
        raise _problem(index, item, "'claims' must be an object such as {\"organisation\": \"schac_home_organization\"}")
    claims = dict(DEFAULT_CLAIMS)
    for key, value in given.items():
        if key not in DEFAULT_CLAIMS:
            raise _problem(index, item, f"unknown entry {key!r} in 'claims'{_suggest(key, DEFAULT_CLAIMS)}; "
                                        f"known: {', '.join(DEFAULT_CLAIMS)}")
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise _problem(index, item, f"'claims.{key}' must be a claim name or a list of claim names")
        claims[key] = tuple(names)
    return claims


def _roles(index: int, item: dict[str, Any]) -> tuple[RoleRule, ...]:
    rules = item.get("roles", [])
    if not isinstance(rules, list):
        raise _problem(index, item, "'roles' must be a list of {\"claim\", \"value\", \"role\"} objects")
    parsed = []
    for n, rule in enumerate(rules):
        if not isinstance(rule, dict) or set(rule) != {"claim", "value", "role"}:
            raise _problem(index, item, f"roles[{n}] must have exactly the keys 'claim', 'value' and 'role'")
        if not all(isinstance(rule[k], str) and rule[k] for k in ("claim", "value", "role")):
            raise _problem(index, item, f"roles[{n}]: 'claim', 'value' and 'role' must be non-empty text")
        try:
            role = Role(rule["role"])
        except ValueError:
            raise _problem(index, item, f"roles[{n}]: unknown role {rule['role']!r}; "
                                        f"roles are {', '.join(r.value for r in Role)}") from None
        parsed.append(RoleRule(rule["claim"], rule["value"], role))
    return tuple(parsed)


def _suggest(key: str, known) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def parse_providers(raw: str | list[dict[str, Any]] | None) -> list[OidcProvider]:
    """Read and check the provider list (JSON text or parsed); a mistake stops the app at start."""
    try:
        items = json.loads(raw) if isinstance(raw, str) else (raw or [])
    except json.JSONDecodeError as exc:
        raise ProviderConfigError(f"PORTAL_OIDC_PROVIDERS is not valid JSON: {exc}") from None
    if not isinstance(items, list):
        raise ProviderConfigError("PORTAL_OIDC_PROVIDERS must be a JSON list of provider objects")
    providers = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _problem(index, item, "each provider must be a JSON object")
        for key in item:
            if key not in KNOWN_KEYS:
                raise _problem(index, item, f"unknown key {key!r}{_suggest(key, KNOWN_KEYS)}")
        for key in ("name", "issuer", "client_id", "client_secret"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise _problem(index, item, f"{key!r} is required")
        if not _NAME.match(item["name"]):
            raise _problem(index, item, "'name' must be lower-case letters, digits, '-' and '_' (up to 32)")
        scopes = item.get("scopes") or "openid email profile"
        if isinstance(scopes, list):
            scopes = " ".join(scopes)
        if "openid" not in str(scopes).split():
            raise _problem(index, item, "'scopes' must include 'openid'")
        method = item.get("token_endpoint_auth_method", "client_secret_basic")
        if method not in AUTH_METHODS:
            raise _problem(index, item, f"'token_endpoint_auth_method' must be one of {', '.join(AUTH_METHODS)}")
        policy = item.get("email_verified", "required")
        if policy not in EMAIL_POLICIES:
            raise _problem(index, item, f"'email_verified' must be one of {', '.join(EMAIL_POLICIES)}")
        providers.append(OidcProvider(
            name=item["name"], label=str(item.get("label") or item["name"]), issuer=_issuer(index, item),
            client_id=item["client_id"], client_secret=item["client_secret"], scopes=str(scopes),
            token_endpoint_auth_method=method,
            connect_timeout=_number(index, item, "connect_timeout", 3, 0.1, 60),
            timeout=_number(index, item, "timeout", 7, 0.1, 120),
            leeway=int(_number(index, item, "leeway", 60, 0, 600)),
            discovery_ttl=_number(index, item, "discovery_ttl", 3600, 0, 7 * 86400),
            email_verified=policy, userinfo=_flag(index, item, "userinfo", True), claims=_claims(index, item),
            country_from_organisation_domain=_flag(index, item, "country_from_organisation_domain", False),
            roles=_roles(index, item), logout=_flag(index, item, "logout", True)))
    if len({p.name for p in providers}) != len(providers):
        raise ProviderConfigError("PORTAL_OIDC_PROVIDERS: provider names must be unique")
    return providers


@dataclass
class _ProviderState:
    """Per-worker knowledge about one provider: when it was last unreachable."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    unreachable_until: float = 0.0


def init_oidc(app: Flask) -> None:
    """One Authlib registry per app, so that apps with different providers can coexist (tests)."""
    providers = parse_providers(app.config.get("OIDC_PROVIDERS"))
    oauth = OAuth(app)
    for provider in providers:
        # Authlib's requests client reads ``default_timeout`` (a plain ``timeout`` is ignored);
        # requests takes (connect, read).
        oauth.register(name=provider.name, client_id=provider.client_id, client_secret=provider.client_secret,
                       server_metadata_url=provider.discovery_url,
                       client_kwargs={"scope": provider.scopes, "code_challenge_method": "S256",
                                      "token_endpoint_auth_method": provider.token_endpoint_auth_method,
                                      "default_timeout": (provider.connect_timeout, provider.timeout)})
    app.extensions["portal_oidc"] = (oauth, {p.name: p for p in providers},
                                     {p.name: _ProviderState() for p in providers})
    from portal.identity.oidc_cli import oidc_cli

    app.cli.add_command(oidc_cli)


def providers() -> list[OidcProvider]:
    return list(current_app.extensions["portal_oidc"][1].values())


def provider_named(name: str) -> OidcProvider | None:
    return current_app.extensions["portal_oidc"][1].get(name)


def _client(provider: OidcProvider):
    oauth, _providers, _states = current_app.extensions["portal_oidc"]
    return oauth.create_client(provider.name)


def _state(provider: OidcProvider) -> _ProviderState:
    return current_app.extensions["portal_oidc"][2][provider.name]


class SignInRefused(Exception):
    """The provider's answer cannot be trusted or used; the message says why, for the user.

    ``counts`` is False for refusals that say nothing about the person trying (the provider
    is down, the configuration is wrong): they do not spend anyone's sign-in budget.
    """

    def __init__(self, message: str, *, counts: bool = True, status: int = 400) -> None:
        super().__init__(message)
        self.counts, self.status = counts, status


def _unreachable() -> SignInRefused:
    return SignInRefused(_("The identity provider could not be reached. Try again later."), counts=False, status=502)


def metadata(provider: OidcProvider) -> dict[str, Any]:
    """The provider's discovery document (with its keys, once read), re-read after ``discovery_ttl``.

    A provider that cannot be reached is logged and not asked again for a minute; a document
    read earlier is used meanwhile, so a short outage of the provider's discovery endpoint does
    not stop sign-ins.
    """
    client, state = _client(provider), _state(provider)
    with state.lock:
        loaded_at = client.server_metadata.get("_loaded_at")
        fresh = loaded_at is not None and time.time() - loaded_at < provider.discovery_ttl
        if not fresh and time.time() >= state.unreachable_until:
            stale = dict(client.server_metadata)
            client.server_metadata.clear()  # the keys ("jwks") are read again with it
            try:
                client.load_server_metadata()
            except (requests.RequestException, ValueError) as exc:
                state.unreachable_until = time.time() + UNREACHABLE_BACKOFF
                client.server_metadata.update(stale)
                log.warning("OIDC provider %s: discovery document %s could not be read (%s: %s)%s",
                            provider.name, provider.discovery_url, type(exc).__name__, exc,
                            "; using the copy read earlier" if stale else "")
        document = dict(client.server_metadata)
    if "_loaded_at" not in document:
        raise _unreachable()
    # OpenID Connect Discovery 1.0, section 4.3: the document must name the issuer it was fetched for.
    if document.get("issuer") != provider.issuer:
        hint = ""
        if str(document.get("issuer", "")).rstrip("/") == provider.issuer.rstrip("/"):
            hint = f"; they differ only in the trailing slash: set \"issuer\" to exactly {document.get('issuer')!r}"
        log.error("OIDC provider %s: its discovery document names the issuer %r, the configuration %r%s",
                  provider.name, document.get("issuer"), provider.issuer, hint)
        raise SignInRefused(_("The identity provider's configuration names another issuer."), counts=False,
                             status=502)
    return document


def start_sign_in(provider: OidcProvider):
    """The redirect to the provider; Authlib keeps state, nonce and the PKCE verifier in the session."""
    metadata(provider)
    redirect_uri = url_for("identity.oidc_callback", name=provider.name, _external=True)
    try:
        return _client(provider).authorize_redirect(redirect_uri)
    except (requests.RequestException, AuthlibBaseError) as exc:
        log.warning("OIDC provider %s: the sign-in could not start (%s: %s)", provider.name, type(exc).__name__, exc)
        raise _unreachable() from exc


@dataclass(frozen=True)
class SignInResult:
    claims: dict[str, Any]  # the ID token's claims, completed from userinfo
    id_token: str  # kept for RP-initiated logout (id_token_hint)


def finish_sign_in(provider: OidcProvider) -> SignInResult:
    """Check the provider's answer; the validated ID token claims, completed from userinfo."""
    document = metadata(provider)
    claims_options = {"iss": {"essential": True, "value": provider.issuer}, "sub": {"essential": True}}
    client = _client(provider)
    try:
        token = client.authorize_access_token(claims_options=claims_options, leeway=provider.leeway)
    except Exception as exc:
        raise _reason(provider, exc) from exc
    claims = token.get("userinfo")
    if not claims:
        log.warning("OIDC provider %s: the token answer holds no ID token", provider.name)
        raise SignInRefused(_("The identity provider sent no ID token."))
    claims = dict(claims)
    if provider.userinfo and document.get("userinfo_endpoint"):
        claims = _with_userinfo(provider, client, token, claims)
    return SignInResult(claims, str(token.get("id_token", "")))


def _with_userinfo(provider: OidcProvider, client, token: dict[str, Any], claims: dict[str, Any]) -> dict[str, Any]:
    """Add the userinfo endpoint's claims to the ID token's (the signed ID token wins where both say)."""
    try:
        info = dict(client.userinfo(token=token))
    except (requests.RequestException, OAuthError, ValueError) as exc:
        log.warning("OIDC provider %s: userinfo could not be read (%s: %s)", provider.name, type(exc).__name__, exc)
        if not _first(claims, provider.claims["email"]):
            raise SignInRefused(_("The identity provider could not be asked for your details. Try again later."),
                                counts=False, status=502) from exc
        return claims
    # OpenID Connect Core 1.0, section 5.3.2: userinfo about anyone else must not be used.
    if str(info.get("sub")) != str(claims["sub"]):
        log.warning("OIDC provider %s: userinfo is about subject %r, the ID token about %r",
                    provider.name, info.get("sub"), claims["sub"])
        raise SignInRefused(_("The identity provider's details belong to another person."))
    return {**info, **claims}


def _reason(provider: OidcProvider, exc: Exception) -> SignInRefused:
    """A refusal for the user, and a WARNING with the provider's error code for the admin."""
    code = getattr(exc, "error", None) or type(exc).__name__
    log.warning("OIDC provider %s: sign-in refused (%s: %s)", provider.name, code,
                getattr(exc, "description", None) or exc)
    if isinstance(exc, MismatchingStateError):
        return SignInRefused(_("This answer does not belong to a sign-in started in this browser, or it was "
                               "used already (state does not match)."), counts=False)
    if isinstance(exc, OAuthError):
        return SignInRefused(_("The identity provider refused: %(error)s", error=exc.description or exc.error))
    if isinstance(exc, ExpiredTokenError):
        return SignInRefused(_("The identity provider's ID token has expired."))
    if isinstance(exc, (InvalidClaimError, MissingClaimError)):
        claim = getattr(exc, "claim", "")
        if claim == "iss":
            return SignInRefused(_("The ID token comes from an unknown issuer."))
        if claim == "nonce":
            return SignInRefused(_("The ID token does not belong to this sign-in (nonce does not match)."))
        return SignInRefused(_("The ID token is not valid: %(error)s", error=exc.description))
    if isinstance(exc, JoseError):
        return SignInRefused(_("The ID token's signature could not be verified."))
    if isinstance(exc, requests.RequestException):
        return _unreachable()
    log.exception("OIDC provider %s: unexpected failure", provider.name)
    return SignInRefused(_("The sign-in could not be completed."))


def logout_url(provider: OidcProvider, id_token: str | None, post_logout_redirect_uri: str) -> str | None:
    """Where to send the browser to end its session at the provider; None when it offers no way."""
    if not provider.logout:
        return None
    try:
        document = metadata(provider)
    except SignInRefused:
        return None
    if not document.get("end_session_endpoint"):
        return None
    extra = {"client_id": provider.client_id}
    return _client(provider).create_logout_url(post_logout_redirect_uri=post_logout_redirect_uri,
                                               id_token_hint=id_token or None, **extra)["url"]


# -- from claims to a person ---------------------------------------------------------------

def _first(claims: dict[str, Any], names: tuple[str, ...]) -> str:
    for name in names:
        value = claims.get(name)
        if isinstance(value, list):
            value = next((v for v in value if v), None)
        if value not in (None, ""):
            return str(value).strip()
    return ""


@dataclass(frozen=True)
class Profile:
    """What the provider says about the person, after the provider's claim mapping."""

    email: str
    email_trusted: bool
    name: str
    organisation: str
    country: str | None
    roles: frozenset[Role]


def read_profile(provider: OidcProvider, claims: dict[str, Any]) -> Profile:
    names = provider.claims
    email = _first(claims, names["email"]).lower()
    verified = claims.get(names["email_verified"][0]) if names["email_verified"] else None
    trusted = bool(email) and (provider.email_verified == "assumed" or verified is True
                               or str(verified).lower() == "true")
    name = _first(claims, names["name"]) or " ".join(
        filter(None, (_first(claims, ("given_name",)), _first(claims, ("family_name",)))))
    organisation = _first(claims, names["organisation"])
    # Scoped affiliations ("member@uni.example.lt") name the organisation after the "@".
    organisation = organisation.rpartition("@")[2] if "@" in organisation else organisation
    country = _first(claims, names["country"]).upper()
    if not _COUNTRY.match(country):
        if country:
            log.warning("OIDC provider %s: country claim %r is not a two-letter code; ignored", provider.name, country)
        country = ""
    if not country and provider.country_from_organisation_domain and "." in organisation:
        tld = organisation.rsplit(".", 1)[1]
        country = tld.upper() if _COUNTRY.match(tld) else ""
    if country == "UK":  # the domain; ISO 3166 says GB
        country = "GB"
    roles = frozenset(rule.role for rule in provider.roles if rule.matches(claims))
    return Profile(email, trusted, name[:200], organisation[:300], country or None, roles)


def user_for_claims(provider: OidcProvider, claims: dict[str, Any]) -> tuple[User, bool]:
    """Find the user linked to ``(issuer, sub)``, or create one on first sign-in; keep them up to date.

    Returns the user and whether it was created. Flushes. Never links by e-mail: an address
    that already belongs to someone else is refused, and staff link such accounts by hand.
    """
    subject = str(claims["sub"])
    profile = read_profile(provider, claims)
    link = db.session.scalar(select(IdentityLink).where(IdentityLink.issuer == provider.issuer,
                                                        IdentityLink.subject == subject))
    created = False
    if link is None:
        if not profile.email or len(profile.email) > 320:
            raise SignInRefused(_("The identity provider did not release your e-mail address."))
        if _address_owner(profile.email) is not None:
            raise SignInRefused(_("An account with the e-mail address %(email)s exists already. Ask the facility "
                                  "staff to link your identity to it, quoting “%(provider)s: %(subject)s”.",
                                  email=profile.email, provider=provider.label, subject=subject))
        link = IdentityLink(user=User(email=profile.email, name=profile.name or profile.email, affiliation="",
                                      email_verified=profile.email_trusted),
                            issuer=provider.issuer, subject=subject, provider=provider.name)
        db.session.add(link)
        db.session.flush()  # column defaults (active) apply
        created = True
    user = link.user
    if not user.active:
        raise SignInRefused(_("Your account is disabled. Contact the facility staff."))
    _update_user(provider, user, profile)
    link.provider = provider.name
    link.last_sign_in_at = utcnow()
    db.session.flush()
    return user, created


def _address_owner(email: str, but: User | None = None) -> int | None:
    query = select(User.id).where(func.lower(User.email) == email)
    if but is not None and but.id is not None:
        query = query.where(User.id != but.id)
    return db.session.scalar(query)


def _update_user(provider: OidcProvider, user: User, profile: Profile) -> None:
    """Name, address, organisation, country and claim-mapped roles as the provider says now."""
    if profile.name:
        user.name = profile.name
    if profile.email and profile.email != user.email.lower():
        # A new address replaces the old one only if it is trusted (or the old one was not either),
        # and never takes another account's address.
        if (profile.email_trusted or not user.email_verified) and _address_owner(profile.email, user) is None:
            user.email, user.email_verified = profile.email, profile.email_trusted
        else:
            log.warning("OIDC provider %s: user %s reports the address %s, kept %s (%s)", provider.name, user.id,
                        profile.email, user.email,
                        "not verified" if not profile.email_trusted else "another account has it")
    elif profile.email and profile.email_trusted and not user.email_verified:
        user.email_verified = True
    source = f"provider:{provider.name}"
    if profile.organisation or profile.country:
        changed = (profile.organisation and profile.organisation != user.affiliation) or \
                  (profile.country and profile.country != user.country) or user.profile_source != source
        if profile.organisation:
            user.affiliation = profile.organisation
        if profile.country:
            user.country = profile.country
        if changed or user.profile_verified_at is None:
            # The federation vouches for what its member organisation released.
            user.profile_source, user.profile_verified_at, user.profile_verified_by_id = source, utcnow(), None
    _update_roles(provider, user, profile.roles)


def _update_roles(provider: OidcProvider, user: User, mapped: frozenset[Role]) -> None:
    held = {grant.role: grant for grant in user.role_grants}
    added = sorted(role.value for role in mapped if role not in held)
    removed = sorted(grant.role.value for grant in user.role_grants
                     if grant.source == provider.role_source and grant.role not in mapped)
    if not added and not removed:
        return
    for value in added:
        user.grant(Role(value), source=provider.role_source)
    user.role_grants[:] = [g for g in user.role_grants
                           if not (g.source == provider.role_source and g.role not in mapped)]
    db.session.flush()
    record("user.roles_from_claims", None, f"user:{user.id}",
           {"provider": provider.name, "added": added, "removed": removed}, actor_label=provider.name)
