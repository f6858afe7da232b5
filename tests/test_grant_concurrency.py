"""Awarded amounts and dates under concurrency, and awards against what the call offered.

The concurrent tests are real: two threads, each with its own app context (its own session and
PostgreSQL connection), let go together by a barrier placed just before the operation, after
each has read the state it acts on — the moment a read-modify-write loses an update or two
checks both pass. Each test below fails on the code before this change (``+=`` on a loaded
allocation, an end date checked without a lock, a request's status checked in Python, no
claim of the proposal, no lock of the call, no offer check).
"""
from __future__ import annotations

import itertools
import re
import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from portal.audit.models import AuditEvent
from portal.calls.models import ReviewWorkflow
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation, GrantRequest, RequestStatus
from portal.grants.operations import GrantError, add_minutes, create_grant, extend_grant
from portal.grants.reconcile import is_pending
from portal.grants.requests import ask_for_change
from portal.identity.models import Role, User
from portal.projects.models import Project
from portal.projects.operations import create_project
from portal.proposals import decisions
from portal.proposals import operations as ops
from portal.proposals.models import Proposal, ProposalEvent, ProposalState
from tests.conftest import csrf_token_from, sign_in
from tests.proposal_support import PROPOSAL_TEXT, make_call, make_site

WAIT = 30  # seconds a thread waits for the other at the barrier before the test fails


def together(*actions):
    """Run each action in its own thread; return their results in order (exceptions re-raised)."""
    results: list = [None] * len(actions)
    errors: list = []

    def run(index, action):
        try:
            results[index] = action()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=2 * WAIT)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
    return results


def meet_before(monkeypatch, modules: tuple, name: str, barrier: threading.Barrier, read=None):
    """Make the first calls of ``name`` in ``modules`` (as many as ``barrier`` has parties) wait
    at it, after ``read(*args)``, the state a caller has seen. Later calls go straight through."""
    calls = itertools.count()

    def waiting_for(original):
        def waiting(*args, **kwargs):
            if next(calls) < barrier.parties:
                if read is not None:
                    read(*args)
                barrier.wait(timeout=WAIT)
            return original(*args, **kwargs)
        return waiting

    for module in modules:
        monkeypatch.setattr(module, name, waiting_for(getattr(module, name)))


def client_of(app, user):
    client = app.test_client()
    sign_in(client, user[1], user[2])
    return client, csrf_token_from(client.get("/").get_data(as_text=True))


def audit_count(action: str) -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action))


# --- grants: top-ups, extensions, the same request decided twice -------------------------------

@pytest.fixture
def granted(app, make_user):
    """A grant of 1,000 core-hours on a site without Slurm, its PI, and two staff."""
    pi = make_user(Role.PI, name="Paweł Żółkiewski")
    staff = [make_user(Role.STAFF, name=f"Staff {n}") for n in (1, 2)]
    with app.app_context():
        cpu, _gpu = make_site()
        project = create_project("ehpc-race-1", "Wyścig – lenktynės", db.session.get(User, pi[0]))
        today = utcnow().date()
        db.session.info["slurm_reconciling"] = True  # as if Slurm had the grant: only the tests' changes mark it
        grant = create_grant(project, title="Race", start_date=today - timedelta(days=10),
                             end_date=today + timedelta(days=100), hours={cpu: 1000})
        db.session.commit()
        db.session.info.pop("slurm_reconciling")
        assert not is_pending({cpu.site_id})
        ids = {"grant": grant.id, "cpu": cpu.id, "site": cpu.site_id, "allocation": grant.allocations[0].id,
               "end": grant.end_date}
    return {"pi": pi, "staff": staff, **ids}


def _ask(app, granted, *, hours: float = 0, days: int = 0) -> int:
    with app.app_context():
        grant = db.session.get(Grant, granted["grant"])
        cpu = grant.allocations[0].partition
        change = ask_for_change(grant, db.session.get(User, granted["pi"][0]), reason="Więcej – daugiau",
                                hours=hours, partition=cpu if hours else None,
                                new_end_date=grant.end_date + timedelta(days=days) if days else None)
        db.session.commit()
        return change.id


def _awarded(app, granted) -> int:
    with app.app_context():
        return db.session.get(GrantAllocation, granted["allocation"]).awarded_minutes


