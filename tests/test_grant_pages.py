"""Grant pages, requests, final reports and alerts as people use them (Slurm unreachable here)."""
from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.alerts import send_usage_alerts
from portal.grants.models import Grant, GrantAllocation, GrantRequest, JobUsage, RequestStatus, SyncRun
from portal.grants.operations import create_grant
from portal.grants.summary import refresh_usage_summaries
from portal.identity.models import Role, User
from portal.projects.models import ProjectRole
from portal.projects.operations import add_member, create_project
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site
from portal.transactions import commit
from tests.conftest import csrf_token_from, sign_in


@pytest.fixture
def granted(app, make_user, tmp_path):
    pi = make_user(Role.PI, name="Paweł Żółkiewski", unix_username="pzolk")
    member = make_user(Role.MEMBER, name="Rūta Šimkutė", unix_username="rsimk")
    staff = make_user(Role.STAFF, name="Staff")
    with app.app_context():
        site = create_site("Unreachable", "nowhere", slurm_conf=str(tmp_path / "missing-slurm.conf"))
        cpu = Partition(name="cpu", resource_kind=ResourceKind.CPU)
        gpu = Partition(name="gpu", resource_kind=ResourceKind.GPU, gpus_per_node=2)
        site.partitions += [cpu, gpu]
        project = create_project("ehpc-ai-7", "Modele języka – kalbos modeliai", db.session.get(User, pi[0]))
        add_member(project, db.session.get(User, member[0]), ProjectRole.MEMBER)
        today = utcnow().date()
        grant = create_grant(project, title="Łódź–Vilnius LLM", start_date=today - timedelta(days=30),
                             end_date=today + timedelta(days=70), hours={cpu: 1000, gpu: 100})
        cpu_alloc, gpu_alloc = grant.allocation_for(cpu), grant.allocation_for(gpu)
        for n, (user, days_ago, cpu_h, gpu_h) in enumerate([("pzolk", 25, 200, 0), ("rsimk", 10, 50, 0),
                                                            ("rsimk", 5, 16, 45)]):
            start = datetime.combine(today - timedelta(days=days_ago), datetime.min.time())
            db.session.add(JobUsage(site_id=site.id, job_id=str(100 + n), account="ehpc_ai_7", user=user,
                                    partition="gpu" if gpu_h else "cpu", state="COMPLETED", start_time=start,
                                    end_time=start + timedelta(hours=1), cpu_seconds=cpu_h * 3600,
                                    gpu_seconds=gpu_h * 3600, alloc_cpus=8,
                                    allocation_id=(gpu_alloc if gpu_h else cpu_alloc).id))
        refresh_usage_summaries()  # as every ingestion does after writing the ledger
        db.session.commit()
        ids = {"grant": grant.id, "site": site.id, "cpu": cpu.id, "cpu_alloc": cpu_alloc.id}
    return {"pi": pi, "member": member, "staff": staff, **ids}


def _client(app, who):
    client = app.test_client()
    sign_in(client, who[1], who[2])
    return client


def test_pi_sees_granted_used_remaining_burn_down_forecast_members_and_jobs(app, granted):
    page = _client(app, granted["pi"]).get(f"/grants/{granted['grant']}").get_data(as_text=True)
    assert "Łódź–Vilnius LLM" in page and "Modele języka – kalbos modeliai" in page
    assert "<svg" in page and "Forecast at the current rate" in page
    # CPU time on the GPU partition counts as GPU-hours there, not as core-hours.
    assert "<td>core-hours</td><td>cpu</td><td>waiting for Slurm</td><td>1,000</td><td>250</td><td>750</td>" in page
    assert "GPU-hours will be exhausted on" in page  # 45 GPU-hours in 30 of 100 days: runs out early
    assert "16.67 % will be left unused at the end" in page  # 250 core-hours in 30 days: 167 left at the end
    assert "pzolk" in page and "rsimk" in page and "102" in page


def test_staff_list_is_sorted_by_risk_and_members_of_other_projects_see_nothing(app, granted, make_user):
    with app.app_context():
        quiet = create_project("quiet-1", "Quiet", db.session.get(User, granted["staff"][0]))
        today = utcnow().date()
        create_grant(quiet, title="Barely used", start_date=today - timedelta(days=200), end_date=today + timedelta(days=100),
                     hours={db.session.get(Partition, granted["cpu"]): 10})
        db.session.commit()
    page = _client(app, granted["staff"]).get("/grants/?sort=risk").get_data(as_text=True)
    # Two thirds through and nothing used is further off pace than slightly ahead of it.
    assert page.index("Barely used") < page.index("Łódź–Vilnius LLM")
    outsider = make_user(Role.PI)
    assert _client(app, outsider).get(f"/grants/{granted['grant']}").status_code == 404
    assert "Łódź" not in _client(app, outsider).get("/grants/").get_data(as_text=True)


