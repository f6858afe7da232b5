"""Slurm daemons stopped during a sync: the change stays pending, Slurm holds nothing half-made,
and the next sync after a restart converges to exactly the desired state."""
from __future__ import annotations

import pytest

from portal.extensions import db
from portal.grants.operations import create_grant
from portal.grants.reconcile import desired_state, is_pending, read_actual, reconcile_site
from portal.slurm import make_scheduler
from portal.slurm.accounting import plan
from portal.slurm.commandline import CliScheduler
from tests.grant_world import partition, person, project_with_team, this_year


class StopsDaemonMidway(CliScheduler):
    """Stops a daemon after reading Slurm's state, as the changes are about to be applied."""

    def __init__(self, cluster, daemon: str):
        super().__init__(env=cluster.env, timeout=10)
        self.cluster_under_test, self.daemon = cluster, daemon

    def sacctmgr_load(self, text: str) -> str:
        self.cluster_under_test.stop_daemon(self.daemon)
        return super().sacctmgr_load(text)

    def sacctmgr_batch(self, commands, per_process: int = 500) -> int:  # small plans go this way
        self.cluster_under_test.stop_daemon(self.daemon)
        return super().sacctmgr_batch(commands, per_process)


@pytest.fixture
def restarts(slurm_cluster):
    yield slurm_cluster
    slurm_cluster.start(timeout=90)  # whatever a test stopped, the next one finds running


def _award(site, projects: int = 3):
    start, end = this_year()
    made = []
    for _ in range(projects):
        project = project_with_team(person("Ąžuolas"), person("Żaneta"))
        create_grant(project, title="Pool", start_date=start, end_date=end, hours={partition(site, "cpu"): 50})
        made.append(project)
    db.session.commit()
    return made


def _assert_no_garbage(site, scheduler):
    """Every portal account Slurm has carries exactly its limits; nothing unknown is there."""
    want = desired_state(site)
    have = read_actual(site, scheduler).managed
    assert set(have.accounts) <= set(want.accounts)
    for name, spec in have.accounts.items():
        assert (spec.parent, spec.tres_mins, spec.submit_jobs) == (want.accounts[name].parent, want.accounts[name].tres_mins,
                                                                 want.accounts[name].submit_jobs), name
    assert have.users <= want.users


def _assert_converged(site, scheduler):
    actual = read_actual(site, scheduler)
    assert plan(desired_state(site), actual, site.slurm_cluster).commands() == []
    assert set(actual.managed.accounts) == set(desired_state(site).accounts)


@pytest.mark.disturbs_slurm
def test_slurmdbd_stopped_during_a_sync_keeps_the_change_pending_then_converges(cluster_site, restarts, slurm_scheduler):
    _award(cluster_site)
    outcome = reconcile_site(cluster_site, StopsDaemonMidway(restarts, "slurmdbd"))
    assert not outcome.run.succeeded and outcome.run.error
    assert is_pending({cluster_site.id})

    restarts.start_daemon("slurmdbd")
    _assert_no_garbage(cluster_site, slurm_scheduler)
    assert reconcile_site(cluster_site, slurm_scheduler).run.succeeded
    assert not is_pending({cluster_site.id})
    _assert_converged(cluster_site, slurm_scheduler)


@pytest.mark.disturbs_slurm
def test_slurmdbd_down_before_a_sync_changes_nothing_and_keeps_it_pending(cluster_site, restarts, slurm_scheduler):
    _award(cluster_site, 2)
    restarts.stop_daemon("slurmdbd")
    outcome = reconcile_site(cluster_site, make_scheduler("cli", env=restarts.env, timeout=10))
    assert not outcome.run.succeeded and is_pending({cluster_site.id})
    restarts.start_daemon("slurmdbd")
    _assert_no_garbage(cluster_site, slurm_scheduler)
    assert reconcile_site(cluster_site, slurm_scheduler).run.succeeded
    _assert_converged(cluster_site, slurm_scheduler)


@pytest.mark.disturbs_slurm
def test_slurmctld_stopped_during_a_sync_converges_and_the_controller_learns_it(cluster_site, restarts, slurm_scheduler):
    (project,) = _award(cluster_site, 1)
    outcome = reconcile_site(cluster_site, StopsDaemonMidway(restarts, "slurmctld"))
    # Accounting lives in slurmdbd, so the sync itself goes through; the controller catches up.
    restarts.start_daemon("slurmctld")
    if not outcome.run.succeeded:
        assert is_pending({cluster_site.id})
        assert reconcile_site(cluster_site, slurm_scheduler).run.succeeded
    _assert_converged(cluster_site, slurm_scheduler)
    member = project.memberships[0].user.unix_username
    slurm_scheduler.wait_for_association(_pool_of(project), member, timeout=60)


def _pool_of(project) -> str:
    from portal.grants.operations import grants_of

    return grants_of(project)[0].allocations[0].slurm_account
