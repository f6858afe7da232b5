"""E-mail the project's PI and co-PIs when a grant's use crosses 50, 75, 90 and 100 %.

Each threshold is sent once per grant and resource: a row in ``grant_alerts`` (unique on
grant, resource, threshold) remembers it, so re-ingesting or a second worker sends nothing twice.
"""
from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.formatting import format_number
from portal.grants.models import Grant, GrantAlert, GrantStatus
from portal.grants.summary import resource_totals
from portal.mail import queue_mail_to
from portal.projects.models import ProjectRole

THRESHOLDS = (50, 75, 90, 100)


def _recipients(grant: Grant) -> list[str]:
    return sorted({m.user.email for m in grant.project.memberships if m.role in (ProjectRole.PI, ProjectRole.CO_PI)})


def send_usage_alerts() -> list[GrantAlert]:
    """Queue the alerts now due for every open grant; flushes (mail goes out after commit)."""
    sent: list[GrantAlert] = []
    grants = db.session.scalars(select(Grant).where(Grant.status.in_([GrantStatus.ACTIVE, GrantStatus.SUSPENDED])))
    for grant in grants:
        done = {(a.resource_kind, a.threshold) for a in db.session.scalars(
            select(GrantAlert).where(GrantAlert.grant_id == grant.id))}
        for total in resource_totals(grant):
            if total.awarded <= 0:
                continue
            crossed = [t for t in THRESHOLDS if total.percent_used >= t and (total.kind, t) not in done]
            if not crossed:
                continue
            for threshold in crossed:
                # Alerts are kept per resource kind: a second pool of the same kind shares them.
                done.add((total.kind, threshold))
                alert = GrantAlert(grant_id=grant.id, resource_kind=total.kind, threshold=threshold)
                db.session.add(alert)
                sent.append(alert)
            top = max(crossed)
            to = _recipients(grant)
            if to:
                # Composed once per recipients' language (the unit and numbers too).
                queue_mail_to(to, lambda grant=grant, total=total, top=top: (
                    _("%(project)s: %(percent)d %% of the %(unit)s used",
                      project=grant.project.code, percent=top, unit=total.unit),
                    _("The grant \"%(title)s\" of project %(project)s has used %(used)s of %(awarded)s"
                      " %(unit)s (%(percent)d %%).\n\nAt 100 %% Slurm holds new jobs. Ask for a top-up"
                      " on the grant's page if you need more time.",
                      title=grant.title, project=grant.project.code, used=format_number(total.used),
                      awarded=format_number(total.awarded), unit=total.unit, percent=total.percent_used)))
    db.session.flush()
    return sent
