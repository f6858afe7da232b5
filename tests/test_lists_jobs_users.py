"""The jobs list and the staff's users list at facility scale: pages, search, filters, CSV, SQL per page."""
from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from portal.extensions import db
from portal.identity.models import Role, RoleGrant, User
from portal.jobs.models import SubmittedJob
from portal.projects.models import Project
from portal.projects.operations import add_member, create_project
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site
from tests.conftest import signed_in_client
from tests.listing_support import queries_for

STATES = ("PENDING", "RUNNING", "COMPLETED", "FAILED")
DAY = datetime(2031, 3, 1, 12, 0)


@pytest.fixture
def people(app, make_user):
    """Staff, a member of project jobs-a, a member of no project; projects jobs-a and jobs-b on two sites."""
    staff = make_user(Role.STAFF, name="Staff Person", email="staff@facility.example")
    member = make_user(Role.MEMBER, name="Rūta Žukauskienė", email="ruta@uni.example.lt", unix_username="ruta")
    outsider = make_user(Role.MEMBER, name="Outsider", email="out@uni.example.pl")
    with app.app_context():
        for name in ("Kraków AI", "Vilnius AI"):
            site = create_site(name, name.split()[0].lower(), slurm_conf="/nonexistent/slurm.conf")
            site.partitions += [Partition(name="cpu", resource_kind=ResourceKind.CPU),
                                Partition(name="gpu", resource_kind=ResourceKind.GPU, gpus_per_node=4)]
        a = create_project("jobs-a", "Project A", db.session.get(User, member[0]))
        b = create_project("jobs-b", "Project B", db.session.get(User, staff[0]))
        add_member(b, db.session.get(User, staff[0]))
        db.session.commit()
        assert a.id and b.id
    return {"staff": staff, "member": member, "outsider": outsider}


def _jobs(app, count: int, *, first: int = 0) -> None:
    """``count`` jobs written with one bulk insert: job n in jobs-a when n is even (by Rūta), else jobs-b."""
    with app.app_context():
        projects = {p.code: p.id for p in db.session.scalars(select(Project))}
        partitions = list(db.session.scalars(select(Partition).order_by(Partition.id)))
        users = {u.email: u for u in db.session.scalars(select(User))}
        rows = []
        for n in range(first, first + count):
            partition = partitions[n % len(partitions)]
            user = users["ruta@uni.example.lt"] if n % 2 == 0 else users["staff@facility.example"]
            rows.append({"site_id": partition.site_id, "partition_id": partition.id,
                         "project_id": projects["jobs-a" if n % 2 == 0 else "jobs-b"], "user_id": user.id,
                         "slurm_job_id": str(50_000 + n), "template": "serial", "job_name": f"run-{n:04d}",
                         "unix_user": user.unix_username or "staff", "account": "acct", "workdir": f"/w/{n}",
                         "script": "#!/bin/sh\n", "parameters": {}, "max_cost_minutes": 60,
                         "submitted_at": DAY + timedelta(days=n % 10), "last_state": STATES[n % 4]})
        db.session.execute(insert(SubmittedJob), rows)
        db.session.commit()


def _csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def test_the_number_of_queries_per_jobs_page_does_not_grow_with_the_jobs(app, people):
    staff, member = signed_in_client(app, people["staff"]), signed_in_client(app, people["member"])
    _jobs(app, 10)
    urls = ["/jobs/", "/jobs/?per_page=200&sort=project", "/jobs/?q=run&state=RUNNING&partition=cpu",
            "/jobs/?sort=state&page=2&per_page=3&submitted_after=2031-03-02", "/jobs/export.csv",
            "/api/jobs?per_page=200", "/api/jobs?project=jobs-a&sort=oldest"]
    small = {(who, url): queries_for(app, client, url) for who, client in (("staff", staff), ("member", member))
             for url in urls}
    _jobs(app, 190, first=10)
    large = {(who, url): queries_for(app, client, url) for who, client in (("staff", staff), ("member", member))
             for url in urls}
    assert large == small


