"""Staff open calls: access modes, tracks, partitions on offer, cut-offs or continuous."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.calls.models import AccessMode, Call, ReviewWorkflow
from portal.calls.operations import DEFAULT_ACCESS_MODES, seed_access_modes
from portal.extensions import db
from portal.identity.models import Role
from tests.conftest import csrf_token_from, sign_in
from tests.proposal_support import field_error, make_site


def test_access_modes_are_seeded_once(app_ctx):
    first = seed_access_modes()
    again = seed_access_modes()
    assert [m.name for m in first] == [m.name for m in again] == [name for name, *_ in DEFAULT_ACCESS_MODES]
    modes = {m.name: m.review_workflow for m in again}
    assert modes["Regular"] is ReviewWorkflow.FULL and modes["Benchmark"] is ReviewWorkflow.TECHNICAL
    assert db.session.scalar(select(func.count()).select_from(AccessMode)) == 7


def staff_client(app, make_user):
    staff = make_user(Role.STAFF)
    with app.app_context():
        cpu, gpu = make_site()
        modes = {m.name: m.id for m in seed_access_modes()}
        db.session.commit()
        ids = {"cpu": cpu.id, "gpu": gpu.id, **modes}
    client = app.test_client()
    sign_in(client, staff[1], staff[2])
    return client, csrf_token_from(client.get("/calls/new").get_data(as_text=True)), ids


def test_staff_open_a_call_in_the_web_pages(app, make_user):
    client, token, ids = staff_client(app, make_user)
    form = {"csrf_token": token, "code": "ai-fast-2027", "title": "Szybka ścieżka AI 2027",
            "access_mode": str(ids["AI Factory Fast Lane"]), "review_workflow": "", "tracks": ["industry", "public_administration"],
            "eligible_countries": "pl, lt", "opens_at": "2027-01-01T00:00", "closes_at": "",
            "allocation_start": "2027-02-01", "allocation_end": "2027-08-01", "min_reviewers": "0",
            f"offer-{ids['gpu']}": "50000", f"max-{ids['gpu']}": "5000"}
    response = client.post("/calls/new", data=form)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Szybka ścieżka AI 2027" in page and "continuous" in page and "PL, LT" in page
    assert "50,000 GPU-hours" in page and "Public administration" in page
    with app.app_context():
        call = db.session.scalar(select(Call))
        assert call.closes_at is None and call.review_workflow is ReviewWorkflow.TECHNICAL
        assert [(o.partition_id, o.offered_minutes, o.max_request_minutes) for o in call.offers] == [
            (ids["gpu"], 50000 * 60, 5000 * 60)]


def test_bad_calls_are_refused_field_by_field(app, make_user):
    client, token, ids = staff_client(app, make_user)
    response = client.post("/calls/new", data={
        "csrf_token": token, "code": "X!", "title": "", "access_mode": str(ids["Regular"]), "review_workflow": "",
        "eligible_countries": "Poland", "opens_at": "2027-03-01T00:00", "closes_at": "2027-02-01T00:00",
        "allocation_start": "2027-06-01", "allocation_end": "2027-01-01",
        f"offer-{ids['gpu']}": "100", f"max-{ids['gpu']}": "500", f"offer-{ids['cpu']}": "-3"})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "lower-case letters" in field_error(html, "code")
    assert field_error(html, "title") == "Give the call a title."
    assert field_error(html, "tracks") == "Choose at least one track."
    assert "Two-letter country codes" in field_error(html, "eligible_countries")
    assert "after the opening" in field_error(html, "closes_at")
    assert "must end after it starts" in field_error(html, "allocation_end")
    assert "cannot exceed the hours offered" in field_error(html, f"max-{ids['gpu']}")
    assert field_error(html, f"offer-{ids['cpu']}") == "Hours cannot be negative."
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Call)) == 0


def test_calls_over_the_api(app, make_user):
    client, token, ids = staff_client(app, make_user)
    headers = {"X-CSRFToken": token}
    assert len(client.get("/api/calls/access-modes").get_json()) == 7
    body = {"code": "reg-2027", "title": "Regular 2027", "access_mode_id": ids["Regular"], "tracks": ["scientific"],
            "opens_at": "2027-01-01T00:00:00", "closes_at": "2027-03-01T12:00:00", "allocation_start": "2027-06-01",
            "allocation_end": "2028-06-01", "offers": {str(ids["cpu"]): {"offered_hours": 1e6, "max_request_hours": 1e5}}}
    created = client.post("/api/calls", json=body, headers=headers)
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["review_workflow"] == "full" and created.get_json()["closes_at"].startswith("2027-03-01T12:00")
    again = client.post("/api/calls", json={**body, "offers": {"999999": {"offered_hours": 1, "max_request_hours": 1}}},
                        headers=headers)
    assert again.status_code == 422
    assert set(again.get_json()["errors"]) == {"code", "offer-999999"}


def test_the_demo_call_is_seeded_once(app_ctx):
    from portal.demo import seed_demo_calls

    cpu, gpu = make_site()
    seed_demo_calls(cpu.site)
    seed_demo_calls(cpu.site)
    calls = db.session.scalars(select(Call)).all()
    assert [c.code for c in calls] == ["demo-fast"]
    assert {o.partition_id for o in calls[0].offers} == {cpu.id, gpu.id}
