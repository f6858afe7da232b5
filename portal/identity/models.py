"""People and their facility-wide roles.

Project roles (PI, co-PI, member of one project) live on :class:`portal.projects.models.Membership`;
the roles here say what someone may do across the facility.
"""
from __future__ import annotations

import enum
from datetime import datetime

from flask import current_app, has_app_context
from flask_babel import lazy_gettext as _l
from flask_login import UserMixin
from sqlalchemy import BigInteger, Enum, ForeignKey, Index, Integer, String, UniqueConstraint, func, true
from sqlalchemy.orm import Mapped, mapped_column, relationship
from werkzeug.security import check_password_hash, generate_password_hash

from portal.clock import utcnow
from portal.extensions import db


class Role(enum.Enum):
    PI = "pi"  # may apply for compute as principal investigator
    MEMBER = "member"  # may run jobs in projects they belong to
    REVIEWER = "reviewer"  # external expert who scores proposals
    STAFF = "staff"  # peer-review office and operations
    ADMIN = "admin"  # manages people and roles; implies staff

    @property
    def label(self) -> str:
        from flask_babel import lazy_gettext as _l

        return {
            Role.PI: _l("Principal investigator"),
            Role.MEMBER: _l("Project member"),
            Role.REVIEWER: _l("Reviewer"),
            Role.STAFF: _l("Staff"),
            Role.ADMIN: _l("Administrator"),
        }[self]


def enum_column(enum_cls: type[enum.Enum], name: str) -> Enum:
    """Store enums by value, as a CHECK-constrained string: portable and readable in SQL."""
    return Enum(enum_cls, name=name, native_enum=False, create_constraint=True, validate_strings=True,
                values_callable=lambda members: [m.value for m in members], length=32)


class User(UserMixin, db.Model):
    __tablename__ = "users"
    # The people list (60,000 accounts at a large facility): its orders read off an index, and
    # the countries in its filter menu are found by skipping along one (portal/identity/people.py).
    __table_args__ = (Index("ix_users_name_id", "name", "id"), Index("ix_users_created_at_id", "created_at", "id"),
                      Index("ix_users_country", "country"))

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    affiliation: Mapped[str] = mapped_column(String(300), default="")
    country: Mapped[str | None] = mapped_column(String(2))  # ISO 3166-1 alpha-2 of the organisation
    # The Unix/Slurm user name staff map to this person; None until mapped.
    unix_username: Mapped[str | None] = mapped_column(String(32), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(256))  # None: no local sign-in
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # False when the address came from an identity provider that did not vouch for it
    # (``email_verified`` absent or false under the provider's policy): such an address is not
    # trusted to accept invitations sent to it.
    email_verified: Mapped[bool] = mapped_column(default=True, server_default=true())
    orcid: Mapped[str | None] = mapped_column(String(19))  # 0000-0002-1825-0097, checksum-checked
    # Where organisation and country come from: "provider:<name>" (claims released at sign-in),
    # "self" (the person's own profile page) or "staff"; verified when staff confirmed it or a
    # provider released it.
    profile_source: Mapped[str] = mapped_column(String(64), default="", server_default="")
    profile_verified_at: Mapped[datetime | None]
    profile_verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    disabled_at: Mapped[datetime | None]
    disabled_reason: Mapped[str] = mapped_column(String(500), default="", server_default="")
    # The interface language the person chose (en, pl, lt); None: the browser's cookie or
    # Accept-Language decide. E-mails to the person are written in it too.
    locale: Mapped[str | None] = mapped_column(String(8))

    role_grants: Mapped[list[RoleGrant]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    identity_links: Mapped[list[IdentityLink]] = relationship(
        back_populates="user", cascade="all, delete-orphan", order_by="IdentityLink.id"
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"

    # Flask-Login
    @property
    def is_active(self) -> bool:  # type: ignore[override]
        return self.active

    def set_password(self, password: str) -> None:
        method = current_app.config.get("PASSWORD_HASH_METHOD") if has_app_context() else None
        self.password_hash = generate_password_hash(password, method) if method else generate_password_hash(password)

    def check_password(self, password: str) -> bool:
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    @property
    def roles(self) -> set[Role]:
        return {grant.role for grant in self.role_grants}

    def has_role(self, *roles: Role) -> bool:
        """True if the user holds any of ``roles``; administrators count as staff."""
        held = self.roles
        if Role.ADMIN in held:
            held = held | {Role.STAFF}
        return any(role in held for role in roles)

    @property
    def is_staff(self) -> bool:
        return self.has_role(Role.STAFF)

    def grant(self, role: Role, source: str = "") -> None:
        if role not in self.roles:
            self.role_grants.append(RoleGrant(role=role, source=source))

    def revoke(self, role: Role) -> None:
        self.role_grants[:] = [g for g in self.role_grants if g.role != role]

    @property
    def profile_verified(self) -> bool:
        return self.profile_verified_at is not None


class RoleGrant(db.Model):
    __tablename__ = "role_grants"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(enum_column(Role, "role"))
    # "" when staff granted the role; "oidc:<provider>" when the provider's claims did, in which
    # case the next sign-in through that provider takes it away again if the claims no longer match.
    source: Mapped[str] = mapped_column(String(64), default="", server_default="")

    user: Mapped[User] = relationship(back_populates="role_grants")


class IdentityLink(db.Model):
    """A person's account at a federated identity provider, known by issuer and subject.

    Accounts are linked by ``(issuer, subject)`` only, never by e-mail: an address can be
    reassigned or be asserted by a provider that does not own the domain.
    """

    __tablename__ = "identity_links"
    __table_args__ = (UniqueConstraint("issuer", "subject"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issuer: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(255))
    # The configured provider's name when the link was made (issuers are the identity; the
    # name is for people reading the user page).
    provider: Mapped[str] = mapped_column(String(32), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_sign_in_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(back_populates="identity_links")


READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # what a read-only token may do


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


class RateLimitCounter(db.Model):
    __tablename__ = "rate_limit_counters"

    bucket: Mapped[str] = mapped_column(String(400), primary_key=True)
    window_start: Mapped[int] = mapped_column(BigInteger, primary_key=True, index=True)  # Unix seconds
    count: Mapped[int] = mapped_column(Integer, default=0)