def test_top_up_request_approval_raises_the_allocation_and_waits_for_slurm(app, granted):
    pi = _client(app, granted["pi"])
    url = f"/grants/{granted['grant']}"
    token = csrf_token_from(pi.get(url).get_data(as_text=True))
    refused = pi.post(f"{url}/requests", data={"csrf_token": token, "partition_id": granted["cpu"], "hours": "500",
                                               "reason": ""})
    assert refused.status_code == 422 and "Say why the grant needs the change." in refused.get_data(as_text=True)
    member = _client(app, granted["member"])
    assert member.post(f"{url}/requests", data={"csrf_token": csrf_token_from(member.get(url).get_data(as_text=True)),
                                                "reason": "x", "hours": "1"}).status_code == 403
    asked = pi.post(f"{url}/requests", data={"csrf_token": token, "partition_id": granted["cpu"], "hours": "500",
                                             "reason": "Więcej godzin na trening – daugiau valandų"})
    assert asked.status_code == 302
    with app.app_context():
        change = db.session.scalar(select(GrantRequest))
        assert change.reason == "Więcej godzin na trening – daugiau valandų" and change.extra_minutes == 30_000

    staff = _client(app, granted["staff"])
    decided = staff.post(f"/grants/requests/{change.id}/decide",
                         data={"csrf_token": csrf_token_from(staff.get(url).get_data(as_text=True)), "decision": "approve"})
    assert decided.status_code == 302
    with app.app_context():
        assert db.session.get(GrantAllocation, granted["cpu_alloc"]).awarded_minutes == 90_000
        assert db.session.get(GrantRequest, change.id).status is RequestStatus.APPROVED
        # The change was committed and left for the reconciler service: the request ran no Slurm command.
        assert db.session.scalar(select(SyncRun)) is None
    assert "Changes waiting for Slurm" in pi.get(url).get_data(as_text=True)
    assert pi.get(f"/api/grants/{granted['grant']}").get_json()["slurm_changes_pending"] is True


def test_final_report_upload_and_staff_see_who_is_late(app, granted):
    with app.app_context():
        grant = db.session.get(Grant, granted["grant"])
        grant.start_date, grant.end_date = date(2024, 1, 1), date(2025, 1, 1)
        db.session.commit()
    staff = _client(app, granted["staff"])
    assert "late" in staff.get("/grants/reports").get_data(as_text=True)
    pi = _client(app, granted["pi"])
    url = f"/grants/{granted['grant']}"
    token = csrf_token_from(pi.get(url).get_data(as_text=True))
    empty = pi.post(f"{url}/report", data={"csrf_token": token}, content_type="multipart/form-data")
    assert empty.status_code == 422 and "Choose a file to upload." in empty.get_data(as_text=True)
    import io

    sent = pi.post(f"{url}/report", data={"csrf_token": token, "report": (io.BytesIO(b"%PDF-1.4 raport"), "raport-końcowy.pdf")},
                   content_type="multipart/form-data")
    assert sent.status_code == 302
    assert "received" in staff.get("/grants/reports").get_data(as_text=True)
    download = _client(app, granted["member"]).get(f"{url}/report")
    assert download.data == b"%PDF-1.4 raport" and "attachment" in download.headers["Content-Disposition"]


def test_alerts_go_once_per_threshold_and_resource(app, granted, smtp_server):
    with app.app_context():
        sent = send_usage_alerts()  # CPU 25 %, GPU 45 %: none yet
        assert sent == []
        db.session.add(JobUsage(site_id=granted["site"], job_id="200", account="ehpc_ai_7", user="pzolk", partition="cpu",
                                state="COMPLETED", cpu_seconds=660 * 3600, allocation_id=granted["cpu_alloc"]))
        db.session.flush()
        first = send_usage_alerts()  # CPU now 91 %: 50, 75 and 90 in one message
        assert sorted(a.threshold for a in first) == [50, 75, 90]
        assert send_usage_alerts() == []
        commit()  # and then the queued mail goes out
    (message,) = smtp_server.wait_for(1)
    assert "90 % of the core-hours used" in message["Subject"] and "Łódź–Vilnius LLM" in message.get_content()
