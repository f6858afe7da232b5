"""The grants list as staff use it at facility scale: pages, search, filters, CSV, SQL per page."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from portal.clock import utcnow
from portal.extensions import db
from portal.formatting import format_number
from portal.grants.models import Grant, GrantAllocation, JobUsage
from portal.grants.operations import create_grant
from portal.grants.summary import risk
from portal.identity.models import Role, User
from portal.projects.operations import create_project
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site
from tests.conftest import signed_in_client
from tests.listing_support import grant_facility, queries_for


@pytest.fixture
def staff(app, make_user):
    return make_user(Role.STAFF, email="staff@facility.example")


def test_the_number_of_queries_per_page_does_not_grow_with_the_grants(app, staff, tmp_path):
    client = signed_in_client(app, staff)
    grant_facility(app, tmp_path, 10)
    urls = ["/grants/", "/grants/?sort=risk&per_page=200", "/grants/?q=ehpc&status=active&site=Kraków+AI",
            "/grants/?sort=end&page=2&per_page=3", "/grants/export.csv"]
    small = {url: queries_for(app, client, url) for url in urls}
    assert all(n >= 3 for n in small.values()), small  # the page, its count, the grants' allocations ...
    grant_facility(app, tmp_path, 190, first=10)
    large = {url: queries_for(app, client, url) for url in urls[:-1]}
    assert large == {url: small[url] for url in urls[:-1]}
    # The export reads in chunks of 1,000 rows: at 200 rows still one chunk.
    assert queries_for(app, client, "/grants/export.csv") == small["/grants/export.csv"]


def test_pages_search_and_filters_show_what_people_look_for(app, staff, tmp_path):
    grant_facility(app, tmp_path, 60)
    client = signed_in_client(app, staff)
    first = client.get("/grants/?sort=project").get_data(as_text=True)
    assert "1–25 of 60" in first and "Page 1 of 3" in first
    assert "ehpc-00000" in first and "ehpc-00024" in first and "ehpc-00025" not in first
    second = client.get("/grants/?sort=project&page=2").get_data(as_text=True)
    assert "ehpc-00025" in second and "ehpc-00024" not in second
    # Past the last page: the last page, not an error.
    assert "ehpc-00059" in client.get("/grants/?sort=project&page=99").get_data(as_text=True)
    # The PI's name with Lithuanian letters finds the grant; a code finds exactly one.
    found = client.get("/grants/?q=Petrauskienė 13").get_data(as_text=True)
    assert "ehpc-00013" in found and "1–1 of 1" in found
    assert "1–1 of 1" in client.get("/grants/?q=ehpc-00042").get_data(as_text=True)
    vilnius = client.get("/grants/?site=Vilnius+AI&per_page=200").get_data(as_text=True)
    assert "1–30 of 30" in vilnius and "ehpc-00001" in vilnius and "ehpc-00002" not in vilnius
    # Bad arguments fall back to defaults.
    assert client.get("/grants/?page=x&per_page=-4&sort=drop+table&ends_after=yesterday").status_code == 200
    # LIKE wildcards in a search are taken literally.
    assert "No grant matches." in client.get("/grants/?q=%25_").get_data(as_text=True)


def test_risk_order_in_sql_is_the_grant_rule_and_totals_equal_the_ledger(app, staff, tmp_path):
    grant_facility(app, tmp_path, 40)
    client = signed_in_client(app, staff)
    page = client.get("/grants/?sort=risk&per_page=200").get_data(as_text=True)
    shown = [line.split("ehpc-")[1][:5] for line in page.split("<tr><td>")[1:]]
    with app.app_context():
        today = utcnow().date()
        grants = list(db.session.scalars(select(Grant)))
        expected = sorted(grants, key=lambda g: (-round(abs(risk(g, today)), 6), -g.id))
        assert shown == [g.project.code.split("-")[1] for g in expected]
        used = db.session.scalar(select(func.sum(JobUsage.cpu_seconds))) / 3600
        awarded = db.session.scalar(select(func.sum(GrantAllocation.awarded_minutes)).where(
            GrantAllocation.resource_kind == ResourceKind.CPU)) / 60
    totals = page.split('id="grant-totals">')[1].split("</p>")[0]
    assert f"core-hours: {format_number(used)} used of {format_number(awarded)}" in totals


def test_risk_follows_the_calendar_through_the_hourly_pass(app, staff, tmp_path, monkeypatch):
    # Risk is a stored summary (the list sorts by an index); the steady pace moves every day,
    # so the reconciler's hourly pass recomputes it for every grant.
    from portal.grants import summary
    from portal.grants.service import ReconcilerService, Schedule

    with app.app_context():
        site = create_site("Kraków AI", "krakow", slurm_conf=str(tmp_path / "missing.conf"))
        cpu = Partition(name="cpu", resource_kind=ResourceKind.CPU)
        site.partitions.append(cpu)
        today = utcnow().date()
        for code, began in (("ehpc-00001", 10), ("ehpc-00002", 50)):
            pi = User(email=f"{code}@uni.example.pl", name=f"PI {code}")
            db.session.add(pi)
            create_grant(create_project(code, code, pi), title=code, start_date=today - timedelta(days=began),
                         end_date=today + timedelta(days=100 - began), hours={cpu: 1000})
        db.session.commit()
    client = signed_in_client(app, staff)

    def shown() -> list[tuple[str, str]]:
        page = client.get("/grants/").get_data(as_text=True)
        return [(row.split("<")[0], row.split('class="risk">')[1].split("<")[0])
                for row in page.split("<tr><td>")[1:]]

    # Unused: 50 of 100 days gone is 50 % behind a steady pace; 10 days gone, 10 %.
    assert shown() == [("ehpc-00002", "-50 %"), ("ehpc-00001", "-10 %")]
    later = datetime.combine(today + timedelta(days=30), datetime.min.time())
    monkeypatch.setattr(summary, "utcnow", lambda: later)
    assert shown() == [("ehpc-00002", "-50 %"), ("ehpc-00001", "-10 %")]  # as of the last refresh
    service = ReconcilerService(app, Schedule(poll=1, job_states=1e9, outbox=1e9, usage=1e9, full=1e9),
                                echo=lambda line: None)
    with app.app_context():
        service.full_pass()
        db.session.remove()
    assert shown() == [("ehpc-00002", "-80 %"), ("ehpc-00001", "-40 %")]


def test_the_csv_export_is_what_the_filter_shows_with_the_same_totals(app, staff, tmp_path):
    grant_facility(app, tmp_path, 30)
    client = signed_in_client(app, staff)
    with app.app_context():
        grant = db.session.scalar(select(Grant).join(Grant.project).where(Grant.title == "Grant 7"))
        grant.title = "=HYPERLINK(\"http://evil.example\")"
        db.session.commit()
    response = client.get("/grants/export.csv?site=Vilnius+AI&sort=project")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))
    assert [r["Project"] for r in rows] == [f"ehpc-{n:05d}" for n in range(1, 30, 2)]
    assert rows[3]["Grant"].startswith("'=HYPERLINK")  # not a formula when opened
    assert rows[0]["PI"] == "Jūratė Petrauskienė 1"
    page = client.get("/grants/?site=Vilnius+AI").get_data(as_text=True)
    used = sum(float(r["Core-hours used"]) for r in rows)
    awarded = sum(float(r["Core-hours awarded"]) for r in rows)
    totals = page.split('id="grant-totals">')[1].split("</p>")[0]
    assert f"{len(rows)} grants" in totals
    assert f"core-hours: {format_number(used)} used of {format_number(awarded)}" in totals


def test_the_api_lists_grants_a_page_at_a_time_with_the_same_filters(app, staff, tmp_path):
    grant_facility(app, tmp_path, 30)
    client = signed_in_client(app, staff)
    response = client.get("/api/grants?sort=project&per_page=4&page=2&site=Kraków+AI")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert [g["project"] for g in response.get_json()] == ["ehpc-00008", "ehpc-00010", "ehpc-00012", "ehpc-00014"]
    assert response.headers["X-Total-Count"] == "15"
    assert 'page=3' in response.headers["Link"] and 'rel="next"' in response.headers["Link"]
    assert 'rel="prev"' in response.headers["Link"]
    row = response.get_json()[0]
    assert row["pools"][0]["resource"] == "cpu" and "off_pace_percent" in row
    assert client.get("/api/grants?ends_after=not-a-date").status_code == 422
    spec = client.get("/api/openapi.json").get_json()
    names = {p["name"] for p in spec["paths"]["/api/grants"]["get"]["parameters"]}
    assert {"q", "status", "site", "partition", "call", "sort", "page", "per_page"} <= names


def test_projects_list_and_dashboard_stay_one_page_whatever_the_facility(app, staff, tmp_path):
    client = signed_in_client(app, staff)
    grant_facility(app, tmp_path, 10)
    urls = ["/", "/projects/", "/projects/?q=petrauskienė&sort=newest", "/projects/export.csv?site=Vilnius+AI"]
    small = {url: queries_for(app, client, url) for url in urls}
    grant_facility(app, tmp_path, 190, first=10)
    assert {url: queries_for(app, client, url) for url in urls} == small
    dashboard = client.get("/").get_data(as_text=True)
    assert "All 200 projects" in dashboard and dashboard.count('href="/projects/') <= 12
    listed = client.get("/projects/?q=ehpc-0019&sort=code").get_data(as_text=True)
    assert "1–10 of 10" in listed and "ehpc-00190" in listed and "Jūratė Petrauskienė 191" in listed
    exported = client.get("/projects/export.csv?site=Vilnius+AI").get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(exported.lstrip("\ufeff"))))
    assert len(rows) == 100 and all(int(r["Code"][5:]) % 2 == 1 for r in rows)
