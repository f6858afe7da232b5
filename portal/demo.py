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
    seed_demo_calls(site)
    return site


def seed_demo_calls(site: Site) -> None:
    """Access modes and one open call on the demo site's partitions (once)."""
    from datetime import date, timedelta

    from portal.calls.models import Call
    from portal.calls.operations import create_call, seed_access_modes
    from portal.clock import utcnow

    modes = {mode.name: mode for mode in seed_access_modes()}
    if db.session.scalar(select(Call).where(Call.code == "demo-fast")) is not None or not site.partitions:
        return
    today = date.today()
    create_call(code="demo-fast", title="AI Factory Fast Lane (demo)", access_mode=modes["AI Factory Fast Lane"],
                tracks=["scientific", "industry", "public_administration"], eligible_countries=[],
                opens_at=utcnow() - timedelta(days=1), closes_at=utcnow() + timedelta(days=60),
                allocation_start=today + timedelta(days=90), allocation_end=today + timedelta(days=270),
                min_reviewers=1, description="A demo call: ask for CPU or GPU time on the demo cluster.",
                offers={p.id: (100_000, 20_000) for p in site.partitions})
