"""Acceptance runs without Slurm: the upload token's limits, references derived from history,
and the flag on the systems page. (On the real cluster: tests/test_acceptance_cluster.py.)"""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.benchmarks.models import AcceptanceRun, AcceptanceState, BenchmarkReference, BenchmarkRun, Verdict
from portal.benchmarks.operations import ingest_result
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import Role
from tests.acceptance_support import OTHER_SECRET, SECRET, stored_acceptance_run
from tests.conftest import csrf_token_from, sign_in
from tests.result_docs import result_document


def post(client, run_id: int, secret: str | None, document: dict):
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}
    return client.post(f"/api/benchmarks/acceptance/{run_id}/result", json=document, headers=headers)


def doc_for_job(job_id: str = "4242", **kwargs) -> dict:
    document = result_document(**kwargs)
    document["slurm_job_id"] = job_id
    return document


def test_the_token_uploads_once_to_its_own_run_and_nowhere_else(app, client):
    with app.app_context():
        mine = stored_acceptance_run(SECRET)
        other = stored_acceptance_run(OTHER_SECRET, slurm_job_id="4243")
    assert post(client, mine, None, doc_for_job()).status_code == 401
    refused = post(client, other, SECRET, doc_for_job("4243"))  # another run's endpoint
    assert refused.status_code == 401 and "not valid for this run" in refused.get_json()["message"]
    # Nothing else takes it: it is not a personal API token.
    for method, url in (("get", "/api/me"), ("get", "/api/benchmarks/runs"), ("post", "/api/benchmarks/runs")):
        answer = getattr(client, method)(url, headers={"Authorization": f"Bearer {SECRET}"}, json=doc_for_job())
        assert answer.status_code == 401, url
    assert client.get("/benchmarks/acceptance", headers={"Authorization": f"Bearer {SECRET}"}).status_code == 302
    # A document of another system or job is refused, and the token stays usable for the real one.
    wrong = post(client, mine, SECRET, doc_for_job(system="elsewhere"))
    assert wrong.status_code == 422 and "system" in json.dumps(wrong.get_json())
    assert post(client, mine, SECRET, doc_for_job("999")).status_code == 422
    stored = post(client, mine, SECRET, doc_for_job())
    assert stored.status_code == 201, stored.get_json()
    again = post(client, mine, SECRET, doc_for_job())
    assert again.status_code == 401 and "used already" in again.get_json()["message"]
    with app.app_context():
        run = db.session.get(AcceptanceRun, mine)
        assert run.state is AcceptanceState.REPORTED and run.result_id == stored.get_json()["id"]
        assert run.token_used_at is not None and run.result.uploaded_by is None
        assert db.session.get(AcceptanceRun, other).state is AcceptanceState.QUEUED
        assert db.session.scalar(select(func.count(BenchmarkRun.id))) == 1


def test_an_expired_token_is_refused_and_the_run_fails_at_the_next_follow(app, client):
    from portal.benchmarks.acceptance import follow_acceptance_runs

    with app.app_context():
        run_id = stored_acceptance_run(SECRET, expires_in=timedelta(seconds=-1))
    refused = post(client, run_id, SECRET, doc_for_job())
    assert refused.status_code == 401 and "expired" in refused.get_json()["message"]
    with app.app_context():
        assert follow_acceptance_runs() is not None  # this site's Slurm cannot be reached: said, not raised
        db.session.commit()
        run = db.session.get(AcceptanceRun, run_id)
        assert run.state is AcceptanceState.FAILED and "expired" in run.reason
        assert db.session.scalar(select(func.count(BenchmarkRun.id))) == 0


def _staff_client(app, make_user):
    _, email, password = make_user(Role.STAFF, name="Staff Person")
    client = app.test_client()
    sign_in(client, email, password)
    return client


