"""Personal API tokens for the JSON API and the command line.

A token is shown once, when it is created; only its SHA-256 digest is stored, with a short
prefix to tell tokens apart. Tokens carry 256 random bits, so a plain digest cannot be
reversed and needs no secret key (rotating the key does not void them). Every token expires.
"""
from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from portal.audit.operations import record
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import ApiToken, TokenScope, User
from portal.problems import Problems

TOKEN_PREFIX = "hpcp_"
MAX_DAYS = 365


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenError(Problems):
    """A token request that breaks a rule; the message is for the user."""


def create_token(user: User, name: str, scope: TokenScope, days: int) -> tuple[ApiToken, str]:
    """Create a token; returns it and its secret, which is never available again. Flushes."""
    name = name.strip()
    if not name:
        raise TokenError(_("Give the token a name."))
    if not 1 <= days <= MAX_DAYS:
        raise TokenError(_("A token lasts from 1 to %(max)d days.", max=MAX_DAYS))
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    token = ApiToken(user_id=user.id, name=name[:100], token_hash=digest(secret),
                     display_prefix=secret[:len(TOKEN_PREFIX) + 6], scope=scope,
                     created_at=now, expires_at=now + timedelta(days=days))
    db.session.add(token)
    db.session.flush()
    record("token.created", user, f"token:{token.id}",
           {"name": token.name, "scope": scope.value, "expires_at": token.expires_at.isoformat(timespec="seconds")})
    return token, secret


def revoke_token(token: ApiToken, *, acting_user: User) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.flush()
        record("token.revoked", acting_user, f"token:{token.id}", {"name": token.name})


def tokens_of(user: User) -> list[ApiToken]:
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.created_at.desc())))


def own_token(user: User, token_id: int) -> ApiToken | None:
    """The token if it belongs to ``user``; None otherwise (ids leak nothing)."""
    token = db.session.get(ApiToken, token_id)
    return token if token is not None and token.can_revoke(user) else None


def touch_token(token: ApiToken) -> None:
    """Note the token's use, at most once a minute (saves a write on every API call)."""
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now


def find_token(secret: str) -> ApiToken | None:
    """The stored token for a presented secret, usable or not."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 200:
        return None
    return db.session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(secret)))
