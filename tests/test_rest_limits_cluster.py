"""What slurmrestd 22.05 cannot do, checked on the real cluster, and how the rest adapter copes.

If the first test starts failing, a newer slurmrestd can change account associations itself and
the sacctmgr fallback (``limits_fallback``) can go.
"""
from __future__ import annotations

import pytest

from portal.devcluster.pytest_plugin import make_test_scheduler, unique_name
from portal.extensions import db
from portal.grants.operations import create_grant
from portal.grants.reconcile import is_pending, reconcile_site
from portal.slurm import SchedulerCommandFailed
from tests.grant_world import partition, person, project_with_team, this_year

pytestmark = pytest.mark.slurm


@pytest.fixture
def rest_account(slurm_cluster):
    rest = make_test_scheduler("rest", slurm_cluster, limits_fallback=None)
    name = unique_name("lim")
    rest.add_account(name, grp_tres_mins={"cpu": 100})
    yield rest, name
    rest.remove_account(name)


def test_slurmrestd_2205_answers_an_account_limit_change_without_making_it(rest_account):
    rest, name = rest_account
    body = rest._account_body(name, "root", {"cpu": 200}, None)
    rest._call("POST", rest._db("/associations"), body={"associations": [body]}, ok=("Missing required field 'user'",))
    (own,) = [a for a in rest.associations([name]) if a.user is None]
    assert own.grp_tres_mins == {"cpu": 100}  # unchanged, and no error said so


def test_without_a_fallback_the_rest_adapter_refuses_account_limit_changes(rest_account, slurm_cluster):
    rest, name = rest_account
    assert "account_limits_refused" in rest.limitations
    with pytest.raises(SchedulerCommandFailed, match="cannot change the limits"):
        rest.modify_account(name, grp_tres_mins={"cpu": 200})
    with_fallback = make_test_scheduler("rest", slurm_cluster)
    with_fallback.modify_account(name, grp_tres_mins={"cpu": 200})
    (own,) = [a for a in rest.associations([name]) if a.user is None]
    assert own.grp_tres_mins == {"cpu": 200}


@pytest.mark.disturbs_slurm
@pytest.mark.parametrize("site_adapter", ["rest"])
def test_reconcile_while_slurmrestd_is_stopped_fails_visibly_and_converges_later(cluster_site, slurm_cluster,
                                                                                   slurm_scheduler):
    project = project_with_team(person("Ona Šaltenienė"))
    start, end = this_year()
    create_grant(project, title="Rest", start_date=start, end_date=end, hours={partition(cluster_site, "cpu"): 5})
    db.session.commit()
    slurm_cluster.stop_daemon("slurmrestd")
    try:
        outcome = reconcile_site(cluster_site)
        assert not outcome.run.succeeded and "slurmrestd" in outcome.run.error
        assert is_pending({cluster_site.id})  # the change waits for the next run
    finally:
        slurm_cluster.start(timeout=60)
    assert reconcile_site(cluster_site).run.succeeded
    assert not is_pending({cluster_site.id})
    assert project.slurm_account in {a.name for a in slurm_scheduler.accounts()}
