"""Recording and finding audit events. Every feature calls :func:`record` for its security-relevant changes."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import has_request_context, request
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, func, insert, or_, select

from portal.audit.models import AuditEvent
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import User

log = logging.getLogger("portal.audit")

#: Actions recorded so far, with their labels for the staff page's filter. Others may be recorded too.
ACTIONS: dict[str, Any] = {
    "auth.sign_in": _l("Signed in"),
    "auth.sign_in_failed": _l("Sign-in failed"),
    "auth.sign_out": _l("Signed out"),
    "auth.rate_limited": _l("Rate limit reached"),
    "user.created": _l("User created"),
    "user.roles_changed": _l("Roles changed"),
    "user.identity_linked": _l("Identity linked"),
    "user.identity_unlinked": _l("Identity unlinked"),
    "user.disabled": _l("Account disabled"),
    "user.enabled": _l("Account enabled"),
    "user.profile_verified": _l("Profile verified"),
    "user.profile_changed": _l("Profile changed"),
    "token.created": _l("API token created"),
    "token.revoked": _l("API token revoked"),
    "token.refused": _l("API token refused"),
    "award.granted": _l("Compute awarded"),
    "slurm.changed": _l("Slurm changed"),
}


def record(action: str, actor: User | None = None, target: str = "", details: dict[str, Any] | None = None,
           *, actor_label: str | None = None, independent: bool = False) -> None:
    """Write an audit event and the same line to the log.

    The event is part of the caller's transaction, so it stands or falls with the change it
    describes. ``independent=True`` writes it at once in a transaction of its own: for refusals,
    whose request rolls back.
    """
    values = {
        "created_at": utcnow(),
        "action": action,
        "actor_id": actor.id if actor is not None else None,
        "actor_label": (actor_label if actor_label is not None else (actor.email if actor else ""))[:320],
        "target": target[:200],
        "details": details or {},
        "ip_address": request.remote_addr if has_request_context() else None,
    }
    log.info("%s actor=%s target=%s details=%s ip=%s", action, values["actor_id"] or values["actor_label"],
             target, values["details"], values["ip_address"])
    if independent:
        with db.engine.begin() as conn:
            conn.execute(insert(AuditEvent).values(**values))
    else:
        db.session.add(AuditEvent(**values))
        db.session.flush()


@dataclass
class EventFilter:
    action: str | None = None
    actor: str | None = None  # part of a name or e-mail
    since: date | None = None
    until: date | None = None  # inclusive


def events_query(criteria: EventFilter) -> Select[tuple[AuditEvent]]:
    query = select(AuditEvent).order_by(AuditEvent.created_at.desc(), AuditEvent.id.desc())
    if criteria.action:
        query = query.where(AuditEvent.action == criteria.action)
    if criteria.actor:
        pattern = "%" + criteria.actor.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        matching_users = select(User.id).where(or_(func.lower(User.email).like(pattern, escape="\\"),
                                                   func.lower(User.name).like(pattern, escape="\\")))
        query = query.where(or_(AuditEvent.actor_id.in_(matching_users),
                                func.lower(AuditEvent.actor_label).like(pattern, escape="\\")))
    if criteria.since:
        query = query.where(AuditEvent.created_at >= datetime.combine(criteria.since, time.min))
    if criteria.until:
        query = query.where(AuditEvent.created_at < datetime.combine(criteria.until + timedelta(days=1), time.min))
    return query


def find_events(criteria: EventFilter, *, limit: int = 200, offset: int = 0) -> list[AuditEvent]:
    return list(db.session.scalars(events_query(criteria).limit(limit).offset(offset)))