def test_jobs_search_filters_pages_and_who_sees_which(app, people):
    _jobs(app, 60)
    staff = signed_in_client(app, people["staff"])
    first = staff.get("/jobs/?sort=oldest").get_data(as_text=True)
    assert "1–25 of 60" in first and "run-0000" in first and "run-0024" in first and "run-0025" not in first
    assert "run-0025" in staff.get("/jobs/?sort=oldest&page=2").get_data(as_text=True)
    # By Slurm job id, by name, by the submitter's name with Lithuanian letters, by Unix name.
    assert "1–1 of 1" in staff.get("/jobs/?q=50042").get_data(as_text=True)
    assert "1–1 of 1" in staff.get("/jobs/?q=run-0007").get_data(as_text=True)
    assert "1–30 of 30" in staff.get("/jobs/?q=Žukauskienė&per_page=200").get_data(as_text=True)
    assert "1–30 of 30" in staff.get("/jobs/?q=RUTA&per_page=200").get_data(as_text=True)
    assert "No job matches." in staff.get("/jobs/?q=%25_").get_data(as_text=True)
    # Filters: state, project, partition, days submitted (both ends included).
    assert "1–15 of 15" in staff.get("/jobs/?state=RUNNING").get_data(as_text=True)
    assert "1–30 of 30" in staff.get("/jobs/?project=jobs-b&per_page=200").get_data(as_text=True)
    assert "1–30 of 30" in staff.get("/jobs/?partition=gpu&per_page=200").get_data(as_text=True)
    assert "1–12 of 12" in staff.get("/jobs/?submitted_after=2031-03-02&submitted_before=2031-03-03").get_data(
        as_text=True)
    assert staff.get("/jobs/?page=x&per_page=0&sort=drop&submitted_after=soon").status_code == 200
    # A member sees the jobs of their own project only; an outsider sees none.
    member = signed_in_client(app, people["member"])
    mine = member.get("/jobs/?per_page=200").get_data(as_text=True)
    assert "1–30 of 30" in mine and "run-0002" in mine and "run-0001" not in mine
    assert "No job matches." in member.get("/jobs/?project=jobs-b&per_page=200").get_data(as_text=True)
    outsider = signed_in_client(app, people["outsider"])
    assert "No jobs yet." in outsider.get("/jobs/").get_data(as_text=True)
    assert outsider.get("/api/jobs").get_json() == []
    assert _csv(outsider.get("/jobs/export.csv")) == []


def test_jobs_api_pages_with_headers_and_csv_exports_what_the_filter_shows(app, people):
    _jobs(app, 60)
    staff = signed_in_client(app, people["staff"])
    response = staff.get("/api/jobs?state=FAILED&per_page=5&sort=oldest")
    assert response.status_code == 200 and response.headers["X-Total-Count"] == "15"
    assert [j["job_name"] for j in response.get_json()] == [f"run-{n:04d}" for n in range(3, 23, 4)]
    assert 'rel="next"' in response.headers["Link"] and "page=2" in response.headers["Link"]
    assert 'rel="prev"' not in response.headers["Link"]
    last = staff.get("/api/jobs?state=FAILED&per_page=5&sort=oldest&page=3")
    assert 'rel="prev"' in last.headers["Link"] and 'rel="next"' not in last.headers["Link"]
    member = signed_in_client(app, people["member"])
    assert member.get("/api/jobs").headers["X-Total-Count"] == "30"
    assert member.get("/api/jobs?q=ruta&project=jobs-b").get_json() == []
    rows = _csv(staff.get("/jobs/export.csv?partition=cpu&sort=oldest&project=jobs-a"))
    shown = staff.get("/jobs/?partition=cpu&sort=oldest&project=jobs-a&per_page=200").get_data(as_text=True)
    assert [r["Name"] for r in rows] == [f"run-{n:04d}" for n in range(0, 60, 2)]  # cpu on both sites
    assert all(f">{r['Name']}<" in shown for r in rows) and "1–30 of 30" in shown
    assert {r["Project"] for r in rows} == {"jobs-a"} and {r["Submitted by"] for r in rows} == {"Rūta Žukauskienė"}
    openapi = staff.get("/api/openapi.json").get_json()
    parameters = {p["name"] for p in openapi["paths"]["/api/jobs"]["get"]["parameters"]}
    assert {"q", "state", "project", "partition", "submitted_after", "submitted_before", "page", "per_page"} <= parameters


