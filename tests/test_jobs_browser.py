"""In Chromium: pick a template, preview the script, submit it, and watch the job finish."""
from __future__ import annotations

import pytest

from portal.devcluster.pytest_plugin import wait_for
from tests.browser import chromium_page, live_server, open_job_form, screenshot

pytestmark = pytest.mark.browser


def test_pick_preview_submit_and_see_the_job_finish(app, cluster_job_world, reconciler_service):
    world = cluster_job_world
    with live_server(app) as base, chromium_page() as page:
        open_job_form(page, base, world.member, "MPI (srun with PMIx)", "browser-mpi")
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
