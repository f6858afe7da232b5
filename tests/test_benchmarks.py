"""Acceptance results in the portal: stored, judged against references, shown and plotted."""
from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.benchmarks.models import BenchmarkRun, MetricStatus, Verdict
from portal.benchmarks.operations import InvalidResult, ingest_result, load_all_references
from portal.extensions import db
from portal.identity.models import Role
from tests.conftest import csrf_token_from, sign_in
from tests.result_docs import REFERENCES, result_document


def run_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count(BenchmarkRun.id)))


def test_judged_against_references(app_ctx):
    good = ingest_result(result_document(bandwidth=11000.0), None, references=REFERENCES)
    assert good.verdict is Verdict.PASSED and good.reference_key == "devcluster:*"
    bw = next(m for m in good.metrics if m.key == "pingpong/bandwidth/1048576")
    assert bw.status is MetricStatus.PASS and bw.margin == pytest.approx(0.1)
    assert bw.lower_bound == pytest.approx(8000.0)

    slow = ingest_result(result_document(bandwidth=7000.0), None, references=REFERENCES)
    assert slow.verdict is Verdict.FAILED
    assert [m.key for m in slow.failed_metrics] == ["pingpong/bandwidth/1048576"]

    elsewhere = ingest_result(result_document(system="othersystem"), None, references=REFERENCES)
    assert elsewhere.verdict is Verdict.NO_REFERENCE
    assert {m.status for m in elsewhere.metrics} == {MetricStatus.UNREFERENCED}


def test_failed_correctness_check_fails_the_run_whatever_the_numbers(app_ctx):
    run = ingest_result(result_document(errors=[("pingpong", "rank 1 received corrupted data at 4096 B")]),
                        None, references=REFERENCES)
    assert run.verdict is Verdict.FAILED


def test_invalid_documents_are_refused_and_nothing_is_stored(app, app_ctx):
    bad = result_document()
    del bad["metrics"][0]["unit"]
    with pytest.raises(InvalidResult) as error:
        ingest_result(bad, None, references=REFERENCES)
    assert any("unit" in p for p in error.value.problems)
    with pytest.raises(InvalidResult):
        ingest_result(["not", "an", "object"], None, references=REFERENCES)
    db.session.rollback()
    assert run_count(app) == 0


def test_shipped_reference_files_load(app_ctx):
    references = load_all_references()
    assert any(key.startswith("devcluster") for key in references)


@pytest.fixture
def references_dir(app, tmp_path, monkeypatch):
    """The app judges against references files in a folder; here, the test's references."""
    (tmp_path / "devcluster.json").write_text(json.dumps({
        "schema": "mpi_examples/references/v1",
        "systems": {key: {"references": table} for key, table in REFERENCES.items()}}))
    monkeypatch.setitem(app.config, "BENCHMARK_REFERENCES_DIR", str(tmp_path))
    return tmp_path


def test_staff_upload_via_api_and_page_and_history(app, client, make_user, references_dir):
    _, email, password = make_user(Role.STAFF)
    sign_in(client, email, password)
    token = csrf_token_from(client.get("/benchmarks/").get_data(as_text=True))
    start = datetime(2026, 10, 1, tzinfo=UTC)
    for day, bandwidth in enumerate([10500.0, 11200.0, 7600.0]):
        response = client.post("/api/benchmarks/runs", headers={"X-CSRFToken": token},
                               json=result_document(when=start + timedelta(days=day), bandwidth=bandwidth))
        assert response.status_code == 201, response.get_json()
    # The same through the upload form; a broken file is refused with the reason.
    bad = client.post("/benchmarks/upload", data={"csrf_token": token, "result": (io.BytesIO(b"{not json"), "r.json")},
                      content_type="multipart/form-data", follow_redirects=True)
    assert "The file is not JSON" in bad.get_data(as_text=True)
    upload = client.post("/benchmarks/upload", content_type="multipart/form-data", follow_redirects=True, data={
        "csrf_token": token,
        "result": (io.BytesIO(json.dumps(result_document(when=start + timedelta(days=3))).encode()), "r.json")})
    assert upload.status_code == 200 and "Stored run 4" in upload.get_data(as_text=True)
    assert run_count(app) == 4

    overview = client.get("/benchmarks/").get_data(as_text=True)
    assert "devcluster" in overview and "passed" in overview  # latest run (day 3) passed

    runs = client.get("/api/benchmarks/runs?system=devcluster").get_json()
    failed = next(r for r in runs if r["verdict"] == "failed")
    report = client.get(f"/benchmarks/runs/{failed['id']}").get_data(as_text=True)
    assert "pingpong/bandwidth/1048576" in report and "-24.0 %" in report

    history = client.get("/benchmarks/history?system=devcluster&partition=cpu&key=pingpong/bandwidth/1048576")
    page = history.get_data(as_text=True)
    assert history.status_code == 200 and "<svg" in page
    assert page.count('class="point') == 4 and page.count('class="point flagged"') == 1
    assert 'class="band"' in page  # the reference range is drawn
    api_history = client.get("/api/benchmarks/history?system=devcluster&partition=cpu"
                             "&key=pingpong/bandwidth/1048576").get_json()
    assert [p["mean"] for p in api_history] == [10500.0, 11200.0, 7600.0, 11000.0]