def _accounts(app, count: int, *, first: int = 0) -> None:
    """``count`` accounts, every third disabled, every second a PI, in Poland or Lithuania (bulk inserts)."""
    with app.app_context():
        rows = [{"email": f"person{n:04d}@uni.example", "name": f"Person {n:04d}", "affiliation": f"Uni {n % 5}",
                 "country": "PL" if n % 2 else "LT", "unix_username": f"p{n:04d}", "active": n % 3 != 0}
                for n in range(first, first + count)]
        ids = db.session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), rows).all()
        db.session.execute(insert(RoleGrant), [{"user_id": i, "role": Role.PI if n % 2 == 0 else Role.MEMBER}
                                               for n, i in zip(range(first, first + count), ids)])
        db.session.commit()


def test_the_number_of_queries_per_users_page_does_not_grow_with_the_accounts(app, people):
    staff = signed_in_client(app, people["staff"])
    _accounts(app, 10)
    urls = ["/admin/users", "/admin/users?per_page=200&sort=newest", "/admin/users?q=person&role=pi&status=active",
            "/admin/users?country=PL&page=2&per_page=3", "/admin/users/export.csv"]
    small = {url: queries_for(app, staff, url) for url in urls}
    _accounts(app, 190, first=10)
    assert {url: queries_for(app, staff, url) for url in urls} == small


def test_users_search_filters_and_csv(app, people):
    _accounts(app, 60)
    staff = signed_in_client(app, people["staff"])
    first = staff.get("/admin/users").get_data(as_text=True)
    assert "1–25 of 63" in first and "Page 1 of 3" in first
    assert "1–1 of 1" in staff.get("/admin/users?q=p0042").get_data(as_text=True)  # Unix name
    assert "1–1 of 1" in staff.get("/admin/users?q=Žukauskienė").get_data(as_text=True)
    assert "1–1 of 1" in staff.get("/admin/users?q=PERSON0007@").get_data(as_text=True)  # e-mail
    assert "1–12 of 12" in staff.get("/admin/users?q=uni 3").get_data(as_text=True)  # organisation
    assert "No user matches." in staff.get("/admin/users?q=%25_").get_data(as_text=True)
    assert "1–20 of 20" in staff.get("/admin/users?status=disabled").get_data(as_text=True)
    assert "1–30 of 30" in staff.get("/admin/users?country=PL&per_page=200").get_data(as_text=True)
    assert "1–1 of 1" in staff.get("/admin/users?role=staff").get_data(as_text=True)
    assert staff.get("/admin/users?page=-1&per_page=x&sort=evil&status=maybe").status_code == 200
    rows = _csv(staff.get("/admin/users/export.csv?role=pi&status=active&country=lt&sort=email"))
    expected = [f"person{n:04d}@uni.example" for n in range(60) if n % 2 == 0 and n % 3 != 0]
    assert [r["E-mail"] for r in rows] == expected
    assert {(r["Country"], r["Roles"], r["Account"]) for r in rows} == {("LT", "pi", "active")}
    shown = staff.get("/admin/users?role=pi&status=active&country=LT&per_page=200").get_data(as_text=True)
    assert f"1–{len(expected)} of {len(expected)}" in shown and all(e in shown for e in expected)
    # Not for people who are not staff: neither the list nor its export.
    member = signed_in_client(app, people["member"])
    assert member.get("/admin/users").status_code in (302, 403)
    assert member.get("/admin/users/export.csv").status_code in (302, 403)
