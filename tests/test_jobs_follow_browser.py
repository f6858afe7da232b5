"""In Chromium: a user submits their own command, watches it run, reads its output and
efficiency, and submits it again with a longer time."""
from __future__ import annotations

import pytest

from portal.devcluster.pytest_plugin import wait_for
from tests.browser import chromium_page, live_server, open_job_form, screenshot

pytestmark = pytest.mark.browser

FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")
# The user's own program: holds 64 MiB and computes for 6 s (Slurm samples memory every 5 s).
COMMAND = ("python3 -c 'import time; x = b\"x\" * 2**26; t = time.time(); exec(\"while time.time() - t < 6: pass\");"
           " print(\"my own program ran with\", len(x) >> 20, \"MiB\")'; echo \"a warning\" >&2")


@pytest.mark.slow
def test_submit_own_command_watch_it_read_output_and_efficiency_then_resubmit_longer(
        app, cluster_job_world, reconciler_service):
    world = cluster_job_world
    with live_server(app) as base, chromium_page() as page:
        open_job_form(page, base, world.member, "Plain job (your command)", "browser-follow")
        page.fill("[name=p_command]", COMMAND)
        page.fill("input[name=p_time]", "2")
        page.click("button[value=preview]")
        preview = page.locator("#script-preview")
        preview.wait_for()
        assert "#SBATCH --time=2\n" in preview.inner_text() and "my own program ran with" in preview.inner_text()
        page.click("button[value=submit]")
        page.wait_for_selector("text=Submitted job")
        first_url = page.url
        # States come from the reconciler service: the page is reloaded, never asks Slurm itself.
        def shown(selector: str, texts: tuple[str, ...] | None = None) -> bool:
            page.reload()
            if texts is None:
                return page.locator(selector).count() == 1
            return page.inner_text(selector) in texts

        wait_for(lambda: shown("#job-state", ("RUNNING", *FINAL)), timeout=120, what="the job to start")
        assert "as of" in page.inner_text("#job-state-seen")
        wait_for(lambda: shown("#job-efficiency"), timeout=120, what="the job's efficiency on its page")
        assert page.inner_text("#job-state") == "COMPLETED"
        output = page.inner_text("pre.output")
        assert "my own program ran with 64 MiB" in output and "a warning" in output
        efficiency = page.inner_text("#job-efficiency")
        assert "CPU efficiency" in efficiency and "core-walltime" in efficiency
        assert "MiB at most" in efficiency and "of a 0:02:00 time limit" in efficiency
        screenshot(page, "jobs-follow-efficiency")

        page.click("#submit-again")
        assert page.input_value("input[name=job_name]") == "browser-follow"
        assert page.input_value("[name=p_command]") == COMMAND
        page.fill("input[name=p_time]", "4")
        page.click("button[value=preview]")
        page.locator("#script-preview").wait_for()
        script = page.inner_text("#script-preview")
        assert "#SBATCH --time=4\n" in script and "my own program ran with" in script
        page.click("button[value=submit]")
        page.wait_for_selector("text=Submitted job")
        assert page.url != first_url
        assert "#SBATCH --time=4\n" in page.inner_text("pre.script")
        screenshot(page, "jobs-follow-resubmitted")
        page.click("text=Cancel job")
        page.wait_for_selector("text=Cancelled job")
