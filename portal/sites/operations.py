"""Sites and partitions: reading the live limits from each site's Slurm cluster."""
from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.formatting import format_moment
from portal.sites.models import Partition, ResourceKind, Site
from portal.slurm import make_scheduler
from portal.slurm.base import Scheduler
from portal.slurm.errors import SchedulerError
from portal.slurm.types import PartitionInfo

log = logging.getLogger(__name__)

ABSENT = "ABSENT"  # a partition the portal knew that Slurm no longer reports


def scheduler_for(site: Site) -> Scheduler:
    """The scheduler adapter configured for ``site``."""
    options: dict = {"timeout": current_app.config["SCHEDULER_TIMEOUT"]}
    if site.scheduler_adapter == "rest":
        options.update(url=site.rest_url or "", token_file=site.rest_token_file,
                       api_version=site.rest_api_version or "v0.0.38", cluster=site.slurm_cluster)
        if site.slurm_conf:
            options["limits_fallback"] = {"slurm_conf": site.slurm_conf}
    elif site.slurm_conf:
        options["slurm_conf"] = site.slurm_conf
    return make_scheduler(site.scheduler_adapter, **options)


def create_site(name: str, slurm_cluster: str, *, slurm_conf: str | None = None,
                scheduler_adapter: str = "cli", description: str = "", rest_url: str | None = None,
                rest_token_file: str | None = None, rest_api_version: str = "v0.0.38") -> Site:
    site = Site(name=name, slurm_cluster=slurm_cluster, slurm_conf=slurm_conf,
                scheduler_adapter=scheduler_adapter, description=description, rest_url=rest_url,
                rest_token_file=rest_token_file, rest_api_version=rest_api_version)
    db.session.add(site)
    db.session.flush()
    return site


def _apply_partition_info(partition: Partition, info: PartitionInfo, now: datetime) -> None:
    if not partition.kind_set_by_staff:
        partition.resource_kind = ResourceKind.GPU if info.gpus_per_node > 0 else ResourceKind.CPU
    partition.is_default = info.is_default
    partition.state = info.state
    partition.max_time_minutes = info.max_time_minutes
    partition.default_time_minutes = info.default_time_minutes
    partition.max_nodes = info.max_nodes
    partition.total_nodes = info.total_nodes
    partition.cpus_per_node = info.cpus_per_node
    partition.max_cpus_per_node = info.max_cpus_per_node
    partition.gpus_per_node = info.gpus_per_node
    partition.mem_per_node_mb = info.mem_per_node_mb
    partition.synced_at = now


def sync_partitions(site: Site, scheduler: Scheduler | None = None) -> list[Partition]:
    """Bring the site's partitions in line with what its Slurm cluster reports now.

    On a scheduler error nothing but the site's error note changes, and the error is
    re-raised for the caller to show; the partitions keep their last known limits.
    """
    scheduler = scheduler or scheduler_for(site)
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        infos = scheduler.partitions()
    except SchedulerError as exc:
        site.last_sync_error = str(exc)
        db.session.flush()
        log.warning("partition sync failed site=%s: %s", site.name, exc)
        raise
    known = {p.name: p for p in site.partitions}
    for info in infos:
        partition = known.pop(info.name, None)
        if partition is None:
            partition = Partition(name=info.name)
            site.partitions.append(partition)
        _apply_partition_info(partition, info, now)
    for gone in known.values():
        gone.state = ABSENT
    site.last_sync_at = now
    site.last_sync_error = None
    db.session.flush()
    log.info("partitions synced site=%s partitions=%s", site.name, sorted(i.name for i in infos))
    return list(site.partitions)


def refresh_partition_limits(site: Site, scheduler: Scheduler | None = None) -> str | None:
    """Read the site's partition limits again when older than PARTITION_LIMITS_TTL; flushes.

    Returns None when the limits are fresh, else a note for people saying that Slurm did not
    answer and the last known limits (of when) were used.
    """
    ttl = float(current_app.config.get("PARTITION_LIMITS_TTL", 30))
    now = datetime.now(UTC).replace(tzinfo=None)
    oldest = min((p.synced_at for p in site.partitions if p.synced_at), default=None)
    if oldest is not None and (now - oldest).total_seconds() < ttl:
        return None
    try:
        sync_partitions(site, scheduler)
    except SchedulerError as exc:
        return _("Slurm did not answer (%(error)s); checked against the limits read at %(when)s UTC.",
                 error=str(exc)[:200], when=format_moment(oldest, seconds=True, empty="?"))
    return None


def set_partition_pool(partition: Partition, pool: str | None) -> None:
    """Staff group partitions into one pool: a grant's time on any of them is one budget."""
    pool = (pool or "").strip() or None
    if pool is not None and not re.fullmatch(r"[a-z][a-z0-9_]{0,19}", pool):
        raise ValueError(_("A pool name is 1-20 characters a-z, 0-9 and _, starting with a letter."))
    partition.pool = pool
    db.session.flush()
    from portal.grants.reconcile import mark_pending  # grants build on sites, not the other way round

    mark_pending({partition.site_id})
    log.info("partition pool set site=%s partition=%s pool=%s", partition.site.name, partition.name, pool)


def set_partition_kind(partition: Partition, kind: ResourceKind) -> None:
    """Staff decide how a partition's time is counted (core-hours or GPU-hours); syncs keep it."""
    partition.resource_kind = kind
    partition.kind_set_by_staff = True
    db.session.flush()
    log.info("partition kind set site=%s partition=%s kind=%s", partition.site.name, partition.name, kind.value)


def all_sites() -> list[Site]:
    return list(db.session.scalars(select(Site).order_by(Site.name)))