def test_a_reference_derived_from_history_judges_the_next_run(app, make_user):
    client = _staff_client(app, make_user)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    bandwidths = [10000.0, 10400.0, 9800.0, 10200.0, 9600.0]
    with app.app_context():
        ids = [ingest_result(result_document(when=start + timedelta(days=i), bandwidth=bw, latency=0.6 + i / 100),
                             None).id for i, bw in enumerate(bandwidths)]
        outlier = ingest_result(result_document(when=start + timedelta(days=9), bandwidth=3000.0), None).id
        db.session.commit()
    page = client.get("/benchmarks/references?system=devcluster&partition=cpu").get_data(as_text=True)
    assert f'value="{outlier}"' in page  # every run of the history is offered
    query = "&".join(f"runs={i}" for i in ids)
    proposal = client.get(f"/benchmarks/references?system=devcluster&partition=cpu&{query}"
                          "&percentile=10&slack=5").get_data(as_text=True)
    # Median 10000 MB/s; the 10th percentile of the five is 9680, so the band starts 8.2 % below.
    assert 'data-key="pingpong/bandwidth/1048576"' in proposal and "10,000" in proposal
    assert "-8.2 %" in proposal and "Adopt this reference" in proposal
    too_few = client.get(f"/benchmarks/references?system=devcluster&partition=cpu&runs={ids[0]}&runs={ids[1]}")
    assert "at least 3 runs" in too_few.get_data(as_text=True)

    token = csrf_token_from(proposal)
    adopted = client.post("/benchmarks/references", data={"csrf_token": token, "runs": ids, "percentile": "10",
                                                          "slack": "5", "note": "five healthy weeks"},
                          follow_redirects=True)
    assert "Adopted version 1 of the reference for devcluster:cpu" in adopted.get_data(as_text=True)
    with app.app_context():
        reference = db.session.scalar(select(BenchmarkReference))
        spec = reference.table["pingpong/bandwidth/1048576"]
        assert spec["value"] == 10000.0 and spec["lower"] == pytest.approx(-0.082) and spec["upper"] is None
        assert reference.table["pingpong/latency/8"]["lower"] is None  # a time: only an upper bound
        assert sorted(reference.source_run_ids) == sorted(ids)
        # New runs are judged against it, not the file: 9000 MB/s is within the file's band (down
        # to 3750) but below the adopted one (9180); 9900 passes.
        slow = ingest_result(result_document(when=start + timedelta(days=10), bandwidth=9000.0), None)
        fine = ingest_result(result_document(when=start + timedelta(days=11), bandwidth=9900.0), None)
        db.session.commit()
        assert slow.verdict is Verdict.FAILED and fine.verdict is Verdict.PASSED
        assert slow.reference_key == "devcluster:cpu" and slow.reference_id == reference.id
        assert slow.reference_origin == f"adopted reference {reference.id} (devcluster:cpu version 1)"
        slow_id = slow.id
    report = client.get(f"/benchmarks/runs/{slow_id}").get_data(as_text=True)
    assert "adopted reference" in report and "version 1" in report
    # A second adoption is a new version; the first is kept.
    client.post("/benchmarks/references", data={"csrf_token": token, "runs": ids[:3], "percentile": "0",
                                                "slack": "0"})
    with app.app_context():
        assert [r.version for r in db.session.scalars(select(BenchmarkReference).order_by(BenchmarkReference.id))] \
            == [1, 2]


def test_results_judged_by_a_file_name_the_file_and_its_version(app, make_user):
    client = _staff_client(app, make_user)
    with app.app_context():
        run = ingest_result(result_document(), None)
        db.session.commit()
        assert run.reference_key == "devcluster:*"
        assert run.reference_origin.startswith("file devcluster.json version ") and "sha256:" in run.reference_origin
        run_id = run.id
    page = client.get(f"/benchmarks/runs/{run_id}").get_data(as_text=True)
    assert "file devcluster.json" in page and "Open MPI v4.1.4" in page


def test_a_partition_whose_latest_run_failed_is_flagged_on_the_systems_page(app, make_user):
    client = _staff_client(app, make_user)
    with app.app_context():
        first = stored_acceptance_run(SECRET)
        second = stored_acceptance_run(OTHER_SECRET, slurm_job_id="4243")
        older = db.session.get(AcceptanceRun, first)
        older.state, older.reason = AcceptanceState.FAILED, "Slurm ended the job: TIMEOUT"
        db.session.commit()
    assert "latest acceptance run failed" in client.get("/sites/").get_data(as_text=True)
    post(client, second, OTHER_SECRET, doc_for_job("4243", bandwidth=11000.0))  # a newer run passed
    with app.app_context():
        assert db.session.get(AcceptanceRun, second).verdict == "passed"
    assert "latest acceptance run failed" not in client.get("/sites/").get_data(as_text=True)


