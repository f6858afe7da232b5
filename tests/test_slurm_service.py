"""The reconciler service on the real cluster: web changes reach Slurm without a manual
command, a web request never waits for Slurm, and stopped daemons are survived."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import select

from portal.devcluster.pytest_plugin import wait_for
from portal.extensions import db
from portal.grants.models import SyncRun
from portal.grants.operations import create_grant
from portal.grants.reconcile import desired_state, is_pending, read_actual, reconcile_site
from portal.identity.models import Role
from portal.slurm.accounting import plan
from portal.slurm.runner import CommandRunner
from tests.conftest import csrf_token_from, sign_in
from tests.grant_world import partition, person, pool_account, project_with_team, slurm_associations, this_year


@pytest.fixture
def slurm_calls(monkeypatch) -> list[tuple[int, list[str]]]:
    """Every Slurm command run, with the thread that ran it."""
    calls: list[tuple[int, list[str]]] = []
    original = CommandRunner.run

    def recording(self, argv, **kwargs):
        calls.append((threading.get_ident(), list(argv)))
        return original(self, argv, **kwargs)

    monkeypatch.setattr(CommandRunner, "run", recording)
    return calls


def as_a_server(work):
    """Run ``work`` in a thread of its own: its requests get their own app context, as in a
    server, instead of sharing the test's (and its session and ``g``)."""
    result: dict = {}

    def target():
        try:
            result["value"] = work()
        except BaseException as exc:  # re-raised in the test's thread
            result["error"] = exc

    worker = threading.Thread(target=target)
    worker.start()
    worker.join(timeout=120)
    if "error" in result:
        raise result["error"]
    return result.get("value")


def _granted(site):
    pi = person("Dorota Świątek")
    pi.grant(Role.PI)
    project = project_with_team(pi)
    start, end = this_year()
    grant = create_grant(project, title="Service", start_date=start, end_date=end, hours={partition(site, "cpu"): 10})
    db.session.commit()
    return project, grant, pi


def _converged(site, scheduler) -> bool:
    db.session.expire_all()
    return not is_pending({site.id}) and not plan(desired_state(site), read_actual(site, scheduler),
                                                  site.slurm_cluster)


def test_a_membership_change_on_the_web_reaches_slurm_through_the_service(app, cluster_site, slurm_scheduler,
                                                                           reconciler_service, slurm_calls):
    project, grant, pi = _granted(cluster_site)
    # The award itself was committed without any Slurm command; the service applies it.
    wait_for(lambda: _converged(cluster_site, slurm_scheduler), 30, "the award to reach Slurm")
    account = pool_account(grant, "cpu")
    newcomer = person("Žygimantas Ūsas")
    db.session.commit()

    project_id, email = project.id, newcomer.email

    def pi_adds_a_member():
        client = app.test_client()
        sign_in(client, pi.email, "pw")
        page = client.get(f"/projects/{project_id}").get_data(as_text=True)
        began = time.monotonic()
        response = client.post(f"/projects/{project_id}/members",
                               data={"csrf_token": csrf_token_from(page), "email": email, "role": "member"})
        return response.status_code, began, time.monotonic() - began, threading.get_ident()

    status, began, answered, web_thread = as_a_server(pi_adds_a_member)
    assert status == 302
    assert not [c for c in slurm_calls if c[0] == web_thread]  # the request ran no Slurm command
    wait_for(lambda: (newcomer.unix_username, "cpu") in slurm_associations(slurm_scheduler, account), 20,
             "the new member's association in sacctmgr")
    reached = time.monotonic() - began
    print(f"web request {answered:.3f} s; in Slurm {reached:.2f} s after the click")
    wait_for(lambda: _converged(cluster_site, slurm_scheduler), 20, "the service to finish its run")


@pytest.mark.disturbs_slurm
def test_with_slurmdbd_stopped_the_web_answers_and_the_service_converges_after(app, cluster_site, slurm_cluster,
                                                                               slurm_scheduler, monkeypatch,
                                                                               make_user, slurm_calls):
    monkeypatch.setitem(app.config, "SCHEDULER_TIMEOUT", 3.0)  # the service gives up on slurmdbd quickly
    project, grant, pi = _granted(cluster_site)
    member = person("Kęstutis Žemaitis")
    from portal.projects.operations import add_member

    add_member(project, member)
    db.session.commit()
    assert reconcile_site(cluster_site, slurm_scheduler).run.succeeded
    account = pool_account(grant, "cpu")
    assert (member.unix_username, "cpu") in slurm_associations(slurm_scheduler, account)
    _, staff_email, staff_password = make_user(Role.STAFF)
    project_id, member_id, site_id = project.id, member.id, cluster_site.id

    from portal.grants.service import ReconcilerService, Schedule

    service = ReconcilerService(app, Schedule(poll=0.5, job_states=3600, outbox=3600, usage=3600, full=3600))
    slurmdbd = slurm_cluster.daemon_pid("slurmdbd")
    os.kill(slurmdbd, signal.SIGSTOP)
    worker = threading.Thread(target=service.run, daemon=True)
    try:
        worker.start()

        def pi_removes_the_member():
            client = app.test_client()
            sign_in(client, pi.email, "pw")
            page = client.get(f"/projects/{project_id}").get_data(as_text=True)
            response = client.post(f"/projects/{project_id}/members/{member_id}/remove",
                                   data={"csrf_token": csrf_token_from(page)})
            return response.status_code, threading.get_ident()

        status, web_thread = as_a_server(pi_removes_the_member)
        assert status == 302
        assert not [c for c in slurm_calls if c[0] == web_thread]  # nothing waited for the stopped slurmdbd

        def status_shows_the_failure():
            def look():
                staff = app.test_client()
                sign_in(staff, staff_email, staff_password)
                return staff.get("/slurm/status").get_data(as_text=True)
            row = as_a_server(look).split(f'id="site-{site_id}"')[1].split("</tr>")[0]
            return row if "did not answer within 3 s" in row else None

        row = wait_for(status_shows_the_failure, 30, "the status page to show the failed attempt")
        assert '<td class="pending">1</td>' in row
        assert is_pending({cluster_site.id})
    finally:
        os.kill(slurmdbd, signal.SIGCONT)
    try:
        # No command from anyone: the service retries with backoff and converges by itself.
        wait_for(lambda: (member.unix_username, "cpu") not in slurm_associations(slurm_scheduler, account), 90,
                 "the service to remove the association after slurmdbd came back")
        wait_for(lambda: _converged(cluster_site, slurm_scheduler), 30, "nothing pending, nothing different")
        assert set(slurm_associations(slurm_scheduler, account)) == {None, (pi.unix_username, "cpu")}
    finally:
        service.stop()
        worker.join(timeout=60)