def test_two_top_ups_of_one_allocation_at_once_both_land(app, granted):
    barrier = threading.Barrier(2)
    staff_ids = [s[0] for s in granted["staff"]]

    def top_up(staff_id: int, hours: int):
        with app.app_context():
            allocation = db.session.get(GrantAllocation, granted["allocation"])
            assert allocation.awarded_minutes == 60_000  # both have read the old amount
            barrier.wait(timeout=WAIT)
            add_minutes(allocation, hours * 60, db.session.get(User, staff_id))
            db.session.commit()

    together(lambda: top_up(staff_ids[0], 200), lambda: top_up(staff_ids[1], 300))
    assert _awarded(app, granted) == 60_000 + 200 * 60 + 300 * 60
    with app.app_context():
        assert audit_count("grant.topped_up") == 2
        # The locked top-up is an ordinary change of the allocation: Slurm is told of it.
        assert is_pending({granted["site"]})


def test_two_top_up_requests_approved_at_once_through_the_pages_both_land(app, granted, monkeypatch):
    from portal.grants import views as blueprint

    first, second = _ask(app, granted, hours=200), _ask(app, granted, hours=300)
    barrier = threading.Barrier(2)
    # Each view has loaded the grant and its allocation before either decides.
    meet_before(monkeypatch, (blueprint,), "decide_request", barrier,
                read=lambda change, *_: [a.awarded_minutes for a in change.grant.allocations])
    clients = [client_of(app, s) for s in granted["staff"]]

    def approve(client_token, request_id):
        client, token = client_token
        return client.post(f"/grants/requests/{request_id}/decide",
                           data={"csrf_token": token, "decision": "approve"}).status_code

    codes = together(lambda: approve(clients[0], first), lambda: approve(clients[1], second))
    assert codes == [302, 302]
    assert _awarded(app, granted) == 60_000 + 200 * 60 + 300 * 60
    with app.app_context():
        assert {r.status for r in db.session.scalars(select(GrantRequest))} == {RequestStatus.APPROVED}
        assert audit_count("grant.topped_up") == 2


def test_one_request_decided_twice_at_once_takes_effect_once_and_the_other_gets_409(app, granted, monkeypatch):
    from portal.grants import api as grants_api
    from portal.grants import views as blueprint

    request_id = _ask(app, granted, hours=500)
    barrier = threading.Barrier(2)
    # One staff member on the page, the other through the API.
    meet_before(monkeypatch, (blueprint, grants_api), "decide_request", barrier,
                read=lambda change, *_: [a.awarded_minutes for a in change.grant.allocations])
    (page, page_token), (api, api_token) = (client_of(app, s) for s in granted["staff"])

    def on_the_page():
        return page.post(f"/grants/requests/{request_id}/decide", data={"csrf_token": page_token, "decision": "approve"})

    def through_the_api():
        return api.post(f"/api/grants/requests/{request_id}/decision", json={"approve": True},
                        headers={"X-CSRFToken": api_token})

    answers = together(on_the_page, through_the_api)
    assert sorted(a.status_code for a in answers) in ([200, 409], [302, 409]), [a.status_code for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    message = f"Request {request_id} was already approved; nothing was changed."
    assert message in (loser.get_json()["message"] if loser.is_json else loser.get_data(as_text=True))
    assert _awarded(app, granted) == 60_000 + 500 * 60  # one top-up, not two
    with app.app_context():
        assert audit_count("grant.change_decided") == 1 and audit_count("grant.topped_up") == 1
        assert db.session.get(GrantRequest, request_id).status is RequestStatus.APPROVED

    # Deciding it again later is the same conflict, on either side, and changes nothing.
    refused = page.post(f"/grants/requests/{request_id}/decide", data={"csrf_token": page_token, "decision": "refuse"})
    assert refused.status_code == 409 and message in refused.get_data(as_text=True)
    refused = api.post(f"/api/grants/requests/{request_id}/decision", json={"approve": False},
                       headers={"X-CSRFToken": api_token})
    assert refused.status_code == 409 and refused.get_json()["message"] == message
    assert _awarded(app, granted) == 60_000 + 500 * 60
    with app.app_context():
        assert audit_count("grant.change_decided") == 1
        assert db.session.get(GrantRequest, request_id).status is RequestStatus.APPROVED


def test_two_extensions_at_once_keep_the_later_end(app, granted):
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def extend(days: int, delay: float):
        with app.app_context():
            grant = db.session.get(Grant, granted["grant"])
            assert grant.end_date == granted["end"]  # both have read the old end
            barrier.wait(timeout=WAIT)
            time.sleep(delay)  # the shorter one goes second: checked against that stale end, it would win
            try:
                extend_grant(grant, granted["end"] + timedelta(days=days), db.session.get(User, granted["staff"][0][0]))
            except GrantError as exc:
                db.session.rollback()
                outcomes[days] = str(exc)
            else:
                db.session.commit()
                outcomes[days] = "extended"

    together(lambda: extend(60, 0), lambda: extend(30, 0.5))
    assert outcomes == {60: "extended", 30: "An extension must end later than the grant does now."}
    with app.app_context():
        assert db.session.get(Grant, granted["grant"]).end_date == granted["end"] + timedelta(days=60)
        assert audit_count("grant.extended") == 1


# --- proposals: awards of one proposal, and awards against the call's offer -----------------

@pytest.fixture
def call_world(app, make_user, smtp_server):
    """A technical-only call offering 10,000 GPU-hours, PIs, and two staff."""
    pis = [make_user(Role.PI, name=f"PI {n}") for n in range(3)]
    staff = [make_user(Role.STAFF, name=f"Staff {n}") for n in (1, 2)]
    with app.app_context():
        cpu, gpu = make_site()
        call = make_call(cpu, gpu, code="race-2027", workflow=ReviewWorkflow.TECHNICAL, closes_in=None,
                         offered=(100_000, 10_000), most=(50_000, 10_000))
        db.session.commit()
        ids = {"call": call.id, "cpu": cpu.id, "gpu": gpu.id}
    return {"pis": pis, "staff": staff, **ids}


def assessed(app, world, pi, gpu_hours: int, recommended: int | None = None, title: str = "") -> int:
    """A proposal asking for GPU-hours, submitted, admissible and technically assessed."""
    with app.app_context():
        from portal.calls.models import Call

        call, user = db.session.get(Call, world["call"]), db.session.get(User, pi[0])
        staff = db.session.get(User, world["staff"][0][0])
        proposal = ops.create_proposal(call, user, {**PROPOSAL_TEXT, "title": title or f"Asks {gpu_hours}"},
                                       {world["gpu"]: gpu_hours})
        ops.submit_proposal(proposal, user)
        decisions.check_admissibility(proposal, staff, True)
        decisions.assess_technically(proposal, staff, True, recommended={world["gpu"]: recommended}
                                     if recommended is not None else None)
        db.session.commit()
        return proposal.id


def _award_form(world, hours, **extra):
    return {"start_date": "2027-01-01", "end_date": "2027-12-31", f"award-{world['gpu']}": str(hours), **extra}


def counts(app) -> dict[str, int]:
    """How much of everything an award writes exists: compared before and after a refusal."""
    with app.app_context():
        return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (Grant, GrantAllocation, Project, ProposalEvent, AuditEvent)} | {
            "awarded": db.session.scalar(select(func.count()).select_from(Proposal)
                                         .where(Proposal.state == ProposalState.AWARDED))}


