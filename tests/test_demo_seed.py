"""``flask demo seed`` on a real Slurm cluster: a living facility, seeded idempotently.

After seeding, the demo PI's grant carries usage from real jobs (as sacct counts them) with its
burn-down, a proposal is in peer review, the committee ranking orders four scored proposals, the
benchmark history has five runs, the mail reached a real SMTP sink and staff can read it, and
every role's dashboard (screenshotted in test-artifacts/) leads to that data.
"""
from __future__ import annotations

import os
import re
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.benchmarks.models import BenchmarkRun
from portal.clock import utcnow
from portal.demo import DEMO_LOGINS, SeedReport, main_project_grant, seed_demo
from portal.demo_usage import PAST_PREFIX
from portal.devcluster.pytest_plugin import unique_name, wait_for
from portal.extensions import db
from portal.grants.models import JobUsage
from portal.jobs.models import SubmittedJob
from portal.mail.outbox import OutgoingMail
from portal.proposals.models import Proposal, ProposalState
from portal.slurm import make_scheduler
from tests.browser import chromium_page, live_server, screenshot, sign_in_in_browser
from tests.conftest import sign_in, smtp_on_loopback

pytestmark = [pytest.mark.slurm, pytest.mark.browser]


@pytest.fixture
def mail_sink(app, monkeypatch):
    """The demo's sink (its own handler, a real SMTP server on loopback) catching the app's mail."""
    from portal.mailsink.operations import MaildirHandler, mailbox_path

    with app.app_context():
        folder = mailbox_path()
    with smtp_on_loopback(app, monkeypatch, MaildirHandler(folder)):
        yield folder
    for sub in ("new", "cur", "tmp"):
        for path in (folder / sub).glob("*"):
            path.unlink()


@pytest.fixture
def demo_app(app, slurm_cluster, monkeypatch):
    monkeypatch.setitem(app.config, "SLURM_TOP_ACCOUNT", unique_name("demo"))
    monkeypatch.setitem(app.config, "JOB_WORKDIR_ROOT", str(slurm_cluster.jobs_dir / unique_name("seed")))
    yield app
    # Leave the shared test cluster as it was: remove everything under this test's top account.
    from portal.grants.reconcile import read_actual
    from portal.sites.models import Site
    from portal.slurm.accounting import SlurmState, plan

    with app.app_context():
        site = db.session.scalar(select(Site))
        if site is not None:
            scheduler = make_scheduler("cli", env=slurm_cluster.env)
            gone = plan(SlurmState(), read_actual(site, scheduler), site.slurm_cluster, remove_drift=True)
            # Plain deletions, deepest accounts first: the demo's account names are fixed, so the
            # next run must find none of them.
            # (This cluster's own slurmdbd: deleting the demo users removes only their associations here.)
            # Slurm refuses to remove an account with jobs still queued or running (the seed
            # submits some; on a busy machine they may not have ended yet).
            accounts = sorted({name for group in gone.account_removals for name in group})
            if accounts:
                subprocess.run(["scancel", f"--account={','.join(accounts)}"], env={**os.environ, **slurm_cluster.env},
                               capture_output=True, timeout=30, check=False)
                wait_for(lambda: not subprocess.run(
                    ["squeue", "-h", f"--account={','.join(accounts)}", "-o", "%i"], env={**os.environ, **slurm_cluster.env},
                    capture_output=True, text=True, timeout=30, check=True).stdout.strip(), 60, "the seed's jobs to end")
            # The demo's own users (fixed names): those with associations under its top account,
            # not every user of the shared cluster (other tests' users run jobs beside it).
            users = sorted({user for _account, user, _partition in read_actual(site, scheduler).managed.users
                            if user != "root"})
            if users:
                scheduler.sacctmgr(["-i", "delete", "user", ",".join(users)])
            for group in gone.account_removals:
                scheduler.sacctmgr(["-i", "delete", "account", ",".join(group)])


def _snapshot() -> dict[str, int]:
    return {table.name: db.session.execute(select(func.count()).select_from(table)).scalar_one()
            for table in db.metadata.sorted_tables}


