"""Identity providers: how a person proves who they are.

Only local passwords exist now (demo and tests); OpenID Connect providers plug in beside it.
The web layer asks a provider for a :class:`~portal.identity.models.User` and never looks at
credentials itself.
"""
from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.identity.models import User


class LocalPasswordProvider:
    name = "local"

    def authenticate(self, email: str, password: str) -> User | None:
        user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
        if user is None or not user.active or not user.check_password(password):
            return None
        return user


def create_local_user(email: str, name: str, password: str | None = None, *, roles=(),
                      unix_username: str | None = None, affiliation: str = "",
                      country: str | None = None) -> User:
    """Create a user with a local password; flushes, the caller commits."""
    from portal.slurm.names import validate_user_name

    if unix_username is not None:
        validate_user_name(unix_username)
    user = User(email=email.strip().lower(), name=name, unix_username=unix_username,
                affiliation=affiliation, country=country)
    if password:
        user.set_password(password)
    for role in roles:
        user.grant(role)
    db.session.add(user)
    db.session.flush()
    return user
