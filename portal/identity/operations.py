"""Business rules about people, shared by the web pages, the API and the CLI."""
from __future__ import annotations

import logging

from flask_babel import gettext as _
from sqlalchemy import select

from portal.audit.operations import record
from portal.extensions import db
from portal.identity.models import Role, User

log = logging.getLogger(__name__)


def update_user_roles(user: User, roles: set[Role], unix_username: str | None, *,
                      acting_user: User) -> str | None:
    """Set a user's roles and Unix user name. Returns an error message, or None on success."""
    if unix_username is not None and unix_username != user.unix_username:
        taken = db.session.scalar(select(User).where(User.unix_username == unix_username, User.id != user.id))
        if taken is not None:
            return _("The Unix user name %(name)s already belongs to %(other)s.",
                     name=unix_username, other=taken.name)
    if user.id == acting_user.id and Role.ADMIN not in roles:
        return _("You cannot remove your own administrator role.")
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
    return None
