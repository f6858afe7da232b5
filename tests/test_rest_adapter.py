"""The rest adapter's configuration and what staff are shown about it (no Slurm needed)."""
from __future__ import annotations

import os
import time

import pytest

from portal.extensions import db
from portal.identity.models import Role
from portal.sites.operations import create_site, scheduler_for
from portal.slurm import SchedulerError, SchedulerUnreachable, make_scheduler
from portal.slurm.rest import RestScheduler
from tests.conftest import sign_in


def test_a_rest_site_builds_its_adapter_from_url_token_file_and_version(app, tmp_path):
    with app.app_context():
        site = create_site("REST", "restc", scheduler_adapter="rest", rest_url="http://127.0.0.1:9",
                           rest_token_file=str(tmp_path / "token"), rest_api_version="v0.0.37",
                           slurm_conf="/etc/slurm/slurm.conf")
        scheduler = scheduler_for(site)
        assert isinstance(scheduler, RestScheduler)
        assert (scheduler.url, scheduler.token_file, scheduler.api_version, scheduler.cluster) == (
            "http://127.0.0.1:9", str(tmp_path / "token"), "v0.0.37", "restc")
        assert scheduler._slurm("/jobs") == "/slurm/v0.0.37/jobs"
        assert "account_limits_via_sacctmgr" in scheduler.limitations  # slurm.conf: the sacctmgr fallback
        site.slurm_conf = None
        assert "account_limits_refused" in scheduler_for(site).limitations
        db.session.rollback()


@pytest.mark.parametrize("options", [{"url": "ftp://x", "token_file": "/t"}, {"url": "http://x"},
                                     {"url": "http://x", "token_file": "/t", "api_version": "../v1"}])
def test_bad_rest_configuration_is_refused(options):
    with pytest.raises(SchedulerError):
        make_scheduler("rest", **options)


def test_a_rotated_token_file_is_read_again_and_a_missing_one_is_unreachable(tmp_path):
    token = tmp_path / "token"
    token.write_text("SLURM_JWT=first\n")
    scheduler = make_scheduler("rest", url="http://127.0.0.1:9", token_file=str(token))
    assert scheduler._read_token() == "first"
    time.sleep(0.01)
    token.write_text("second\n")
    os.utime(token, (time.time() + 5, time.time() + 5))  # a new modification time, however coarse the clock
    assert scheduler._read_token() == "second"
    token.unlink()
    with pytest.raises(SchedulerUnreachable, match="token file"):
        scheduler._read_token()


def test_a_token_from_the_environment(monkeypatch):
    scheduler = make_scheduler("rest", url="http://127.0.0.1:9", token_env="PORTAL_TEST_SLURM_JWT")
    monkeypatch.delenv("PORTAL_TEST_SLURM_JWT", raising=False)
    with pytest.raises(SchedulerUnreachable, match="PORTAL_TEST_SLURM_JWT"):
        scheduler._read_token()
    monkeypatch.setenv("PORTAL_TEST_SLURM_JWT", "tok")
    assert scheduler._read_token() == "tok"


def test_staff_see_what_the_rest_adapter_only_approximates(app, client, make_user, tmp_path):
    with app.app_context():
        create_site("Command line site", "clic", slurm_conf="/etc/slurm/slurm.conf")
        create_site("REST site", "restc", scheduler_adapter="rest", rest_url="http://127.0.0.1:9",
                    rest_token_file=str(tmp_path / "token"))
        create_site("Broken REST site", "restb", scheduler_adapter="rest")
        db.session.commit()
    _, email, password = make_user(Role.STAFF)
    sign_in(client, email, password)
    page = client.get("/slurm/status").get_data(as_text=True)
    rows = {name: page[page.index(f"<td>{name}</td>"):].split("</tr>")[0]
            for name in ("Command line site", "REST site", "Broken REST site")}
    assert "adapter-limitations" not in rows["Command line site"]
    assert "does not show the controller&#39;s live usage" in rows["REST site"]
    assert "Limit changes of existing accounts fail" in rows["REST site"]
    assert "not configured correctly" in rows["Broken REST site"]


def test_sites_add_configures_a_rest_site_and_refuses_one_without_url_or_token(app):
    from portal.sites.models import Site

    runner = app.test_cli_runner()
    refused = runner.invoke(args=["sites", "add", "No token", "--cluster", "nota", "--adapter", "rest",
                                  "--rest-url", "http://127.0.0.1:6820"])
    assert refused.exit_code != 0 and "--rest-token-file" in refused.output
    done = runner.invoke(args=["sites", "add", "Via REST", "--cluster", "viarest", "--adapter", "rest",
                               "--rest-url", "http://127.0.0.1:6820", "--rest-token-file", "/etc/portal/slurmrestd.token"])
    assert done.exit_code == 0, done.output
    with app.app_context():
        site = db.session.scalar(db.select(Site).filter_by(slurm_cluster="viarest"))
        assert (site.scheduler_adapter, site.rest_url, site.rest_token_file, site.rest_api_version) == (
            "rest", "http://127.0.0.1:6820", "/etc/portal/slurmrestd.token", "v0.0.38")
        assert db.session.scalar(db.select(Site).filter_by(slurm_cluster="nota")) is None


def test_the_token_never_follows_a_redirect(tmp_path):
    """A slurmrestd address that redirects elsewhere gets a refusal, and the other host no token."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from portal.slurm import SchedulerCommandFailed

    seen: list[str | None] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("X-SLURM-USER-TOKEN"))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"errors": [], "pings": [{"ping": "UP"}]}')

        def log_message(self, *args):
            pass

    elsewhere = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirecting(Elsewhere):
        def do_GET(self):
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{elsewhere.server_port}{self.path}")
            self.end_headers()

    redirecting = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (elsewhere, redirecting):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "token").write_text("secret-token\n")
        scheduler = make_scheduler("rest", url=f"http://127.0.0.1:{redirecting.server_port}",
                                   token_file=str(tmp_path / "token"), timeout=5)
        with pytest.raises(SchedulerCommandFailed):
            scheduler.ping()
        assert seen == []
        direct = make_scheduler("rest", url=f"http://127.0.0.1:{elsewhere.server_port}",
                                token_file=str(tmp_path / "token"), timeout=5)
        direct.ping()  # the same request without the redirect is answered
        assert seen == ["secret-token"]
    finally:
        for server in (elsewhere, redirecting):
            server.shutdown()
            server.server_close()
