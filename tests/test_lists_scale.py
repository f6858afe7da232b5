"""Proposals, calls, reviews, the audit log and benchmark runs at facility scale: pages, search,
filters, CSV export, the paginated API, and a number of SQL queries per page that does not grow."""
from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.audit.models import AuditEvent
from portal.benchmarks.models import BenchmarkMetric, BenchmarkRun, MetricStatus, Verdict
from portal.calls.models import AccessMode, Call, CallPartition, ReviewWorkflow
from portal.calls.operations import seed_access_modes
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import Role, User
from portal.proposals.models import Proposal, ProposalRequest, ProposalState
from portal.reviews.models import ReviewAssignment
from portal.sites.models import Partition
from tests.conftest import sign_in
from tests.listing_support import queries_for
from tests.proposal_support import make_call, make_site

STATES = (ProposalState.DRAFT, ProposalState.SUBMITTED, ProposalState.IN_REVIEW, ProposalState.AWARDED)


def _client(app, who):
    client = app.test_client()
    sign_in(client, who[1], who[2])
    return client


def _rows(response) -> list[dict]:
    assert response.status_code == 200 and response.mimetype == "text/csv", response.status_code
    assert "attachment" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


@pytest.fixture
def staff(make_user):
    return make_user(Role.STAFF, email="staff@facility.example")


@pytest.fixture
def pi(make_user):
    return make_user(Role.PI, name="Rūta Žemaitytė", email="ruta@uni.example.lt")


@pytest.fixture
def reviewer(make_user):
    return make_user(Role.REVIEWER, name="Reviewer Rex", email="rex@review.example")


def _calls(app, count: int, *, first: int = 0) -> None:
    """``count`` calls (every third closed, every fifth not yet open) with a partition on offer."""
    with app.app_context():
        if db.session.scalar(select(Partition.id)) is None:
            make_site()
            seed_access_modes()
        partition = db.session.scalar(select(Partition).order_by(Partition.id))
        modes = list(db.session.scalars(select(AccessMode).order_by(AccessMode.name)))
        now = utcnow()
        for n in range(first, first + count):
            opens = now + timedelta(days=3) if n % 5 == 4 else now - timedelta(days=20 + n % 7)
            closes = None if n % 4 == 1 else (now - timedelta(days=1) if n % 3 == 0 and n % 5 != 4
                                             else opens + timedelta(days=60))
            call = Call(code=f"c{n:04d}", title=f"Kvietimas {n}", access_mode=modes[n % len(modes)],
                        review_workflow=ReviewWorkflow.FULL, tracks="scientific", opens_at=opens, closes_at=closes,
                        allocation_start=date(2027, 1, 1), allocation_end=date(2028, 1, 1))
            call.offers.append(CallPartition(partition=partition, offered_minutes=60_000, max_request_minutes=6_000))
            db.session.add(call)
        db.session.commit()


def _proposals(app, pi_id: int, count: int, *, first: int = 0, reviewer_id: int | None = None) -> None:
    """``count`` proposals in two calls: half the PI's own, half another PI's; the reviewer is
    assigned to every one (a third of the assignments submitted, every tenth a declared conflict)."""
    with app.app_context():
        calls = list(db.session.scalars(select(Call).where(Call.code.in_(("reg-a", "reg-b"))).order_by(Call.code)))
        if not calls:
            cpu, gpu = make_site()
            calls = [make_call(cpu, gpu, code="reg-a"), make_call(cpu, gpu, code="reg-b")]
        gpu = calls[0].offers[1].partition
        other = db.session.scalar(select(User).where(User.email == "other@uni.example.pl"))
        if other is None:
            other = User(email="other@uni.example.pl", name="Zbigniew Łęcki")
            db.session.add(other)
        pi = db.session.get(User, pi_id)
        start = datetime(2026, 3, 1, 12, 0)
        for n in range(first, first + count):
            state = STATES[n % len(STATES)]
            proposal = Proposal(call=calls[n % 2], pi=pi if n % 2 == 0 else other, state=state, title=f"Tyrimas {n:04d}",
                                track="scientific", created_at=start, updated_at=start,
                                submitted_at=None if state is ProposalState.DRAFT else start + timedelta(days=n))
            proposal.requests.append(ProposalRequest(partition=gpu, requested_minutes=6000))
            db.session.add(proposal)
            if reviewer_id:
                db.session.add(ReviewAssignment(
                    proposal=proposal, reviewer_id=reviewer_id, assigned_at=start + timedelta(hours=n),
                    has_conflict=True if n % 10 == 9 else (None if n % 3 == 0 else False),
                    **({"score_excellence": 4, "score_impact": 3, "score_implementation": 5,
                        "submitted_at": start + timedelta(days=n)} if n % 3 == 1 and n % 10 != 9 else {})))
        db.session.commit()


