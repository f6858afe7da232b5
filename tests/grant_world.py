"""Helpers for grant tests on the real test cluster: a site, people with Unix names, a grant."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta

import pytest

from portal.clock import utcnow
from portal.devcluster.pytest_plugin import rest_token_file, unique_name
from portal.extensions import db
from portal.identity.providers import create_local_user
from portal.projects.operations import add_member, create_project
from portal.sites.models import Partition, ResourceKind, Site
from portal.sites.operations import create_site, set_partition_kind, sync_partitions
from portal.slurm import make_scheduler
from portal.slurm.parsing import parse_int, parse_pipe_rows, parse_tres

# Both scheduler adapters, for tests that must pass with each (issue 16).
ADAPTERS = ["cli", "rest"]


@pytest.fixture
def cluster_site(app_ctx, slurm_cluster, monkeypatch, site_adapter) -> Iterator[Site]:
    """The test cluster as a site, under a top account of this test's own, reached through
    ``site_adapter`` (rest: slurmrestd with a token file; slurm.conf as its limits fallback)."""
    monkeypatch.setitem(app_ctx.config, "SLURM_TOP_ACCOUNT", unique_name("top"))
    rest = {}
    if site_adapter == "rest":
        rest = dict(rest_url=slurm_cluster.rest_url, rest_token_file=str(rest_token_file(slurm_cluster)))
    site = create_site("Test cluster", slurm_cluster.cluster_name, slurm_conf=str(slurm_cluster.conf_path),
                       scheduler_adapter=site_adapter, **rest)
    sync_partitions(site)
    # Every partition shares the one node with GPUs; only "gpu" counts GPU-hours.
    for part in site.partitions:
        set_partition_kind(part, ResourceKind.GPU if part.name == "gpu" else ResourceKind.CPU)
    db.session.commit()
    yield site
    # Leave the shared test cluster as it was: remove everything under this test's top account.
    from portal.grants.reconcile import read_actual
    from portal.slurm.accounting import SlurmState, plan

    db.session.rollback()
    scheduler = make_scheduler("cli", env=slurm_cluster.env)
    scheduler.apply_accounting(plan(SlurmState(), read_actual(site, scheduler), site.slurm_cluster, remove_drift=True))


def partition(site: Site, name: str) -> Partition:
    return next(p for p in site.partitions if p.name == name)


def person(name: str, *, unix: bool = True, real_user: bool = False):
    """A user with a fresh Unix name (created on the host when ``real_user``)."""
    from portal.devcluster.cluster import LocalCluster

    unix_name = unique_name("u") if unix else None
    if real_user and unix_name:
        LocalCluster.ensure_unix_user(unix_name)
    return create_local_user(f"{unix_name or unique_name('x')}@example.org", name, "pw", unix_username=unix_name)


def project_with_team(*members):
    code = unique_name("ehpc-")
    project = create_project(code, "Łódź – Vilnius ąčęėįšųūž", members[0])
    for member in members[1:]:
        add_member(project, member)
    return project


def this_year() -> tuple[date, date]:
    today = utcnow().date()
    return today - timedelta(days=30), today + timedelta(days=335)


def slurm_associations(scheduler, account: str) -> dict:
    """What sacctmgr shows for ``account``: {None: the account's own association,
    (user, partition): each user association} with {'tres', 'submit', 'jobs', 'parent'}."""
    output = scheduler.sacctmgr(["-P", "-n", "show", "association", f"account={account}",
                                 "format=Account,ParentName,User,Partition,GrpTRESMins,GrpSubmit,GrpJobs"])
    fields = ("Account", "ParentName", "User", "Partition", "GrpTRESMins", "GrpSubmit", "GrpJobs")
    return {((row["User"], row["Partition"]) if row["User"] else None): {
        "tres": parse_tres(row["GrpTRESMins"]), "submit": parse_int(row["GrpSubmit"]), "jobs": parse_int(row["GrpJobs"]),
        "parent": row["ParentName"]} for row in parse_pipe_rows(output, fields) if row["Account"] == account}


def pool_account(grant, partition_name: str) -> str:
    """The Slurm sub-account of ``grant``'s pool on a partition (named by the reconciler)."""
    db.session.refresh(grant)
    return next(a.slurm_account for a in grant.allocations if a.partition.name == partition_name)


def access_world_grant(project, cpu_partition, pi) -> dict[str, int]:
    """A grant with an open request and a final report, for tests/test_access.py's world."""
    from portal.grants.operations import create_grant
    from portal.grants.requests import ask_for_change, upload_final_report

    start, end = this_year()
    grant = create_grant(project, title="Access", start_date=start, end_date=end, hours={cpu_partition: 10})
    change = ask_for_change(grant, pi, reason="more", hours=5, partition=cpu_partition)
    upload_final_report(grant, pi, filename="report.pdf", content_type="application/pdf", content=b"%PDF-1.4")
    return {"grant_id": grant.id, "request_id": change.id}
