"""Desired state from the database, pending marks after commits, and one reconciler per site."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select, text

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import GrantStatus, PendingChange
from portal.grants.operations import create_grant, set_grant_status
from portal.grants.reconcile import desired_state, is_pending, reconcile_site, site_state
from portal.identity.providers import create_local_user
from portal.projects.operations import add_member, create_project
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site, set_partition_pool


def _site():
    site = create_site("Site", "sitea", slurm_conf="/nonexistent/slurm.conf")
    site.partitions += [Partition(name="cpu", resource_kind=ResourceKind.CPU),
                        Partition(name="gpu", resource_kind=ResourceKind.GPU)]
    db.session.flush()
    return site, site.partitions[0], site.partitions[1]


def test_accounts_limits_pools_and_users_come_from_grants_and_members(app_ctx):
    app_ctx.config["SLURM_TOP_ACCOUNT"] = "portal"
    site, cpu, gpu = _site()
    pi = create_local_user("pi@example.org", "Łukasz", unix_username="lukasz")
    project = create_project("EHPC-AI-2026/07", "Ąčę", pi)
    add_member(project, create_local_user("m@example.org", "Žydrūnas"))  # no Unix account: no association
    today = utcnow().date()
    create_grant(project, title="AI", start_date=today - timedelta(days=1), end_date=today + timedelta(days=9),
                 hours={cpu: 10, gpu: 2}).funding_pool = "ai_factory"
    suspended = create_project("p2", "Two", pi)
    set_grant_status(create_grant(suspended, title="x", start_date=today, end_date=today + timedelta(days=5),
                                  hours={cpu: 1}), GrantStatus.SUSPENDED)
    later = create_project("p3", "Three", pi)
    create_grant(later, title="y", start_date=today + timedelta(days=3), end_date=today + timedelta(days=5), hours={cpu: 1})
    db.session.flush()

    state = desired_state(site, today)
    assert {n: (s.parent, dict(s.tres_mins), s.submit_jobs, s.running_jobs) for n, s in state.accounts.items()} == {
        "portal": ("root", {}, None, None),
        "ai_factory": ("portal", {}, None, None),
        # One account per project, without limits; one sub-account per grant and pool, each
        # limited to exactly its award and on its own kind of time only.
        "ehpc_ai_2026_07": ("ai_factory", {}, None, None),
        "ehpc_ai_2026_07_cpu": ("ehpc_ai_2026_07", {"cpu": 600}, None, None),
        "ehpc_ai_2026_07_gpu": ("ehpc_ai_2026_07", {"gres/gpu": 120}, None, None),
        "p2": ("portal", {}, None, None),
        "p2_cpu": ("p2", {"cpu": 60}, 0, 0),  # suspended: no new jobs, queued ones do not start
        "p3": ("portal", {}, None, None),
        "p3_cpu": ("p3", {"cpu": 60}, 0, 0),  # not started yet
    }
    # Members may spend a pool on its own partitions only.
    assert state.users == {("ehpc_ai_2026_07_cpu", "lukasz", "cpu"), ("ehpc_ai_2026_07_gpu", "lukasz", "gpu"),
                           ("p2_cpu", "lukasz", "cpu"), ("p3_cpu", "lukasz", "cpu")}
    ended = desired_state(site, today + timedelta(days=9)).accounts["ehpc_ai_2026_07_cpu"]
    assert (ended.submit_jobs, ended.running_jobs) == (0, 0)


def test_partitions_grouped_into_one_pool_share_one_sub_account(app_ctx):
    app_ctx.config["SLURM_TOP_ACCOUNT"] = "portal"
    site, cpu, gpu = _site()
    debug = Partition(name="debug", resource_kind=ResourceKind.CPU)
    site.partitions.append(debug)
    db.session.flush()
    set_partition_pool(cpu, "cpu_all")
    set_partition_pool(debug, "cpu_all")
    project = create_project("p9", "Nine", create_local_user("pi@example.org", "PI", unix_username="pi9"))
    today = utcnow().date()
    create_grant(project, title="x", start_date=today, end_date=today + timedelta(days=5), hours={cpu: 10, debug: 5})
    state = desired_state(site, today)
    assert dict(state.accounts["p9_cpu_all"].tres_mins) == {"cpu": 900}
    assert state.users == {("p9_cpu_all", "pi9", "cpu"), ("p9_cpu_all", "pi9", "debug")}


def test_committed_changes_mark_their_project_pending_and_a_failed_sync_keeps_it(app_ctx):
    site, cpu, _ = _site()
    pi = create_local_user("pi@example.org", "PI", unix_username="pi1")
    project = create_project("p1", "One", pi)
    db.session.commit()
    assert not is_pending({site.id})  # a project without a grant touches no site
    create_grant(project, title="x", start_date=utcnow().date(), end_date=utcnow().date() + timedelta(days=5),
                 hours={cpu: 1})
    db.session.commit()
    assert is_pending({site.id})
    assert [(c.site_id, c.project_id) for c in db.session.scalars(select(PendingChange))] == [(site.id, project.id)]
    outcome = reconcile_site(site)
    assert not outcome.run.succeeded and "slurm.conf not found" in outcome.run.error
    state = site_state(site)
    assert is_pending({site.id}) and state.last_error == outcome.run.error
    # Retried with backoff, not at once.
    assert state.attempts == 1 and state.next_attempt_at > utcnow().replace(tzinfo=None)
    assert reconcile_site(site).run is not None and site_state(site).attempts == 2

    add_member(project, create_local_user("m@example.org", "Member", unix_username="mem1"))
    db.session.rollback()  # a change that is rolled back marks nothing
    db.session.execute(delete(PendingChange))
    db.session.commit()
    assert not is_pending({site.id})
    pi.unix_username = "pi2"  # a new Unix name changes the associations
    db.session.commit()
    assert is_pending({site.id})


def test_a_second_worker_skips_a_site_that_is_being_reconciled(app, app_ctx):
    site, _, _ = _site()
    site_state(site)
    db.session.commit()
    with db.engine.connect() as other_worker:
        other_worker.execute(text("SELECT site_id FROM slurm_site_state WHERE site_id = :id FOR UPDATE"), {"id": site.id})
        outcome = reconcile_site(site)
        assert outcome.run is None and outcome.commands == []
        other_worker.rollback()
    assert reconcile_site(site).run is not None