def _events(app, count: int, *, first: int = 0) -> None:
    with app.app_context():
        users = list(db.session.scalars(select(User).order_by(User.id)))
        start = datetime(2026, 1, 1, 8, 0)
        db.session.add_all(AuditEvent(
            action=("auth.sign_in", "award.granted", "slurm.changed")[n % 3], created_at=start + timedelta(hours=n),
            actor_id=users[n % len(users)].id if n % 3 != 2 else None, actor_label="" if n % 3 != 2 else "reconciler",
            target=f"proposal:{n}", details={"n": n}, ip_address="192.0.2.1") for n in range(first, first + count))
        db.session.commit()


def _runs(app, count: int, *, first: int = 0) -> None:
    with app.app_context():
        start = datetime(2026, 2, 1, 6, 0)
        for n in range(first, first + count):
            failed = n % 4 == 0
            run = BenchmarkRun(system=("lumi-pl", "vega-lt")[n % 2], partition=("cpu", "gpu")[n % 3 % 2],
                               measured_at=start + timedelta(hours=n), array="numpy (host)", nodes=2, ranks=64,
                               verdict=Verdict.FAILED if failed else Verdict.PASSED, reference_key="lumi", document={})
            run.metrics = [BenchmarkMetric(key=f"{b}/bandwidth", benchmark=b, metric="bandwidth", unit="GB/s",
                                           mean=10.0, status=MetricStatus.FAIL if failed else MetricStatus.PASS)
                           for b in (("pingpong", "allreduce") if n % 5 else ("stream",))]
            db.session.add(run)
        db.session.commit()


def _constant(app, client, urls, grow) -> None:
    small = {url: queries_for(app, client, url) for url in urls}
    grow()
    large = {url: queries_for(app, client, url) for url in urls}
    assert large == small


# --- proposals -------------------------------------------------------------------------------

def test_proposals_queries_per_page_do_not_grow(app, staff, pi):
    _proposals(app, pi[0], 10)
    urls = ["/proposals/", "/proposals/?sort=submitted&per_page=200", "/proposals/?q=tyrimas&state=submitted",
            "/proposals/export.csv", "/api/proposals", "/api/proposals?per_page=200&sort=title"]
    _constant(app, _client(app, staff), urls, lambda: _proposals(app, pi[0], 190, first=10))
    _constant(app, _client(app, pi), ["/proposals/", "/api/proposals?per_page=200"],
              lambda: _proposals(app, pi[0], 20, first=200))


def test_proposals_search_filters_pages_and_who_sees_what(app, staff, pi):
    _proposals(app, pi[0], 60)
    client = _client(app, staff)
    first = client.get("/proposals/?sort=title").get_data(as_text=True)
    assert "1–25 of 60" in first and "Tyrimas 0000" in first and "Tyrimas 0025" not in first
    assert "Tyrimas 0025" in client.get("/proposals/?sort=title&page=2").get_data(as_text=True)
    found = client.get("/proposals/?q=Łęcki&state=awarded&per_page=200").get_data(as_text=True)
    # Another PI's (odd) awarded proposals: 3, 7, 11, ... 59.
    assert "1–15 of 15" in found and "Tyrimas 0003" in found and "Tyrimas 0002" not in found
    assert "1–25 of 30" in client.get("/proposals/?call=reg-b").get_data(as_text=True)
    dated = client.get("/proposals/?submitted_after=2026-03-05&submitted_before=2026-03-10").get_data(as_text=True)
    # Submitted on days 4..9 after 1 March, drafts (n % 4 == 0) never: 5, 6, 7, 9.
    assert "1–4 of 4" in dated
    assert client.get("/proposals/?page=x&per_page=-1&sort=drop&submitted_after=yesterday").status_code == 200
    assert "No proposal matches." in client.get("/proposals/?q=%25_").get_data(as_text=True)
    # The PI sees only their own, on the page, in the CSV and in the API.
    mine = _client(app, pi)
    assert "1–25 of 30" in mine.get("/proposals/").get_data(as_text=True)
    assert {r["PI"] for r in _rows(mine.get("/proposals/export.csv"))} == {"Rūta Žemaitytė"}
    assert mine.get("/api/proposals").headers["X-Total-Count"] == "30"


