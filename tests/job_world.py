"""Shared fixtures for the job-template tests (imported by the test_jobs* and test_job_templates* files).

``job_world`` mirrors the local cluster's partitions in the database without Slurm;
``cluster_job_world`` syncs them from the real test cluster and creates the Slurm account.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pytest

from portal.extensions import db
from portal.grants.operations import create_grant
from portal.identity.models import Role, User
from portal.projects.models import Project, ProjectRole
from portal.projects.operations import add_member, create_project
from portal.sites.models import Partition, ResourceKind, Site
from portal.sites.operations import create_site, set_partition_kind, sync_partitions

# The dev cluster's partitions (portal/devcluster/templates/slurm.conf), as sync would store them.
DEV_PARTITIONS = {
    "cpu": dict(resource_kind=ResourceKind.CPU, max_time_minutes=60, max_nodes=1),
    "debug": dict(resource_kind=ResourceKind.CPU, max_time_minutes=10, max_nodes=1),
    "gpu": dict(resource_kind=ResourceKind.GPU, max_time_minutes=30, max_nodes=1),
}
HOURS = {"cpu": 100.0, "debug": 100.0, "gpu": 50.0}


@dataclass
class JobWorld:
    site_id: int
    project_id: int
    partition_ids: dict[str, int]
    member: tuple  # (id, email, password) of a member with a Unix account
    outsider: tuple  # a user in no project
    unix_user: str
    account: str

    def project(self) -> Project:
        return db.session.get(Project, self.project_id)

    def partition(self, name: str) -> Partition:
        return db.session.get(Partition, self.partition_ids[name])

    def user(self, which: str = "member") -> User:
        return db.session.get(User, getattr(self, which)[0])


def _project_with_grant(site: Site, member: User, account: str, hours: dict[str, float]) -> Project:
    project = create_project(account.replace("_", "-"), "Żółć projekt — Lietuvių ąčęėįšųūž", member)
    project.slurm_account = account
    today = date.today()
    grant = create_grant(project, title="Test grant", start_date=today - timedelta(days=1),
                         end_date=today + timedelta(days=30), hours={p: hours[p.name] for p in site.partitions if p.name in hours})
    for allocation in grant.allocations:  # named as the reconciler names a grant's pools
        allocation.slurm_account = f"{account}_{allocation.partition.name}"
    return project


def build_job_world(app, make_user, *, site_id: int | None = None, unix_user: str = "jobtester",
                    account: str = "jobs_test", hours: dict[str, float] | None = None) -> JobWorld:
    member = make_user(Role.MEMBER, name="Łucja Žemaitė", unix_username=unix_user)
    outsider = make_user(Role.MEMBER, name="Outsider", unix_username=None)
    with app.app_context():
        if site_id is None:
            # No Slurm here: a missing slurm.conf makes every Slurm call fail at once.
            site = create_site("Dev cluster", "devjobs", slurm_conf="/nonexistent/slurm.conf")
            for name, limits in DEV_PARTITIONS.items():
                site.partitions.append(Partition(name=name, state="UP", total_nodes=1, cpus_per_node=2,
                                                 gpus_per_node=2, mem_per_node_mb=6026, default_time_minutes=5,
                                                 **limits))
            db.session.flush()
        else:
            site = db.session.get(Site, site_id)
        project = _project_with_grant(site, db.session.get(User, member[0]), account, hours or HOURS)
        db.session.commit()
        return JobWorld(site.id, project.id, {p.name: p.id for p in site.partitions}, member, outsider,
                        unix_user, account)


@pytest.fixture
def job_world(app, make_user, tmp_path, monkeypatch) -> JobWorld:
    monkeypatch.setitem(app.config, "JOB_WORKDIR_ROOT", str(tmp_path / "jobs"))
    return build_job_world(app, make_user)


@pytest.fixture
def cluster_job_world(app, make_user, slurm_cluster, slurm_scheduler, monkeypatch, site_adapter) -> JobWorld:
    """The real test cluster as a site, a project whose grant the reconciler put into Slurm; jobs
    reach Slurm through ``site_adapter`` (cli unless a test parametrises it)."""
    from portal.devcluster.pytest_plugin import unique_name, worker_user_name
    from portal.grants.reconcile import reconcile_site

    monkeypatch.setitem(app.config, "JOB_WORKDIR_ROOT", str(slurm_cluster.jobs_dir))
    monkeypatch.setitem(app.config, "SLURM_TOP_ACCOUNT", unique_name("top"))
    unix_user = slurm_cluster.ensure_unix_user(worker_user_name("jobuser5"))
    account = unique_name("jt")
    with app.app_context():
        rest = {}
        if site_adapter == "rest":
            from portal.devcluster.pytest_plugin import rest_token_file

            rest = dict(rest_url=slurm_cluster.rest_url, rest_token_file=str(rest_token_file(slurm_cluster)))
        site = create_site("Local cluster", slurm_cluster.cluster_name, slurm_conf=str(slurm_cluster.conf_path),
                           scheduler_adapter=site_adapter, **rest)
        sync_partitions(site, slurm_scheduler)
        for partition in site.partitions:  # one node with GPUs: only "gpu" counts GPU-hours
            if partition.name != "gpu":
                set_partition_kind(partition, ResourceKind.CPU)
        db.session.commit()
        site_id = site.id
    world = build_job_world(app, make_user, site_id=site_id, unix_user=unix_user, account=account)
    with app.app_context():
        outcome = reconcile_site(db.session.get(Site, site_id), slurm_scheduler)
        assert outcome.run.succeeded, outcome.run.error
        for name in world.partition_ids:
            slurm_scheduler.wait_for_association(f"{account}_{name}", unix_user)
    return world


def add_member_to(app, world: JobWorld, user_id: int, role: ProjectRole = ProjectRole.MEMBER) -> None:
    with app.app_context():
        add_member(world.project(), db.session.get(User, user_id), role)
        db.session.commit()


def stored_job(app, world: JobWorld, slurm_job_id: str, state: str = "COMPLETED") -> int:
    """A portal job row without Slurm (for access tests); returns its id."""
    from portal.jobs.models import SubmittedJob

    with app.app_context():
        job = SubmittedJob(site_id=world.site_id, partition_id=world.partition_ids["cpu"], project_id=world.project_id,
                           user_id=world.member[0], slurm_job_id=slurm_job_id, template="serial", job_name="x",
                           unix_user=world.unix_user, account=world.account, workdir="/nonexistent/jobtester",
                           script="#!/bin/bash\n", parameters={}, max_cost_minutes=1, last_state=state)
        db.session.add(job)
        db.session.commit()
        return job.id


# A job script that held 80 MiB and spun for 7 s, then an srun step holding 40 MiB; exit 3.
FAILED_WITH_STEPS = """\
2|FAILED|3:0|13|2|2|00:06.697|26||300M|billing=2,cpu=2,mem=300M,node=1|1
2.batch|FAILED|3:0|13||2|00:06.538|26|98516K||cpu=2,mem=300M,node=1|1
2.0|COMPLETED|0:0|6||2|00:00.159|12|54260K||cpu=2,mem=300M,node=1|1
"""
