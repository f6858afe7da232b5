"""Demo data: one person per role, a site read from a live Slurm cluster, a project.

Used by ``flask demo seed`` (the README's first command) and by tests. Running it twice
changes nothing the second time.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from portal.extensions import db
from portal.identity.models import Role, User
from portal.identity.providers import create_local_user
from portal.projects.models import Project, ProjectRole, ProjectStatus
from portal.projects.operations import add_member, create_project
from portal.sites.models import ResourceKind, Site
from portal.sites.operations import create_site, set_partition_kind, sync_partitions


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    name: str
    roles: tuple[Role, ...]
    unix_username: str | None


DEMO_LOGINS = (
    DemoLogin("pi@example.org", "demo-pi", "Agnieszka Wiśniewska", (Role.PI, Role.MEMBER), "demo_pi"),
    DemoLogin("user@example.org", "demo-user", "Jonas Petraitis", (Role.MEMBER,), "demo_user"),
    DemoLogin("reviewer@example.org", "demo-reviewer", "Łukasz Żółkiewski", (Role.REVIEWER,), None),
    DemoLogin("staff@example.org", "demo-staff", "Rūta Kazlauskienė", (Role.STAFF,), None),
    DemoLogin("admin@example.org", "demo-admin", "Portal Administrator", (Role.ADMIN, Role.STAFF), None),
)


def seed_demo(*, site_name: str, slurm_cluster: str, slurm_conf: str | None) -> Site:
    """Create the demo people, site and project; read partitions from the live cluster."""
    users: dict[str, User] = {}
    for login in DEMO_LOGINS:
        user = db.session.scalar(select(User).where(User.email == login.email))
        if user is None:
            user = create_local_user(login.email, login.name, login.password, roles=login.roles,
                                     unix_username=login.unix_username,
                                     affiliation="Demo Research Institute", country="PL")
        users[login.email] = user
    site = db.session.scalar(select(Site).where(Site.slurm_cluster == slurm_cluster))
    if site is None:
        site = create_site(site_name, slurm_cluster, slurm_conf=slurm_conf,
                           description="Single-host demo cluster started by the portal's devcluster script.")
    site.slurm_conf = slurm_conf
    if db.session.scalar(select(Project).where(Project.code == "demo-001")) is None:
        project = create_project("demo-001", "Fine-tuning Baltic language models",
                                 users["pi@example.org"], status=ProjectStatus.PENDING,
                                 description="Demo project: Polish and Lithuanian LLM adaptation.")
        add_member(project, users["user@example.org"], ProjectRole.MEMBER)
    for partition in sync_partitions(site):
        # The demo cluster's single node has (fake) GPUs; only the "gpu" partition counts GPU-hours.
        if partition.name != "gpu" and not partition.kind_set_by_staff:
            set_partition_kind(partition, ResourceKind.CPU)
    return site