def test_proposals_csv_and_api_follow_the_filter(app, staff, pi):
    _proposals(app, pi[0], 40)
    client = _client(app, staff)
    rows = _rows(client.get("/proposals/export.csv?call=reg-a&sort=title"))
    assert [r["Title"] for r in rows] == [f"Tyrimas {n:04d}" for n in range(0, 40, 2)]
    assert rows[0]["Call"] == "reg-a" and rows[0]["PI e-mail"] == "ruta@uni.example.lt"
    response = client.get("/api/proposals?call=reg-a&sort=title&per_page=5&page=2")
    assert [p["title"] for p in response.get_json()] == [f"Tyrimas {n:04d}" for n in range(10, 20, 2)]
    assert response.headers["X-Total-Count"] == "20" and 'rel="next"' in response.headers["Link"]
    assert 'rel="prev"' in response.headers["Link"] and "page=3" in response.headers["Link"]
    assert client.get("/api/proposals?submitted_after=nope").status_code == 422
    spec = client.get("/api/openapi.json").get_json()
    get = spec["paths"]["/api/proposals"]["get"]
    assert {"q", "state", "call", "submitted_after", "sort", "page", "per_page"} <= {p["name"] for p in get["parameters"]}
    assert "X-Total-Count" in get["responses"]["200"]["headers"]


# --- calls -----------------------------------------------------------------------------------

def test_calls_queries_per_page_do_not_grow(app, staff, pi):
    _calls(app, 10)
    urls = ["/calls/", "/calls/?sort=closing&per_page=200&status=open", "/calls/export.csv", "/api/calls?per_page=200"]
    _constant(app, _client(app, staff), urls, lambda: _calls(app, 190, first=10))


def test_calls_search_filter_csv_and_api(app, staff, pi):
    _calls(app, 40)
    client, applicant = _client(app, staff), _client(app, pi)
    assert "1–25 of 40" in client.get("/calls/").get_data(as_text=True)
    # Calls not yet open (n % 5 == 4: 8 of them) stay hidden from everyone but staff.
    assert "1–25 of 32" in applicant.get("/calls/").get_data(as_text=True)
    assert "No call matches." in applicant.get("/calls/?status=upcoming").get_data(as_text=True)
    assert "1–8 of 8" in client.get("/calls/?status=upcoming").get_data(as_text=True)
    assert "1–1 of 1" in client.get("/calls/?q=c0017").get_data(as_text=True)
    with app.app_context():
        mode = db.session.scalar(select(AccessMode.name).order_by(AccessMode.name))
        modes = db.session.scalar(select(db.func.count(AccessMode.id)))
    expected = len(range(0, 40, modes))
    rows = _rows(client.get(f"/calls/export.csv?mode={mode}&sort=code"))
    assert [r["Code"] for r in rows] == [f"c{n:04d}" for n in range(0, 40, modes)] and len(rows) == expected
    now = utcnow()
    statuses = {r["Code"]: r["Status"] for r in _rows(applicant.get("/calls/export.csv?per_page=200"))}
    assert len(statuses) == 32 and "upcoming" not in statuses.values()
    assert statuses == {r["Code"]: r["Status"] for r in _rows(applicant.get("/calls/export.csv"))}
    open_codes = {r["Code"] for r in _rows(applicant.get("/calls/export.csv?status=open"))}
    with app.app_context():
        assert open_codes == {c.code for c in db.session.scalars(select(Call)) if c.accepts_submissions(now)}
    response = applicant.get("/api/calls?sort=code&per_page=10")
    assert response.headers["X-Total-Count"] == "32" and len(response.get_json()) == 10
    assert response.get_json()[0]["offers"][0]["offered_hours"] == 1000
    spec = client.get("/api/openapi.json").get_json()
    assert {"q", "mode", "status", "sort", "page", "per_page"} <= {
        p["name"] for p in spec["paths"]["/api/calls"]["get"]["parameters"]}


# --- reviews ---------------------------------------------------------------------------------

def test_reviews_queries_per_page_do_not_grow(app, pi, reviewer):
    _proposals(app, pi[0], 10, reviewer_id=reviewer[0])
    urls = ["/reviews/", "/reviews/?per_page=200&status=submitted", "/reviews/export.csv",
            "/api/reviews?per_page=200"]
    _constant(app, _client(app, reviewer), urls, lambda: _proposals(app, pi[0], 190, first=10,
                                                                    reviewer_id=reviewer[0]))