def test_only_staff_upload(client, make_user):
    _, email, password = make_user(Role.PI)
    sign_in(client, email, password)
    token = csrf_token_from(client.get("/benchmarks/").get_data(as_text=True))
    response = client.post("/api/benchmarks/runs", headers={"X-CSRFToken": token}, json=result_document())
    assert response.status_code == 403
    assert "Upload a result" not in client.get("/benchmarks/").get_data(as_text=True)


def test_invalid_upload_via_api_names_the_problem(client, make_user):
    _, email, password = make_user(Role.STAFF)
    sign_in(client, email, password)
    token = csrf_token_from(client.get("/benchmarks/").get_data(as_text=True))
    doc = result_document()
    doc["metrics"][1]["unit"] = "furlongs"
    response = client.post("/api/benchmarks/runs", headers={"X-CSRFToken": token}, json=doc)
    assert response.status_code == 422
    assert "unit" in json.dumps(response.get_json())


def test_cli_upload_shows_progress_and_refuses_bad_files(app, make_user, tmp_path_factory, references_dir):
    _, email, _ = make_user(Role.STAFF)
    tmp_path = tmp_path_factory.mktemp("uploads")
    good = tmp_path / "good.json"
    good.write_text(json.dumps(result_document()))
    bad = tmp_path / "bad.json"
    bad.write_text('{"schema": "something else"}')
    result = app.test_cli_runner().invoke(args=["benchmarks", "upload", str(good), str(bad), "--as", email])
    assert result.exit_code != 0
    assert "Uploading results" in result.output
    assert "devcluster/cpu passed" in result.output
    assert "bad.json: refused" in result.output
    assert run_count(app) == 1  # the good file is kept, the bad one changed nothing


def test_broken_references_file_is_reported_not_a_crash(client, make_user, references_dir):
    (references_dir / "zz-broken.json").write_text('{"schema": "wrong"}')
    _, email, password = make_user(Role.STAFF)
    sign_in(client, email, password)
    token = csrf_token_from(client.get("/benchmarks/").get_data(as_text=True))
    response = client.post("/api/benchmarks/runs", headers={"X-CSRFToken": token}, json=result_document())
    assert response.status_code == 503 and "zz-broken.json is broken" in response.get_json()["message"]


def test_a_real_suite_result_gets_the_same_verdict_in_the_portal(app, make_user, tmp_path):
    """mpirun -n 2 python -m mpi_examples suite ... --json FILE, then `flask benchmarks upload`."""
    import os
    import shutil
    import subprocess
    import sys

    from tests.mpi_examples.conftest import REPO, mpirun_prefix

    out = tmp_path / "suite.json"
    references = REPO / "mpi_examples" / "references" / "devcluster.json"
    proc = subprocess.run(
        [*mpirun_prefix(2), sys.executable, "-m", "mpi_examples", "suite", "--references", str(references),
         "--system", "devcluster", "--partition", "cpu", "--benchmarks", "pingpong,allreduce", "--quick",
         "--array", "numpy", "--json", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=180, env=dict(os.environ))
    assert out.exists(), proc.stdout + proc.stderr
    document = json.loads(out.read_text())
    _, email, _ = make_user(Role.STAFF)
    result = app.test_cli_runner().invoke(args=["benchmarks", "upload", str(out), "--as", email])
    assert shutil.which("mpirun") and "run 1 devcluster/cpu" in result.output, result.output
    with app.app_context():
        run = db.session.get(BenchmarkRun, 1)
        assert run.array == "numpy (host)" and run.ranks == 2
        assert (run.verdict is Verdict.PASSED) == document["suite"]["passed"]
        judged = {m.key: m.status.value for m in run.metrics if m.status is not MetricStatus.UNREFERENCED}
        assert judged == {r["key"]: r["status"] for r in document["suite"]["results"] if r["status"] != "unreferenced"}