@pytest.mark.slow
def test_seed_builds_a_living_facility_once_and_every_role_finds_it(demo_app, slurm_cluster, mail_sink):
    app = demo_app
    with app.app_context():
        first = SeedReport()
        seed_demo(site_name="Demo cluster", slurm_cluster=slurm_cluster.cluster_name,
                  slurm_conf=str(slurm_cluster.conf_path), report=first)
        assert not first.problems, first.problems
        before = _snapshot()
        second = SeedReport()
        seed_demo(site_name="Demo cluster", slurm_cluster=slurm_cluster.cluster_name,
                  slurm_conf=str(slurm_cluster.conf_path), report=second)
        assert second.done == [] and second.problems == [] and _snapshot() == before  # changes nothing

        # Real jobs by both demo users, charged to the grant exactly as sacct counts them.
        grant = main_project_grant()
        jobs = db.session.scalars(select(SubmittedJob).where(SubmittedJob.project_id == grant.project_id)).all()
        assert {j.unix_user for j in jobs} == {"demo_pi", "demo_user"} and len(jobs) == 4
        assert {j.last_state for j in jobs} == {"COMPLETED"}
        scheduler = make_scheduler("cli", env=slurm_cluster.env)
        accounts = [a.slurm_account for a in grant.allocations]
        sacct = {r.job_id: r for r in scheduler.usage(utcnow() - timedelta(hours=1), utcnow() + timedelta(minutes=1),
                                                      accounts)}
        for job in jobs:
            row = db.session.scalar(select(JobUsage).where(JobUsage.job_id == job.slurm_job_id))
            assert row is not None and row.allocation_id in {a.id for a in grant.allocations}, job.job_name
            assert (row.cpu_seconds, row.gpu_seconds) == (sacct[job.slurm_job_id].cpu_seconds,
                                                          sacct[job.slurm_job_id].gpu_seconds), job.job_name
            # The work jobs sleep for seconds; the quick benchmark can end within the second
            # Slurm counts elapsed time in (0 s on a quiet machine), so only its record is compared.
            if job.job_name != "acceptance":
                assert row.cpu_seconds > 0, job.job_name
        gpu_job = next(j for j in jobs if j.partition.name == "gpu")
        assert sacct[gpu_job.slurm_job_id].gpu_seconds > 0
        # Back-dated rows are labelled and never stand in for the real ones.
        assert any(PAST_PREFIX in line for line in first.labelled)
        assert db.session.scalar(select(func.count()).select_from(JobUsage)
                                 .where(JobUsage.job_id.not_like(PAST_PREFIX + "%"))) >= 4

        in_review = db.session.scalar(select(Proposal).where(Proposal.state == ProposalState.IN_REVIEW))
        ranked_call = in_review.call_id
        runs = db.session.scalars(select(BenchmarkRun).order_by(BenchmarkRun.measured_at)).all()
        assert len(runs) == 5 and runs[-1].document["slurm_job_id"]  # the real run, under Slurm, is the newest
        history_key = next(m.key for m in runs[-1].metrics if m.reference is not None and m.mean is not None)
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)
                                 .where(OutgoingMail.sent_at.is_(None))) == 0
        sent = db.session.scalar(select(func.count()).select_from(OutgoingMail))
        grant_id = grant.id
    caught = list((mail_sink / "new").iterdir())
    assert sent > 10 and len(caught) == sent  # every message the outbox sent reached the sink

    logins = {login.email.split("@")[0]: login for login in DEMO_LOGINS}

    def client(who: str):
        c = app.test_client()
        sign_in(c, logins[who].email, logins[who].password)
        return c

    staff, pi = client("staff"), client("pi")
    burn_down = pi.get(f"/grants/{grant_id}").get_data(as_text=True)
    assert "Forecast at the current rate" in burn_down and "demo_user" in burn_down
    ranking = staff.get(f"/calls/{ranked_call}/committee").get_data(as_text=True)
    scores = [float(s) for s in re.findall(r'<td class="score">([0-9.]+)</td>', ranking)]
    assert len(scores) == 4 and scores == sorted(scores, reverse=True)
    history = staff.get(f"/benchmarks/history?system=devcluster&partition=cpu&key={history_key}").get_data(as_text=True)
    assert history.count('class="point') >= 5
    mail_page = staff.get("/mail/caught").get_data(as_text=True)
    assert f"{sent} messages caught." in mail_page and "Proposal submitted" in mail_page

    with live_server(app) as base, chromium_page() as page:
        expectations = {
            "pi": ["#open-calls >> text=Apply for compute time", "#waiting >> text=final report overdue",
                   "#waiting >> text=waits for staff", ".grant-card svg.chart", "#my-proposals >> text=Reviews released"],
            "user": ["#usable-grants >> text=sbatch -A", "#recent-jobs >> text=COMPLETED"],
            "reviewer": ["#reviews-due >> text=declare conflicts of interest", "#reviews-due tr.overdue"],
            "staff": ["#queue-admissibility >> text=Speech corpora for Samogitian", "#queue-requests >> text=Fine-tuning Baltic language models",
                      "#queue-reports >> text=Pilot: tokenisers", "#rankings >> text=demo-regular", "#benchmarks >> text=devcluster / cpu",
                      "text=Mail caught by the demo mail sink", "#slurm-sync >> text=in sync"],
            "admin": ["#queue-technical >> text=Protein language models on CPUs"],
        }
        for who, selectors in expectations.items():
            page.context.clear_cookies()
            sign_in_in_browser(page, base, logins[who].email, logins[who].password)
            page.wait_for_selector("h1")
            for selector in selectors:
                assert page.locator(selector).count() >= 1, f"{who}: {selector}"
            screenshot(page, f"dashboard-{who}")
        page.click("#rankings >> text=demo-regular")
        # count() does not wait: read the ranking only once the committee page has loaded.
        page.wait_for_url(re.compile(r"/calls/\d+/committee$"))
        assert page.locator("td.score").count() == 4
