"""Acceptance runs end to end on the real test cluster.

Staff start a run on the acceptance page; the portal submits the benchmark template as the
acceptance service user; the job runs mpi_examples under Slurm and posts its result to the
portal (served on a real port) with its run's token; the reconciler service follows the
job. Nothing is uploaded by hand. A job cancelled mid-run shows as failed, and its token is
void.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from portal.benchmarks.models import AcceptanceRun, AcceptanceState, BenchmarkRun
from portal.devcluster.pytest_plugin import unique_name, wait_for, worker_user_name
from portal.extensions import db
from portal.identity.models import Role
from portal.sites.models import Site
from portal.sites.operations import create_site, sync_partitions
from portal.slurm.types import JobState
from tests.browser import live_server
from tests.conftest import csrf_token_from, sign_in


@pytest.fixture
def acceptance_world(app, make_user, slurm_cluster, slurm_scheduler, monkeypatch, tmp_path):
    """The test cluster as a site, the acceptance service user and account, references for it."""
    unix_user = slurm_cluster.ensure_unix_user(worker_user_name("acceptbench"))
    account = unique_name("acc")
    slurm_scheduler.add_account(account, description="acceptance runs")
    slurm_scheduler.add_user(account, unix_user)
    slurm_scheduler.wait_for_association(account, unix_user)
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "testcluster.json").write_text(json.dumps({
        "schema": "mpi_examples/references/v1", "version": "test-7", "systems": {
            f"{slurm_cluster.cluster_name}:*": {"references": {
                # Wide open: the test is of the way a result comes back, on a busy 2-core machine.
                "pingpong/latency/1": [1.0, None, 1e6, "us"],
                "pingpong/bandwidth/65536": [5000, -1.0, None, "MB/s"]}}}}))
    for key, value in (("ACCEPTANCE_UNIX_USER", unix_user), ("ACCEPTANCE_ACCOUNT", account),
                       ("JOB_WORKDIR_ROOT", str(slurm_cluster.jobs_dir)), ("BENCHMARK_REFERENCES_DIR", str(refs)),
                       ("SLURM_TOP_ACCOUNT", unique_name("top"))):
        monkeypatch.setitem(app.config, key, value)
    with app.app_context():
        site = create_site("Local cluster", slurm_cluster.cluster_name, slurm_conf=str(slurm_cluster.conf_path))
        sync_partitions(site, slurm_scheduler)
        db.session.commit()
        partition_id = next(p.id for p in site.partitions if p.name == "cpu")
    staff = make_user(Role.STAFF, name="Agnė Staff")
    return {"partition_id": partition_id, "staff": staff, "unix_user": unix_user, "account": account}


def _start(app, world, benchmarks: str, size: str, minutes: int = 5) -> int:
    client = app.test_client()
    sign_in(client, world["staff"][1], world["staff"][2])
    page = client.get("/benchmarks/acceptance").get_data(as_text=True)
    assert "Start a run" in page and "Local cluster / cpu" in page
    response = client.post("/benchmarks/acceptance", data={
        "csrf_token": csrf_token_from(page), "partitions": [world["partition_id"]], "benchmarks": benchmarks,
        "size": size, "ntasks": "2", "time_minutes": str(minutes)})
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        run = db.session.scalar(select(AcceptanceRun).order_by(AcceptanceRun.id.desc()))
        assert run.state is AcceptanceState.QUEUED and run.slurm_job_id
        assert (run.unix_user, run.account) == (world["unix_user"], world["account"])
        return run.id


def _state(app, run_id: int) -> AcceptanceRun | None:
    with app.app_context():
        run = db.session.get(AcceptanceRun, run_id)
        db.session.expunge(run)
        return run


def test_staff_start_a_run_the_job_reports_itself_and_the_page_shows_verdict_and_provenance(
        app, acceptance_world, reconciler_service, slurm_scheduler):
    with live_server(app) as base:
        app.config["PUBLIC_URL"] = base
        try:
            run_id = _start(app, acceptance_world, "pingpong", "quick")
            run = wait_for(lambda: (r := _state(app, run_id)).state.is_final and r, timeout=240,
                           what="the acceptance job to post its result")
            if run.state is AcceptanceState.REPORTED:  # then the service sees the job end
                run = wait_for(lambda: (r := _state(app, run_id)).slurm_state == "COMPLETED" and r, timeout=60,
                               what="the service to see the job completed")
        finally:
            app.config["PUBLIC_URL"] = ""
    assert run.state is AcceptanceState.REPORTED, (run.reason, Path(run.workdir, f"slurm-{run.slurm_job_id}.out"))
    job = slurm_scheduler.job(run.slurm_job_id)
    assert job.user == acceptance_world["unix_user"] and job.account == acceptance_world["account"]
    assert not Path(run.workdir, f".acceptance-{run_id}.token").exists()  # read and deleted by the job
    with app.app_context():
        assert db.session.scalar(select(func.count(BenchmarkRun.id))) == 1
        result = db.session.get(BenchmarkRun, run.result_id)
        assert result.uploaded_by_id is None and result.document["slurm_job_id"] == run.slurm_job_id
        assert result.document["slurm"]["account"] == acceptance_world["account"]
        verdict, document = result.verdict.value, result.document
    assert verdict == "passed"

    client = app.test_client()
    sign_in(client, acceptance_world["staff"][1], acceptance_world["staff"][2])
    page = client.get(f"/benchmarks/acceptance/{run_id}").get_data(as_text=True)
    assert "passed" in page and f"{run.slurm_job_id} (COMPLETED)" in page
    import mpi4py

    for shown in (f'class="slurm-job">{run.slurm_job_id}<', f'class="version-mpi4py">{mpi4py.__version__}<',
                  "Open MPI", 'class="version-mpi_examples">', "file testcluster.json version test-7 sha256:",
                  "portal 0.1.0", ", ".join(document["hostnames"]), f'({document["slurm"]["nodelist"]})'):
        assert shown in page, shown
    listing = client.get("/benchmarks/acceptance").get_data(as_text=True)
    assert f'data-run="{run_id}"' in listing and "passed" in listing


def test_a_job_cancelled_mid_run_shows_as_failed_and_its_token_is_void(
        app, acceptance_world, reconciler_service, slurm_scheduler):
    run_id = _start(app, acceptance_world, "interconnect", "full", minutes=10)
    run = _state(app, run_id)
    wait_for(lambda: slurm_scheduler.job(run.slurm_job_id).state is JobState.RUNNING, timeout=120,
             what="the job to start")
    token = Path(run.workdir, f".acceptance-{run_id}.token").read_text()  # as if it had leaked
    slurm_scheduler.cancel(run.slurm_job_id)
    failed = wait_for(lambda: (r := _state(app, run_id)).state.is_final and r, timeout=120,
                      what="the service to see the job cancelled")
    assert failed.state is AcceptanceState.FAILED and failed.slurm_state == "CANCELLED"
    assert "CANCELLED" in failed.reason
    assert not Path(run.workdir, f".acceptance-{run_id}.token").exists()

    client = app.test_client()
    late = client.post(f"/api/benchmarks/acceptance/{run_id}/result", headers={"Authorization": f"Bearer {token}"},
                       json={"schema": "mpi_examples/result/v1"})
    assert late.status_code == 401
    sign_in(client, acceptance_world["staff"][1], acceptance_world["staff"][2])
    page = client.get(f"/benchmarks/acceptance/{run_id}").get_data(as_text=True)
    assert "failed" in page and "Slurm ended the job: CANCELLED" in page
    systems = client.get("/sites/").get_data(as_text=True)
    assert "latest acceptance run failed" in systems
    with app.app_context():
        assert db.session.scalar(select(func.count(BenchmarkRun.id))) == 0
        assert db.session.scalar(select(Site)).name == "Local cluster"


@pytest.mark.browser
def test_in_chromium_staff_start_a_run_and_see_it_judged(app, acceptance_world):
    from tests.browser import chromium_page, screenshot, sign_in_in_browser

    _, email, password = acceptance_world["staff"]
    with live_server(app) as base, chromium_page() as page:
        app.config["PUBLIC_URL"] = base
        try:
            sign_in_in_browser(page, base, email, password)
            page.click("nav >> text=Benchmarks")
            page.click("text=Acceptance runs")
            page.check(f"#start-run input[name=partitions][value='{acceptance_world['partition_id']}']")
            page.select_option("select[name=benchmarks]", "pingpong")
            page.select_option("select[name=size]", "quick")
            page.fill("input[name=time_minutes]", "5")
            with page.expect_navigation():
                page.click("#start-run button[type=submit]")
            assert "Started run" in page.inner_text("main"), page.inner_text("main")
            for _ in range(120):  # the job posts its result; the page shows it on the next load
                if page.locator("h1 .verdict-passed, h1 .verdict-failed").count():
                    break
                page.wait_for_timeout(2000)
                page.reload()
            assert page.locator("h1 .verdict-passed").count() == 1, page.inner_text("main")
            assert page.locator("#provenance .version-mpi4py").count() == 1
            screenshot(page, "acceptance-run")
        finally:
            app.config["PUBLIC_URL"] = ""