def test_reviews_list_filters_and_never_shows_conflicts(app, pi, reviewer):
    _proposals(app, pi[0], 60, reviewer_id=reviewer[0])
    client = _client(app, reviewer)
    # 6 of the 60 carry a declared conflict (n % 10 == 9): never listed.
    assert "1–25 of 54" in client.get("/reviews/").get_data(as_text=True)
    rows = _rows(client.get("/reviews/export.csv?sort=oldest"))
    assert len(rows) == 54 and not any(r["Title"].endswith("9") and int(r["Title"][-4:]) % 10 == 9 for r in rows)
    assert {r["Status"] for r in _rows(client.get("/reviews/export.csv?status=submitted"))} == {"submitted"}
    assert "1–1 of 1" in client.get("/reviews/?q=Tyrimas 0042").get_data(as_text=True)
    assert client.get("/api/reviews?call=reg-b").headers["X-Total-Count"] == str(
        len(_rows(client.get("/reviews/export.csv?call=reg-b"))))


# --- audit log -------------------------------------------------------------------------------

def test_audit_queries_per_page_do_not_grow(app, staff, pi):
    _events(app, 10)
    urls = ["/audit", "/audit?per_page=200&sort=oldest", "/audit?action=award.granted&actor=rūta",
            "/audit/export.csv"]
    _constant(app, _client(app, staff), urls, lambda: _events(app, 190, first=10))


def test_audit_search_filters_and_csv(app, staff, pi):
    _events(app, 90)
    client = _client(app, staff)
    page = client.get("/audit").get_data(as_text=True)
    assert "Page 1 of" in page and "proposal:89" in page and "proposal:0<" not in page
    granted = _rows(client.get("/audit/export.csv?action=award.granted"))
    assert len(granted) == 30 and {r["Action"] for r in granted} == {"award.granted"}
    assert len(_rows(client.get("/audit/export.csv?q=reconciler"))) == 30
    assert [r["Target"] for r in _rows(client.get("/audit/export.csv?target=proposal:4&sort=oldest"))] == [
        "proposal:4"] + [f"proposal:{n}" for n in range(40, 50)]
    # 1 January 2026 from 08:00, an event an hour: 16 on the first day, 24 on the second.
    assert len(_rows(client.get("/audit/export.csv?since=2026-01-02&until=2026-01-02"))) == 24
    assert client.get("/audit?since=not-a-date&per_page=x").status_code == 200
    assert client.get("/audit/export.csv?actor=%25").status_code == 200


# --- benchmark runs --------------------------------------------------------------------------

def test_benchmark_runs_queries_per_page_do_not_grow(app, staff, pi):
    _runs(app, 10)
    urls = ["/benchmarks/", "/benchmarks/?per_page=200&verdict=failed", "/benchmarks/?benchmark=stream&q=lumi",
            "/benchmarks/export.csv", "/api/benchmarks/runs?per_page=200"]
    _constant(app, _client(app, pi), urls, lambda: _runs(app, 190, first=10))


def test_benchmark_runs_search_filters_csv_and_api(app, staff, pi):
    _runs(app, 60)
    client = _client(app, pi)
    page = client.get("/benchmarks/").get_data(as_text=True)
    assert "1–25 of 60" in page and 'id="latest"' in page
    failed = _rows(client.get("/benchmarks/export.csv?verdict=failed"))
    assert len(failed) == 15 and all(r["Failed metrics"] for r in failed)
    assert len(_rows(client.get("/benchmarks/export.csv?benchmark=stream"))) == 12
    assert len(_rows(client.get("/benchmarks/export.csv?system=vega-lt&since=2026-02-02"))) == 21
    response = client.get("/api/benchmarks/runs?system=lumi-pl&per_page=7")
    assert response.headers["X-Total-Count"] == "30" and len(response.get_json()) == 7
    assert 'rel="next"' in response.headers["Link"]
    assert client.get("/api/benchmarks/runs?since=never").status_code == 422
    spec = client.get("/api/openapi.json").get_json()
    assert {"q", "system", "partition", "benchmark", "verdict", "since", "until", "page", "per_page"} <= {
        p["name"] for p in spec["paths"]["/api/benchmarks/runs"]["get"]["parameters"]}
