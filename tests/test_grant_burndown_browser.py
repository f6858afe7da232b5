"""A PI opens their grant in a real browser and sees the burn-down of jobs that really ran."""
from __future__ import annotations

import pytest

from portal.devcluster.pytest_plugin import wait_for
from portal.extensions import db
from portal.grants.ingest import ingest_site
from portal.grants.operations import create_grant
from portal.grants.reconcile import reconcile_site
from portal.identity.models import Role
from portal.slurm.types import JobRequest
from tests.browser import chromium_page, live_server, screenshot, sign_in_in_browser
from tests.grant_world import partition, person, pool_account, project_with_team, this_year

pytestmark = pytest.mark.browser


@pytest.mark.slow
def test_burn_down_chart_with_real_usage(app, cluster_site, slurm_cluster, slurm_scheduler):
    pi = person("Agnieszka Wróblewska", real_user=True)
    pi.set_password("burn-down-pw")
    pi.grant(Role.PI)
    project = project_with_team(pi)
    start, end = this_year()
    grant = create_grant(project, title="Szybka ścieżka – greitasis kelias", start_date=start, end_date=end,
                         hours={partition(cluster_site, "cpu"): 0.2})
    db.session.commit()
    assert reconcile_site(cluster_site).run.succeeded
    account, user = pool_account(grant, "cpu"), pi.unix_username
    slurm_scheduler.wait_for_association(account, user)
    jobs = [slurm_scheduler.submit(JobRequest(
        script="#!/bin/bash\nsleep 8\n", account=account, partition="cpu", job_name="burn", cpus_per_task=4,
        workdir=str(slurm_cluster.jobs_dir), time_limit_minutes=1, user=user,
        output=f"{slurm_cluster.jobs_dir}/burn-%j.out")) for _ in range(2)]
    for job_id in jobs:
        wait_for(lambda job_id=job_id: slurm_scheduler.job(job_id).state.is_final, 90, f"job {job_id}")
    wait_for(lambda: ingest_site(cluster_site, slurm_scheduler).charged == 2
             and all(r.state.is_final for r in slurm_scheduler.usage(*_window(), [account])), 60, "final usage")
    db.session.commit()
    grant_id, email = grant.id, pi.email

    with live_server(app) as base, chromium_page() as page:
        sign_in_in_browser(page, base, email, "burn-down-pw")
        page.click("text=Grants")
        page.click("text=Szybka ścieżka – greitasis kelias")
        chart = page.locator("section.burn-down svg.chart").first
        chart.wait_for()
        box = chart.bounding_box()
        assert box["width"] > 400 and box["height"] > 150
        assert page.locator("section.burn-down svg.chart path.series").count() >= 2  # used and the dashed forecast
        assert "will be" in page.inner_text("p.forecast") or "All" in page.inner_text("p.forecast")
        assert page.locator("#jobs tbody tr").count() == 2
        assert page.url.endswith(f"/grants/{grant_id}")
        shot = screenshot(page, "grant-burn-down")
        assert shot.stat().st_size > 10_000


def _window():
    from datetime import timedelta

    from portal.clock import utcnow

    return utcnow() - timedelta(hours=1), utcnow() + timedelta(minutes=1)
