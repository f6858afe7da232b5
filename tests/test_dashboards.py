"""The dashboard after sign-in: each role finds its next actions, with links, in a constant number of queries."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.ingest import ingest_records
from portal.grants.models import Grant, GrantRequest
from portal.grants.operations import create_grant
from portal.grants.requests import ask_for_change
from portal.identity.models import Role, User
from portal.jobs.models import SubmittedJob
from portal.projects.operations import add_member, create_project
from portal.proposals.models import Proposal, ProposalState
from portal.reviews.models import ReviewAssignment
from portal.sites.models import Partition
from portal.slurm.types import JobState, UsageRecord
from tests.conftest import sign_in
from tests.listing_support import queries_for
from tests.proposal_support import make_call, review_world


@pytest.fixture
def people(make_user):
    return {"pi": make_user(Role.PI, Role.MEMBER, name="Agnė Pi", email="pi@uni.example.lt"),
            "member": make_user(Role.MEMBER, name="Jonas Member", email="member@uni.example.lt", unix_username="jonasm"),
            "reviewer": make_user(Role.REVIEWER, name="Rita Reviewer", email="rita@review.example"),
            "staff": make_user(Role.STAFF, name="Stasė Staff", email="staff@facility.example")}


def _client(app, who):
    client = app.test_client()
    assert sign_in(client, who[1], who[2]).status_code == 302
    return client


def _grow(pi: User, member: User, reviewer: User, n: int, first: int = 0) -> None:
    """``n`` more of everything every dashboard lists: proposals in each staff step, overdue
    reviews, grants with usage, open requests, late reports, jobs."""
    cpu, gpu = db.session.scalars(select(Partition).order_by(Partition.id)).all()[:2]
    closed = make_call(cpu, gpu, code=f"grow-{first}", min_reviewers=1)
    closed.closes_at = utcnow() - timedelta(days=1)
    long_ago = utcnow() - timedelta(days=40)
    today = utcnow().date()
    for i in range(first, first + n):
        for state in (ProposalState.SUBMITTED, ProposalState.ADMISSIBLE, ProposalState.TECHNICALLY_ASSESSED,
                      ProposalState.IN_REVIEW, ProposalState.REPLIED):
            proposal = Proposal(call=closed, pi=pi, state=state, title=f"{state.value} {i}", submitted_at=long_ago)
            db.session.add(proposal)
            if state is ProposalState.IN_REVIEW:
                db.session.add(ReviewAssignment(proposal=proposal, reviewer=reviewer, assigned_at=long_ago,
                                                has_conflict=False))
        project = create_project(f"grow-{i:04d}", f"Grown {i}", pi)
        add_member(project, member)
        grant = create_grant(project, title=f"Grant {i}", start_date=today - timedelta(days=20),
                             end_date=today + timedelta(days=40), hours={cpu: 100, gpu: 10})
        for allocation in grant.allocations:
            allocation.slurm_account = f"grow{i}_{allocation.partition.name}"
        ended = create_grant(project, title=f"Ended {i}", start_date=today - timedelta(days=300),
                             end_date=today - timedelta(days=90), hours={cpu: 5})
        ended.allocations[0].slurm_account = f"grow{i}_old"
        db.session.flush()
        ask_for_change(grant, pi, reason="more", hours=10, partition=cpu)
        db.session.add(SubmittedJob(site_id=cpu.site_id, partition=cpu, project=project, user=member,
                                    slurm_job_id=str(9000 + i), template="serial", job_name=f"grown-{i}",
                                    unix_user="jonasm", account=f"grow{i}_cpu", workdir="/tmp", script="#!/bin/bash",
                                    parameters={}, max_cost_minutes=10))
        start = datetime.combine(today - timedelta(days=3), datetime.min.time())
        ingest_records(cpu.site, [UsageRecord(job_id=str(50_000 + i), account=f"grow{i}_cpu", user="jonasm",
                                              partition="cpu", state=JobState.COMPLETED, submit_time=start,
                                              start_time=start, end_time=start + timedelta(hours=2),
                                              elapsed_seconds=7200, alloc_cpus=4, cpu_seconds=4 * 7200, gpu_seconds=0,
                                              alloc_tres="cpu=4")])
    db.session.commit()


@pytest.fixture
def world(app, people):
    with app.app_context():
        ids = review_world(people["pi"][0], people["staff"][0], people["reviewer"][0], "invitee@uni.example.lt")
        cpu, gpu = db.session.scalars(select(Partition).order_by(Partition.id)).all()[:2]
        pi, member = db.session.get(User, people["pi"][0]), db.session.get(User, people["member"][0])
        open_call = make_call(cpu, gpu, code="open-2027", closes_in=timedelta(days=12))
        draft = Proposal(call=open_call, pi=pi, title="Draft about Baltic speech")
        db.session.add(draft)
        db.session.commit()
        _grow(pi, member, db.session.get(User, people["reviewer"][0]), 1)
        grant = db.session.scalar(select(Grant).where(Grant.title == "Grant 0"))
        return {**ids, "open_call_id": open_call.id, "draft_id": draft.id, "grant_id": grant.id,
                "request_id": db.session.scalar(select(GrantRequest.id)),
                "ended_id": db.session.scalar(select(Grant.id).where(Grant.title == "Ended 0")),
                "job_id": db.session.scalar(select(SubmittedJob.id))}


def test_pi_sees_open_calls_with_cut_off_proposals_grants_with_burn_down_and_what_waits(app, people, world):
    page = _client(app, people["pi"]).get("/").get_data(as_text=True)
    assert "Principal investigator" in page
    calls = page[page.index('id="open-calls"'):page.index('id="my-proposals"')]
    assert f'href="/calls/{world["open_call_id"]}"' in calls and f'href="/proposals/new/{world["open_call_id"]}"' in calls
    assert "Apply for compute time" in calls and re.search(r"cut-off \d{4}-\d\d-\d\d \d\d:\d\d UTC \(in (1|2) weeks?\)", calls)
    proposals = page[page.index('id="my-proposals"'):page.index('id="waiting"')]
    assert "Draft about Baltic speech" in proposals and f'href="/proposals/{world["draft_id"]}/edit"' in proposals
    assert "In peer review" in proposals and f'href="/proposals/{world["proposal_id"]}"' in proposals
    waiting = page[page.index('id="waiting"'):]
    assert f'href="/grants/{world["grant_id"]}#requests"' in waiting and "waits for staff" in waiting
    assert f'href="/grants/{world["ended_id"]}"' in waiting and "final report overdue since" in waiting
    card = page[page.index(f'id="grant-card-{world["grant_id"]}"'):]
    # 8 core-hours of 100 used (4 CPUs for 2 hours), drawn on the burn-down.
    assert "92 of 100 core-hours left on cpu" in card and "10 of 10 GPU-hours left on gpu" in card
    assert card.index('<svg') < card.index("Ask for a top-up")


def test_member_sees_where_to_run_jobs_and_recent_jobs(app, people, world):
    page = _client(app, people["member"]).get("/").get_data(as_text=True)
    pools = page[page.index('id="usable-grants"'):page.index('id="recent-jobs"')]
    assert "sbatch -A grow0_cpu -p cpu" in pools and "sbatch -A grow0_gpu -p gpu" in pools
    assert "Ended 0" not in pools and "grow0_old" not in pools  # an ended grant runs nothing
    assert 'href="/jobs/"' in pools
    jobs = page[page.index('id="recent-jobs"'):]
    assert f'href="/jobs/{world["job_id"]}"' in jobs and "grown-0" in jobs and "Slurm job 9000" in jobs
    assert 'id="dashboard-staff"' not in page and 'id="reviews-due"' not in page


def test_reviewer_sees_assigned_reviews_with_due_dates(app, people, world):
    page = _client(app, people["reviewer"]).get("/").get_data(as_text=True)
    reviews = page[page.index('id="reviews-due"'):]
    with app.app_context():
        assigned = db.session.get(ReviewAssignment, world["assignment_id"]).assigned_at
    due = (assigned + timedelta(days=21)).strftime("%Y-%m-%d")
    assert f'href="/reviews/{world["assignment_id"]}"' in reviews and due in reviews
    assert "declare conflicts of interest" in reviews
    assert reviews.count('class="overdue"') == 1  # the grown one assigned 40 days ago
    assert 'id="dashboard-staff"' not in page and 'id="open-calls"' not in page


def test_staff_see_the_work_queue_slurm_state_and_outbox(app, people, world):
    page = _client(app, people["staff"]).get("/").get_data(as_text=True)

    def queue(key: str) -> str:
        start = page.index(f'id="queue-{key}"')
        return page[start:page.index("</div>", start)]

    expected = {"admissibility": 1, "technical": 1, "reviewers": 1, "overdue": 1, "release": 0, "decisions": 1,
                "requests": 1, "reports": 1}
    for key, count in expected.items():
        assert f'<span class="count">{count}</span>' in queue(key), key
    assert "submitted 0" in queue("admissibility") and "technically_assessed 0" in queue("reviewers")
    assert "Rita Reviewer" in queue("overdue") and f'href="/grants/{world["grant_id"]}"' in queue("requests")
    assert f'href="/grants/{world["ended_id"]}"' in queue("reports")
    assert "Żywiec AI Factory: changes waiting for Slurm: 1" in page and 'href="/slurm/status"' in page
    assert "E-mails waiting to be sent:" in page[page.index('id="outbox"'):]


def test_every_dashboard_runs_the_same_queries_with_ten_times_the_data(app, people, world):
    clients = {role: _client(app, who) for role, who in people.items()}
    small = {role: queries_for(app, client, "/") for role, client in clients.items()}
    with app.app_context():
        users = {role: db.session.get(User, who[0]) for role, who in people.items()}
        _grow(users["pi"], users["member"], users["reviewer"], 12, first=1)
    assert {role: queries_for(app, client, "/") for role, client in clients.items()} == small
    staff = clients["staff"].get("/").get_data(as_text=True)
    assert staff.count('<span class="count">13</span>') == 7  # every queue but the releases
    assert "and 8 more" in staff


def test_caught_mail_page_is_for_staff_only(app, people):
    assert _client(app, people["pi"]).get("/mail/caught").status_code == 403
    page = _client(app, people["staff"]).get("/mail/caught")
    assert page.status_code == 200 and "No mail caught yet." in page.get_data(as_text=True)


def test_dashboards_of_a_generated_facility_run_the_same_queries_at_ten_times_its_size(app):
    """``flask demo generate``'s facility (grants with usage, expired grants with late reports):
    staff, a PI and a member see the same number of queries at 20 and at 220 projects."""
    from portal.demo_facility import PASSWORD, STAFF_EMAIL, generate_facility
    from portal.projects.models import Membership, ProjectRole

    with app.app_context():
        generate_facility(20, 5, seed=1)
        db.session.commit()
        emails = {"staff": STAFF_EMAIL}
        for role in (ProjectRole.PI, ProjectRole.MEMBER):
            emails[role.value] = db.session.scalar(select(User.email).join(Membership, Membership.user_id == User.id)
                                                   .where(Membership.role == role).order_by(User.id).limit(1))
    clients = {}
    for who, email in emails.items():
        clients[who] = app.test_client()
        assert sign_in(clients[who], email, PASSWORD).status_code == 302
    small = {who: queries_for(app, client, "/") for who, client in clients.items()}
    with app.app_context():
        generate_facility(200, 5, seed=2, force=True)
        db.session.commit()
    assert {who: queries_for(app, client, "/") for who, client in clients.items()} == small
    staff = clients["staff"].get("/").get_data(as_text=True)
    late = re.search(r'id="queue-reports"><h3>[^<]+<span class="count">(\d+)</span>', staff)
    assert late and int(late.group(1)) > 5 and staff.count('<p><a href="/grants/') <= 10  # counted, not listed