def test_two_staff_award_one_proposal_at_once_one_grant_and_a_409(app, call_world, monkeypatch):
    proposal_id = assessed(app, call_world, call_world["pis"][0], 4000)
    barrier = threading.Barrier(2)
    meet_before(monkeypatch, (decisions,), "award_proposal", barrier)
    (page, page_token), (api, api_token) = (client_of(app, s) for s in call_world["staff"])

    def on_the_page():
        return page.post(f"/proposals/{proposal_id}/award",
                         data={"csrf_token": page_token, **_award_form(call_world, 4000)})

    def through_the_api():
        return api.post(f"/api/proposals/{proposal_id}/award", headers={"X-CSRFToken": api_token}, json={
            "start_date": "2027-01-01", "end_date": "2027-12-31", "hours": {str(call_world["gpu"]): 3000}})

    answers = together(on_the_page, through_the_api)
    assert sorted(a.status_code for a in answers) in ([200, 409], [302, 409]), [a.status_code for a in answers]
    loser = next(a for a in answers if a.status_code == 409)
    text = loser.get_json()["message"] if loser.is_json else loser.get_data(as_text=True)
    assert "Someone else changed this proposal meanwhile: it is now Awarded. Nothing was changed" in text
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Grant)) == 1
        assert db.session.scalar(select(func.count()).select_from(Project)) == 1
        assert audit_count("award.granted") == 1
        proposal = db.session.get(Proposal, proposal_id)
        assert proposal.state is ProposalState.AWARDED and proposal.grant_id is not None
        assert [e.action for e in proposal_events(proposal_id)].count("awarded") == 1


def proposal_events(proposal_id: int) -> list[ProposalEvent]:
    return list(db.session.scalars(select(ProposalEvent).where(ProposalEvent.proposal_id == proposal_id)
                                   .order_by(ProposalEvent.id)))


