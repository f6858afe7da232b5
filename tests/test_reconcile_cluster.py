"""Reconciliation against the real test cluster: what the portal awards, sacctmgr shows."""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.grants.models import GrantStatus
from portal.grants.operations import add_minutes, create_grant, grants_of, set_grant_status
from portal.grants.reconcile import desired_state, is_pending, read_actual, reconcile_site
from portal.slurm.accounting import plan
from tests.grant_world import ADAPTERS, partition, person, pool_account, project_with_team, slurm_associations, this_year


def app_top(site) -> str:
    from flask import current_app

    return current_app.config["SLURM_TOP_ACCOUNT"]


@pytest.mark.parametrize("site_adapter", ADAPTERS)
def test_award_creates_account_users_and_limits_and_second_run_changes_nothing(cluster_site, slurm_scheduler):
    pi, member, no_unix = person("Paweł Żółć"), person("Rūta Šimkutė"), person("No Unix", unix=False)
    project = project_with_team(pi, member, no_unix)
    start, end = this_year()
    create_grant(project, title="Regular 2026", start_date=start, end_date=end,
                 hours={partition(cluster_site, "cpu"): 1000, partition(cluster_site, "gpu"): 20})
    db.session.commit()
    assert is_pending({cluster_site.id})

    outcome = reconcile_site(cluster_site)
    assert outcome.run.succeeded, outcome.run.error
    assert not is_pending({cluster_site.id})
    # The project's own account holds no limit and no user: nothing can be charged to it.
    assert slurm_associations(slurm_scheduler, project.slurm_account) == {
        None: {"tres": {}, "submit": None, "jobs": None, "parent": app_top(cluster_site)}}
    grant = grants_of(project)[0]
    cpu, gpu = pool_account(grant, "cpu"), pool_account(grant, "gpu")
    cpu_assocs, gpu_assocs = slurm_associations(slurm_scheduler, cpu), slurm_associations(slurm_scheduler, gpu)
    # Each pool is its own limit, on its own kind of time only, usable on its own partition only.
    assert cpu_assocs[None] == {"tres": {"cpu": 60_000}, "submit": None, "jobs": None, "parent": project.slurm_account}
    assert gpu_assocs[None] == {"tres": {"gres/gpu": 1_200}, "submit": None, "jobs": None, "parent": project.slurm_account}
    assert set(cpu_assocs) == {None, (pi.unix_username, "cpu"), (member.unix_username, "cpu")}
    assert set(gpu_assocs) == {None, (pi.unix_username, "gpu"), (member.unix_username, "gpu")}

    again = reconcile_site(cluster_site)
    assert again.run.succeeded and again.commands == []


@pytest.mark.parametrize("site_adapter", ADAPTERS)
def test_member_removal_top_up_suspension_and_dry_run(cluster_site, slurm_scheduler):
    pi, member = person("PI"), person("Member")
    project = project_with_team(pi, member)
    start, end = this_year()
    grant = create_grant(project, title="Dev", start_date=start, end_date=end, hours={partition(cluster_site, "cpu"): 10})
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    account = pool_account(grant, "cpu")

    project.memberships.remove(project.membership_of(member))
    add_minutes(grant.allocations[0], 600)
    set_grant_status(grant, GrantStatus.SUSPENDED)
    db.session.commit()
    assert is_pending({cluster_site.id})
    dry = reconcile_site(cluster_site, dry_run=True)
    # An incremental run (only this project's accounts are read) removes the association; Slurm
    # drops a user left with none. It never deletes a user whole: their other accounts are unread.
    assert {c.kind for c in dry.commands} == {"modify_account", "remove_user"}
    assert (member.unix_username, "cpu") in slurm_associations(slurm_scheduler, account)  # a dry run changes nothing
    assert is_pending({cluster_site.id})

    assert reconcile_site(cluster_site).run.succeeded
    assocs = slurm_associations(slurm_scheduler, account)
    assert set(assocs) == {None, (pi.unix_username, "cpu")}
    assert assocs[None]["tres"] == {"cpu": 1_200} and (assocs[None]["submit"], assocs[None]["jobs"]) == (0, 0)
    assert plan(desired_state(cluster_site), read_actual(cluster_site, slurm_scheduler), cluster_site.slurm_cluster).commands() == []


def test_a_change_to_one_project_reads_and_writes_only_its_accounts(cluster_site, slurm_scheduler, monkeypatch):
    from portal.projects.operations import add_member
    from portal.slurm.runner import CommandRunner

    start, end = this_year()
    projects = []
    for name in ("Aistė", "Bartłomiej"):
        project = project_with_team(person(name))
        create_grant(project, title=name, start_date=start, end_date=end, hours={partition(cluster_site, "cpu"): 5})
        projects.append(project)
    db.session.commit()
    assert reconcile_site(cluster_site, slurm_scheduler, full=True).run.succeeded
    changed, untouched = projects
    add_member(changed, person("Nowy Członek"))
    db.session.commit()

    commands: list[list[str]] = []
    original = CommandRunner.run
    monkeypatch.setattr(CommandRunner, "run", lambda self, argv, **kw: commands.append(list(argv)) or original(self, argv, **kw))
    outcome = reconcile_site(cluster_site, slurm_scheduler)
    assert outcome.run.succeeded and [c.kind for c in outcome.commands] == ["add_user"]
    reads = [" ".join(c) for c in commands if "show" in c]
    assert reads and all(f"{changed.slurm_account}," in r or f"={changed.slurm_account}" in r for r in reads)
    assert not any(untouched.slurm_account in " ".join(c) for c in commands)  # neither read nor written
    assert not is_pending({cluster_site.id})
