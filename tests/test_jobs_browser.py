"""In Chromium: pick a template, preview the script, submit it, and watch the job finish."""
from __future__ import annotations

import pytest

from portal.devcluster.pytest_plugin import wait_for
from tests.browser import chromium_page, live_server, screenshot, sign_in_in_browser
from tests.test_jobs_fixtures import cluster_job_world  # noqa: F401  (fixture)

pytestmark = pytest.mark.browser


def test_pick_preview_submit_and_see_the_job_finish(app, cluster_job_world, reconciler_service):
    world = cluster_job_world
    with live_server(app) as base, chromium_page() as page:
        sign_in_in_browser(page, base, world.member[1], world.member[2])
        page.click("nav >> text=Jobs")
        page.click("text=MPI (srun with PMIx)")
        page.select_option("select[name=partition]", label="Local cluster / cpu")
        page.fill("input[name=job_name]", "browser-mpi")
        page.fill("input[name=p_ntasks]", "2")
        page.fill("input[name=p_time]", "3")
        page.click("button[value=preview]")
        preview = page.locator("#script-preview")
        preview.wait_for()
        script = preview.inner_text()
        assert "#SBATCH --job-name=browser-mpi\n" in script and "#SBATCH --ntasks=2\n" in script
        assert "srun --mpi=pmix" in script
        assert "Largest possible cost: 0.1 core-hours" in page.inner_text("p.cost")
        screenshot(page, "jobs-preview")
        page.click("button[value=submit]")
        page.wait_for_selector("text=Submitted job")

        def finished():
            page.reload()
            return page.inner_text("#job-state") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT")

        wait_for(finished, timeout=120, what="the job page to show a final state")
        assert page.inner_text("#job-state") == "COMPLETED"
        assert "rank 1 of 2: allreduce 3" in page.inner_text("pre.output")
        shot = screenshot(page, "jobs-finished")
        assert shot.stat().st_size > 10_000