def test_staff_see_the_flag_on_the_committee_ranking(app, make_user):
    from portal.calls.models import Call
    from tests.proposal_support import review_world

    pi, staff, reviewer = make_user(Role.PI), make_user(Role.STAFF), make_user(Role.REVIEWER)
    with app.app_context():
        ids = review_world(pi[0], staff[0], reviewer[0], "invitee@example.org")
        offers = db.session.get(Call, ids["call_id"]).offers
        flagged, other = offers[0].partition, offers[1].partition
        run_id = stored_acceptance_run(SECRET, on=flagged)
        run = db.session.get(AcceptanceRun, run_id)
        run.state, run.reason = AcceptanceState.FAILED, "Slurm ended the job: TIMEOUT"
        db.session.commit()
        flagged_label, other_label = flagged.label, other.label
    client = app.test_client()
    sign_in(client, staff[1], staff[2])
    page = client.get(f"/calls/{ids['call_id']}/committee").get_data(as_text=True)
    demand = page[page.index('id="demand"'):page.index('id="ranking"')]
    flagged_row = next(row for row in demand.split("<tr") if flagged_label in row)
    other_row = next(row for row in demand.split("<tr") if other_label in row)
    assert "latest acceptance run failed" in flagged_row and f"/benchmarks/acceptance/{run_id}" in flagged_row
    assert "latest acceptance run failed" not in other_row


def test_starting_needs_a_partition_and_the_service_identity(app, make_user, monkeypatch):
    client = _staff_client(app, make_user)
    with app.app_context():
        run_id = stored_acceptance_run(SECRET)  # makes the site and its UP partition
        partition_id = db.session.get(AcceptanceRun, run_id).partition_id
    page = client.get("/benchmarks/acceptance").get_data(as_text=True)
    token = csrf_token_from(page)
    form = {"csrf_token": token, "benchmarks": "pingpong", "size": "quick", "ntasks": "2", "time_minutes": "5"}
    none_chosen = client.post("/benchmarks/acceptance", data=form)
    assert none_chosen.status_code == 422 and "Choose at least one" in none_chosen.get_data(as_text=True)
    # Without the service user and account configured nothing is submitted, and staff are told why.
    monkeypatch.setitem(app.config, "ACCEPTANCE_UNIX_USER", "")
    refused = client.post("/benchmarks/acceptance", data={**form, "partitions": [partition_id]},
                          follow_redirects=True).get_data(as_text=True)
    assert "PORTAL_ACCEPTANCE_UNIX_USER" in refused
    with app.app_context():
        assert db.session.scalar(select(func.count(AcceptanceRun.id))) == 1


def test_how_a_job_ends_decides_the_runs_state(app):
    """What the service does with each state Slurm reports (the cluster tests see CANCELLED for real)."""
    from portal.benchmarks.acceptance import RESULT_GRACE, _follow_one
    from portal.slurm.types import JobState

    with app.app_context():
        run = db.session.get(AcceptanceRun, stored_acceptance_run(SECRET))
        now = utcnow()
        _follow_one(run, JobState.PENDING, "Priority", now)
        assert run.state is AcceptanceState.QUEUED
        _follow_one(run, JobState.RUNNING, None, now)
        assert run.state is AcceptanceState.RUNNING
        _follow_one(run, JobState.COMPLETED, None, now)  # its upload may still be on the way
        assert run.state is AcceptanceState.RUNNING and run.ended_at == now
        _follow_one(run, JobState.COMPLETED, None, now + RESULT_GRACE + timedelta(seconds=1))
        assert run.state is AcceptanceState.FAILED and "without posting a result" in run.reason

        timed_out = db.session.get(AcceptanceRun, stored_acceptance_run(OTHER_SECRET, slurm_job_id="4243"))
        _follow_one(timed_out, JobState.TIMEOUT, "TimeLimit", now)
        assert timed_out.state is AcceptanceState.FAILED and timed_out.reason == "Slurm ended the job: TIMEOUT (TimeLimit)"
        assert timed_out.verdict == "failed" and timed_out.failed
        db.session.rollback()
