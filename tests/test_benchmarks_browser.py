"""Staff upload a result in a real browser and see the report and the history plot."""
from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from portal.benchmarks.operations import ingest_result
from portal.extensions import db
from portal.identity.models import Role
from tests.browser import chromium_page, live_server, screenshot, sign_in_in_browser
from tests.result_docs import result_document

pytestmark = pytest.mark.browser


def test_upload_report_and_history_plot_in_chromium(app, make_user, tmp_path, monkeypatch):
    refs = tmp_path / "refs"
    refs.mkdir()
    (refs / "devcluster.json").write_text(json.dumps({"schema": "mpi_examples/references/v1", "systems": {
        "devcluster:*": {"references": {"pingpong/bandwidth/1048576": [10000, -0.2, None, "MB/s"]}}}}))
    monkeypatch.setitem(app.config, "BENCHMARK_REFERENCES_DIR", str(refs))
    _, email, password = make_user(Role.STAFF, name="Rūta Kazlauskienė")
    start = datetime(2026, 9, 1, tzinfo=UTC)
    with app.app_context():
        for week, bandwidth in enumerate([10400, 11100, 10900, 7500, 11300]):
            ingest_result(result_document(when=start + timedelta(weeks=week), bandwidth=bandwidth), None)
        db.session.commit()
    upload = tmp_path / "latest.json"
    upload.write_text(json.dumps(result_document(when=start + timedelta(weeks=6), bandwidth=11800)))

    with live_server(app) as base, chromium_page() as page:
        sign_in_in_browser(page, base, email, password)
        page.click("text=Benchmarks")
        page.set_input_files("input[name=result]", str(upload))
        page.click("text=Upload and judge")
        page.wait_for_selector("text=Stored run 6")
        assert "passed" in page.inner_text("h1")
        screenshot(page, "benchmark-report")
        page.click("text=pingpong/bandwidth/1048576")
        chart = page.locator("svg.chart")
        chart.wait_for()
        box = chart.bounding_box()
        assert box["width"] > 400 and box["height"] > 150  # rendered, not an empty element
        assert page.locator("svg.chart circle.point").count() == 6
        assert page.locator("svg.chart circle.flagged").count() == 1  # the week that failed
        assert page.locator("svg.chart rect.band").count() == 1
        shot = screenshot(page, "benchmark-history")
        assert shot.stat().st_size > 10_000