@pytest.mark.disturbs_slurm
def test_sigterm_during_a_sync_leaves_nothing_half_done(app, cluster_site, slurm_cluster, slurm_scheduler, tmp_path):
    """`flask slurm run` as its own process; slurmdbd is stopped just as sacctmgr starts writing."""
    project, grant, pi = _granted(cluster_site)
    slurmdbd = slurm_cluster.daemon_pid("slurmdbd")
    mark = tmp_path / "load-started"
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    sacctmgr = wrappers / "sacctmgr"
    sacctmgr.write_text("#!/bin/bash\n"
                        # Every write (a load file, or commands on stdin) but not the reads.
                        f'case " $* " in *" show "*) ;; *) kill -STOP {slurmdbd}; touch {mark};; esac\n'
                        'exec /usr/bin/sacctmgr "$@"\n')
    sacctmgr.chmod(0o755)
    env = {**os.environ, "PATH": f"{wrappers}:/usr/bin:/bin", "FLASK_APP": "portal",
           "DATABASE_URL": app.config["SQLALCHEMY_DATABASE_URI"], "PORTAL_INSTANCE_PATH": str(tmp_path / "instance"),
           "PORTAL_SECRET_KEY": "test", "PORTAL_SLURM_TOP_ACCOUNT": app.config["SLURM_TOP_ACCOUNT"],
           "PORTAL_SCHEDULER_TIMEOUT": "60", "PORTAL_SERVICE_POLL_INTERVAL": "0.5"}
    service = subprocess.Popen([sys.executable, "-m", "flask", "slurm", "run"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(mark.exists, 60, "the service to start writing with sacctmgr")
        time.sleep(0.5)
        service.send_signal(signal.SIGTERM)
        output, _ = service.communicate(timeout=30)
    finally:
        os.kill(slurmdbd, signal.SIGCONT)
        if service.poll() is None:
            service.kill()
    assert service.returncode == 0, output
    assert "SIGTERM received" in output and "rolled back and stays pending" in output
    db.session.expire_all()
    # Slurm holds none of the change (nothing was committed), the portal recorded no success,
    # and the change still waits.
    assert slurm_associations(slurm_scheduler, project.code.replace("-", "_")) == {}
    assert not db.session.scalar(select(SyncRun).where(SyncRun.succeeded.is_(True)))
    assert is_pending({cluster_site.id})
    assert reconcile_site(cluster_site, slurm_scheduler).run.succeeded
    assert _converged(cluster_site, slurm_scheduler)
    assert set(slurm_associations(slurm_scheduler, pool_account(grant, "cpu"))) == {None, (pi.unix_username, "cpu")}


def test_metrics_are_refused_to_other_addresses(app, make_user, monkeypatch):
    anonymous = app.test_client()
    assert anonymous.get("/metrics").status_code == 200  # loopback: allowed by default
    outside = {"REMOTE_ADDR": "192.0.2.7"}
    assert anonymous.get("/metrics", environ_base=outside).status_code == 403
    monkeypatch.setitem(app.config, "METRICS_TOKEN", "s3cret-scraper")
    assert anonymous.get("/metrics", environ_base=outside,
                         headers={"Authorization": "Bearer s3cret-scraper"}).status_code == 200
    assert anonymous.get("/metrics", environ_base=outside,
                         headers={"Authorization": "Bearer wrong"}).status_code == 403
    body = anonymous.get("/metrics").get_data(as_text=True)
    assert "portal_mail_outbox_backlog" in body


def test_service_stops_promptly_when_asked(app):
    from portal.grants.service import ReconcilerService, Schedule

    service = ReconcilerService(app, Schedule(poll=30, job_states=3600, outbox=3600, usage=3600, full=3600))
    worker = threading.Thread(target=service.run, daemon=True)
    worker.start()
    time.sleep(0.5)
    service.stop()
    worker.join(timeout=10)
    assert not worker.is_alive()
