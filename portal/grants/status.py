"""How the portal's Slurm work stands, per site: a page for staff and Prometheus metrics.

Everything is read from the database (what the reconciler service recorded), so any web
worker on any host answers the same, and a look never waits for Slurm.
"""
from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from datetime import datetime

from flask import Blueprint, Response, abort, current_app, render_template, request
from flask_login import current_user
from sqlalchemy import func, select

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import PendingChange, SiteSyncState
from portal.identity.access import public, staff_required
from portal.mail.outbox import OutgoingMail
from portal.sites.models import Site

bp = Blueprint("slurm_status", __name__)


@dataclass(frozen=True)
class SiteStatus:
    site: Site
    pending_changes: int
    pending_since: datetime | None
    state: SiteSyncState | None

    @property
    def pending_seconds(self) -> float:
        return (utcnow().replace(tzinfo=None) - self.pending_since).total_seconds() if self.pending_since else 0.0

    @property
    def ingestion_lag_seconds(self) -> float | None:
        until = self.state.ingested_until if self.state else None
        return (utcnow().replace(tzinfo=None) - until).total_seconds() if until else None


def adapter_limitations(site: Site) -> list[str]:
    """What the site's scheduler adapter only approximates, for staff. Only builds the adapter:
    nothing is asked of Slurm."""
    from flask_babel import gettext as _

    from portal.sites.operations import scheduler_for
    from portal.slurm.errors import SchedulerError

    words = {
        "usage_from_job_records": _("Budget checks before a job is submitted add up the accounting records of the"
                                    " account's jobs: slurmrestd 22.05 does not show the controller's live usage."),
        "readiness_from_slurmdbd": _("A new member's association is taken as ready once slurmdbd lists it; the first"
                                     " submission may still be refused for a moment."),
        "account_limits_via_sacctmgr": _("Limit changes of existing accounts go through sacctmgr on this host"
                                         " (slurmrestd 22.05 cannot change them)."),
        "account_limits_refused": _("Limit changes of existing accounts fail: slurmrestd 22.05 cannot change them."
                                    " Set slurm.conf for a sacctmgr fallback or change them by hand."),
    }
    try:
        return [words.get(key, key) for key in scheduler_for(site).limitations]
    except SchedulerError as exc:
        return [_("The scheduler adapter is not configured correctly: %(error)s", error=str(exc))]


@dataclass(frozen=True)
class OutboxStatus:
    backlog: int
    oldest: datetime | None


def site_statuses() -> list[SiteStatus]:
    pending = {site_id: (count, since) for site_id, count, since in db.session.execute(
        select(PendingChange.site_id, func.count(), func.min(PendingChange.marked_at)).group_by(PendingChange.site_id))}
    states = {s.site_id: s for s in db.session.scalars(select(SiteSyncState))}
    return [SiteStatus(site, *pending.get(site.id, (0, None)), states.get(site.id))
            for site in db.session.scalars(select(Site).order_by(Site.name))]


def outbox_status() -> OutboxStatus:
    count, oldest = db.session.execute(select(func.count(), func.min(OutgoingMail.created_at))
                                       .where(OutgoingMail.sent_at.is_(None))).one()
    return OutboxStatus(count, oldest)


@bp.route("/slurm/status")
@staff_required
def status_page():
    sites = site_statuses()
    return render_template("grants/slurm_status.html", sites=sites, outbox=outbox_status(), now=utcnow(),
                           limitations={s.site.id: adapter_limitations(s.site) for s in sites})


def _metrics_allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN") or ""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.encode(), token.encode()):
        return True
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    for allowed in (current_app.config.get("METRICS_ALLOWED_NETWORKS") or "").split(","):
        if allowed.strip() and address in ipaddress.ip_network(allowed.strip(), strict=False):
            return True
    return current_user.is_authenticated and current_user.is_staff


@bp.route("/metrics")
@public  # checked below: by address, a bearer token, or a staff session
def metrics():
    if not _metrics_allowed():
        abort(403)
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import GaugeMetricFamily

    statuses, outbox = site_statuses(), outbox_status()

    class Collector:
        def collect(self):
            def gauge(name: str, doc: str, value_of):
                family = GaugeMetricFamily(f"portal_slurm_{name}", doc, labels=["site"])
                for status in statuses:
                    value = value_of(status)
                    if value is not None:
                        family.add_metric([status.site.name], float(value))
                return family

            def stamp(moment):
                return moment.timestamp() if moment else None

            yield gauge("pending_changes", "Committed changes Slurm has not applied yet", lambda s: s.pending_changes)
            yield gauge("pending_seconds", "Age of the oldest change waiting for Slurm", lambda s: s.pending_seconds)
            yield gauge("failed_attempts", "Failed reconciler runs in a row",
                        lambda s: s.state.attempts if s.state else 0)
            yield gauge("last_success_timestamp_seconds", "End of the last successful reconciler run (naive UTC)",
                        lambda s: stamp(s.state.last_success_at) if s.state else None)
            yield gauge("drift_found", "Things under the portal's top account it did not make, at the last full pass",
                        lambda s: s.state.drift_found if s.state else None)
            yield gauge("ingestion_lag_seconds", "How far usage ingestion is behind now",
                        lambda s: s.ingestion_lag_seconds)
            mail = GaugeMetricFamily("portal_mail_outbox_backlog", "E-mails waiting to be sent")
            mail.add_metric([], float(outbox.backlog))
            yield mail

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Collector())
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")