def test_two_awards_in_one_call_at_once_cannot_both_fit_under_the_offer(app, call_world, monkeypatch):
    first = assessed(app, call_world, call_world["pis"][0], 6000)
    second = assessed(app, call_world, call_world["pis"][1], 6000)
    barrier = threading.Barrier(2)
    meet_before(monkeypatch, (decisions,), "award_proposal", barrier)
    clients = [client_of(app, s) for s in call_world["staff"]]

    def award(client_token, proposal_id):
        client, token = client_token
        return client.post(f"/proposals/{proposal_id}/award",
                           data={"csrf_token": token, **_award_form(call_world, 6000)})

    answers = together(lambda: award(clients[0], first), lambda: award(clients[1], second))
    assert sorted(a.status_code for a in answers) == [302, 422], [a.status_code for a in answers]
    refused = next(a for a in answers if a.status_code == 422).get_data(as_text=True)
    assert "gpu: 10,000 GPU-hours offered, 6,000 already awarded, 6,000 asked: 2,000 over" in refused
    with app.app_context():
        assert db.session.scalar(select(func.sum(GrantAllocation.awarded_minutes))) == 6000 * 60
        assert db.session.scalar(select(func.count()).select_from(Grant)) == 1


def test_an_over_award_is_refused_unless_staff_confirm_it(app, call_world):
    a = assessed(app, call_world, call_world["pis"][0], 5000)
    b = assessed(app, call_world, call_world["pis"][1], 5000)
    c = assessed(app, call_world, call_world["pis"][2], 7000, recommended=6500, title="Third")
    (page, token), (api, api_token) = (client_of(app, s) for s in call_world["staff"])
    for proposal_id in (a, b):  # 5,000 + 5,000: the whole offer, and no more
        assert page.post(f"/proposals/{proposal_id}/award",
                         data={"csrf_token": token, **_award_form(call_world, 5000)}).status_code == 302

    # The committee sees the offer taken, and what the third proposal asks and is recommended.
    committee = page.get(f"/calls/{call_world['call']}/committee").get_data(as_text=True)
    assert '<td class="offered">10,000 GPU-hours</td>' in committee
    assert '<td class="awarded">10,000 GPU-hours</td>' in committee and '<td class="remaining">0 GPU-hours' in committee
    assert re.search(r'7,000\s*<span class="recommended">\(6,500\)</span>', committee)
    demand = {d["partition_id"]: d for d in api.get(f"/api/calls/{call_world['call']}/committee").get_json()["demand"]}
    assert demand[call_world["gpu"]]["awarded_hours"] == 10_000 and demand[call_world["gpu"]]["remaining_hours"] == 0

    over = "gpu: 10,000 GPU-hours offered, 10,000 already awarded, 7,000 asked: 7,000 over"
    before = counts(app)
    refused = page.post(f"/proposals/{c}/award", data={"csrf_token": token, **_award_form(call_world, 7000)})
    assert refused.status_code == 422 and over in refused.get_data(as_text=True)
    refused = api.post(f"/api/proposals/{c}/award", headers={"X-CSRFToken": api_token}, json={
        "start_date": "2027-01-01", "end_date": "2027-12-31", "hours": {str(call_world["gpu"]): 7000}})
    assert refused.status_code == 422
    assert refused.get_json()["errors"][f"award-{call_world['gpu']}"].endswith(over)
    assert "confirm an over-award" in refused.get_json()["message"]
    assert counts(app) == before  # nothing changed

    # Confirmed on the form: awarded, and the over-award is on record.
    confirmed = page.post(f"/proposals/{c}/award",
                          data={"csrf_token": token, **_award_form(call_world, 7000, confirm_over_award="y")})
    assert confirmed.status_code == 302
    with app.app_context():
        proposal = db.session.get(Proposal, c)
        assert proposal.state is ProposalState.AWARDED
        assert proposal.grant.allocations[0].awarded_minutes == 7000 * 60
        event = next(e for e in proposal_events(c) if e.action == "over-award confirmed")
        assert event.staff_only and list(event.changes.values()) == [
            {"offered": 10_000, "already_awarded": 10_000, "asked": 7000, "over": 7000}]
        audit = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "award.granted",
                                                           AuditEvent.target == f"proposal:{c}"))
        assert next(iter(audit.details["over_award"].values()))["over"] == 7000
    demand = {d["partition_id"]: d for d in api.get(f"/api/calls/{call_world['call']}/committee").get_json()["demand"]}
    assert demand[call_world["gpu"]]["remaining_hours"] == -7000
    # The applicants do not see the staff's over-award note.
    pi_client, _ = client_of(app, call_world["pis"][2])
    assert "over-award" not in str(pi_client.get(f"/api/proposals/{c}/history").get_json())
