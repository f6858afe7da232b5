"""Personal API tokens for the JSON API and the command line.

A token is shown once, when it is created; only its SHA-256 digest is stored, with a short
prefix to tell tokens apart. Tokens carry 256 random bits, so a plain digest cannot be
reversed and needs no secret key (rotating the key does not void them). Every token expires.
"""
from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import datetime, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.audit.operations import record
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import User, enum_column

TOKEN_PREFIX = "hpcp_"
MAX_DAYS = 365
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class TokenScope(enum.Enum):
    READ = "read"
    READ_WRITE = "read-write"

    @property
    def label(self) -> str:
        return {TokenScope.READ: _l("Read only"), TokenScope.READ_WRITE: _l("Read and write")}[self]

    def allows(self, method: str) -> bool:
        return self is TokenScope.READ_WRITE or method.upper() in READ_METHODS


class ApiToken(db.Model):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # hex SHA-256
    display_prefix: Mapped[str] = mapped_column(String(16))  # "hpcp_" and 6 characters, to recognise it
    scope: Mapped[TokenScope] = mapped_column(enum_column(TokenScope, "token_scope"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= utcnow()

    @property
    def is_usable(self) -> bool:
        return self.revoked_at is None and not self.is_expired and self.user.is_active

    def can_revoke(self, user: User) -> bool:
        return user.is_authenticated and user.id == self.user_id


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenError(ValueError):
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
