"""Demo data: a living facility on a live local Slurm cluster.

Used by ``flask demo seed`` (the README's first command) and by tests. It seeds, through the
portal's own operations: people for every role (the demo PI and member with Unix accounts),
the site read from Slurm, calls in each state (open, past its cut-off, in peer review, decided),
proposals at every stage with reviews and a committee ranking, awarded grants synced into Slurm
by the reconciler, real jobs the demo users run through Slurm with their usage ingested from
sacct, a top-up request waiting for staff, an overdue final report, a real acceptance benchmark
run under Slurm, and the mail all this sends. Every step looks for its own result first, so
running it again changes nothing and never fails.

Where real data cannot exist (weeks of past use, earlier benchmark runs, a review assigned weeks
ago) the seed writes it back-dated and says so in its report; real rows are always there too.
"""
from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import Role, User
from portal.identity.providers import create_local_user
from portal.sites.models import Partition, ResourceKind, Site
from portal.sites.operations import create_site, set_partition_kind, sync_partitions
from portal.transactions import commit

log = logging.getLogger(__name__)


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
# People without a password: other applicants (so a ranking has competitors) and a second reviewer.
OTHER_PEOPLE = (
    ("egle.jankauskaite@example.org", "Eglė Jankauskaitė", Role.PI, "LT"),
    ("marek.nowak@example.org", "Marek Nowak", Role.PI, "PL"),
    ("ieva.kazlauskaite@example.org", "Ieva Kazlauskaitė", Role.PI, "LT"),
    ("tomasz.zielinski@example.org", "Tomasz Zieliński", Role.PI, "PL"),
    ("dovile.vaitkute@example.org", "Dovilė Vaitkutė", Role.REVIEWER, "LT"),
)
MAIN_PROJECT_TITLE = "Fine-tuning Baltic language models"


@dataclass
class SeedReport:
    """What the seed did, for the command to print; ``labelled``: data that is not real."""
    done: list[str] = field(default_factory=list)
    labelled: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def seed_demo(*, site_name: str, slurm_cluster: str, slurm_conf: str | None, run_jobs: bool = True,
              report: SeedReport | None = None) -> Site:
    """Seed the living facility (see the module); commits after each step."""
    report = report if report is not None else SeedReport()
    people = _people(report)
    site = db.session.scalar(select(Site).where(Site.slurm_cluster == slurm_cluster))
    if site is None:
        site = create_site(site_name, slurm_cluster, slurm_conf=slurm_conf,
                           description="Single-host demo cluster started by the portal's devcluster script.")
    site.slurm_conf = slurm_conf
    for partition in sync_partitions(site):
        # The demo cluster's nodes have (fake) GPUs; only the "gpu" partition counts GPU-hours.
        if partition.name != "gpu" and not partition.kind_set_by_staff:
            set_partition_kind(partition, ResourceKind.CPU)
    seed_demo_calls(site)
    commit()
    cpu, gpu = _partition(site, "cpu"), _partition(site, "gpu")
    if cpu is None or gpu is None:
        report.problems.append("the demo cluster has no cpu and gpu partitions: no proposals, grants or jobs")
        return site
    from portal.demo_cycle import seed_proposal_cycle

    seed_proposal_cycle(site, cpu, gpu, people, report)
    from portal.demo_usage import seed_usage

    seed_usage(site, cpu, gpu, people, report, run_jobs=run_jobs)
    return site


def _partition(site: Site, name: str) -> Partition | None:
    return next((p for p in site.partitions if p.name == name), None)


def _people(report: SeedReport) -> dict[str, User]:
    people: dict[str, User] = {}
    for login in DEMO_LOGINS:
        user = db.session.scalar(select(User).where(User.email == login.email))
        if user is None:
            user = create_local_user(login.email, login.name, login.password, roles=login.roles,
                                     unix_username=login.unix_username,
                                     affiliation="Demo Research Institute", country="PL")
        user.email_verified = True  # the demo's addresses are its own
        people[login.email.split("@")[0]] = user
        if login.unix_username:
            _unix_account(login.unix_username, report)
    for email, name, role, country in OTHER_PEOPLE:
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = create_local_user(email, name, None, roles=(role,), affiliation="Demo University", country=country)
        people[email.split("@")[0]] = user
    commit()
    return people


def _unix_account(name: str, report: SeedReport) -> None:
    """Jobs run as the demo users: they need accounts on this host (made when we are root)."""
    import os
    import pwd

    try:
        pwd.getpwnam(name)
        return
    except KeyError:
        pass
    if os.geteuid() != 0:
        report.problems.append(f"no Unix account {name} (run as root to create it): its jobs cannot run")
        return
    from portal.devcluster.cluster import LocalCluster

    LocalCluster.ensure_unix_user(name)
    report.done.append(f"Unix account {name} created for the demo's jobs")


def seed_demo_calls(site: Site) -> None:
    """Access modes and one open call on the demo site's partitions (once)."""
    from portal.calls.models import Call
    from portal.calls.operations import create_call, seed_access_modes

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


def main_project_grant():
    """The demo PI's awarded grant that the demo's jobs run under (None before the award)."""
    from portal.grants.models import Grant, GrantStatus
    from portal.projects.models import Project

    return db.session.scalar(select(Grant).join(Project, Project.id == Grant.project_id)
                             .where(Project.title == MAIN_PROJECT_TITLE, Grant.status == GrantStatus.ACTIVE)
                             .order_by(Grant.id))


def wait(probe, timeout: float, step: float = 1.0):
    """Poll ``probe`` until it is truthy or ``timeout`` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(step)


def jitter(seed: str) -> random.Random:
    """Same demo, same numbers: a random source fixed by ``seed``."""
    return random.Random(seed)


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def at_midnight(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())


def count(model, *conditions) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0
