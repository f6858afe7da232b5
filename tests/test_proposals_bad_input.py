"""Bad input gets a clear message next to its field, and changes nothing."""
from __future__ import annotations

import io
from datetime import timedelta

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import Role, User
from portal.proposals import operations as ops
from portal.proposals.models import Proposal, ProposalEvent, ProposalState
from tests.conftest import csrf_token_from, sign_in
from tests.proposal_support import PROPOSAL_TEXT, field_error, make_call, make_site, set_country


@pytest.fixture
def drafted(app, make_user):
    """A PI with a draft asking for 100 GPU-hours, signed in."""
    pi = make_user(Role.PI, name="Grażyna Żółć")
    with app.app_context():
        cpu, gpu = make_site()
        call = make_call(cpu, gpu)
        proposal = ops.create_proposal(call, db.session.get(User, pi[0]), PROPOSAL_TEXT, {gpu.id: 100})
        db.session.commit()
        ids = {"call": call.id, "cpu": cpu.id, "gpu": gpu.id, "proposal": proposal.id}
    client = app.test_client()
    sign_in(client, pi[1], pi[2])
    token = csrf_token_from(client.get("/").get_data(as_text=True))
    return client, token, ids


def snapshot(app, proposal_id):
    with app.app_context():
        proposal = db.session.get(Proposal, proposal_id)
        events = db.session.scalar(db.select(db.func.count()).select_from(ProposalEvent))
        return (proposal.title, proposal.state, proposal.storage_gib,
                sorted((r.partition_id, r.requested_minutes) for r in proposal.requests),
                proposal.evidence.size if proposal.evidence else None, events)


def post_multipart(client, url, fields, headers=None):
    """Encode in memory: werkzeug's test client spools large bodies to a temporary file it never closes."""
    fields = {k: FileStorage(v[0], v[1], content_type=v[2] if len(v) > 2 else "text/csv") if isinstance(v, tuple) else v
              for k, v in fields.items()}
    boundary, body = encode_multipart(fields)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}", headers=headers)


def edit(client, token, ids, **changes):
    data = {"csrf_token": token, **PROPOSAL_TEXT, f"request-{ids['gpu']}": "100", **changes}
    return post_multipart(client, f"/proposals/{ids['proposal']}/edit", data)


@pytest.mark.parametrize("changes, field, message", [
    ({"request-GPU": "7000"}, "request-GPU", "At most 6,000 GPU-hours may be requested"),
    ({"request-GPU": "-5"}, "request-GPU", "Hours cannot be negative"),
    ({"request-CPU": "lots"}, "request-CPU", "Enter a number of hours"),
    ({"request-999999": "10"}, "request-999999", "is not offered in this call"),
    ({"storage_tib": "-1"}, "storage_tib", "Storage in TiB"),
    ({"track": "military"}, "track", "Not a valid choice"),
    ({"title": "x" * 301}, "title", "At most 300 characters"),
])
def test_bad_fields_are_refused_next_to_the_field(app, drafted, changes, field, message):
    client, token, ids = drafted
    before = snapshot(app, ids["proposal"])
    names = {"GPU": str(ids["gpu"]), "CPU": str(ids["cpu"])}
    changes = {k.replace("GPU", names["GPU"]).replace("CPU", names["CPU"]): v for k, v in changes.items()}
    field = field.replace("GPU", names["GPU"]).replace("CPU", names["CPU"])
    response = edit(client, token, ids, **changes)
    assert response.status_code == 422
    assert message in field_error(response.get_data(as_text=True), field)
    assert snapshot(app, ids["proposal"]) == before


def test_missing_fields_are_named_on_submission_and_nothing_is_submitted(app, drafted):
    client, token, ids = drafted
    with app.app_context():
        proposal = db.session.get(Proposal, ids["proposal"])
        proposal.abstract, proposal.justification, proposal.scaling_evidence = "", "", ""
        for request in list(proposal.requests):
            proposal.requests.remove(request)
        db.session.commit()
    before = snapshot(app, ids["proposal"])
    response = client.post(f"/proposals/{ids['proposal']}/submit", data={"csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert field_error(html, "abstract") == "Required before submission."
    assert field_error(html, "justification") == "Required before submission."
    assert "at least one partition" in field_error(html, "requests")
    assert "scaling evidence" in field_error(html, "scaling_evidence")
    assert PROPOSAL_TEXT["title"] in html  # the form shows what is stored, to complete it
    assert snapshot(app, ids["proposal"]) == before


def test_an_upload_of_50_mb_gets_a_clear_page_and_changes_nothing(app, drafted):
    client, token, ids = drafted
    before = snapshot(app, ids["proposal"])
    big = io.BytesIO(b"0" * (50 * 1000 * 1000))
    response = edit(client, token, ids, evidence=(big, "scaling.csv", "text/csv"))
    assert response.status_code == 413
    assert "too large" in response.get_data(as_text=True) and "10 MiB" in response.get_data(as_text=True)
    api = post_multipart(client, f"/api/proposals/{ids['proposal']}/evidence",
                         {"file": (io.BytesIO(b"0" * (50 * 10**6)), "s.csv")}, headers={"X-CSRFToken": token})
    assert api.status_code == 413 and "too large" in api.get_json()["message"]
    assert snapshot(app, ids["proposal"]) == before


def test_evidence_over_the_limit_or_of_a_wrong_type_is_refused(app, drafted):
    client, token, ids = drafted
    before = snapshot(app, ids["proposal"])
    for content, name, kind, message in ((b"1" * (11 * 2**20), "big.csv", "text/csv", "at most 10 MiB"),
                                         (b"MZ\x90\x00", "tool.exe", "application/x-msdownload", "Upload a PDF")):
        response = edit(client, token, ids, evidence=(io.BytesIO(content), name, kind))
        assert response.status_code == 422
        assert message in field_error(response.get_data(as_text=True), "evidence")
    assert snapshot(app, ids["proposal"]) == before
    ok = edit(client, token, ids, evidence=(io.BytesIO(b"gpus,speedup\n8,1\n"), "scaling.csv", "text/csv"))
    assert ok.status_code == 302
    download = client.get(f"/proposals/{ids['proposal']}/evidence")
    assert download.data == b"gpus,speedup\n8,1\n" and "scaling.csv" in download.headers["Content-Disposition"]


def test_the_api_refuses_the_same_things_with_field_errors(app, drafted):
    client, token, ids = drafted
    before = snapshot(app, ids["proposal"])
    response = client.patch(f"/api/proposals/{ids['proposal']}", headers={"X-CSRFToken": token},
                            json={"requests": {str(ids["gpu"]): -1, str(ids["cpu"]): 10**9, "424242": 5}})
    assert response.status_code == 422
    errors = response.get_json()["errors"]
    assert errors[f"request-{ids['gpu']}"] == "Hours cannot be negative."
    assert "At most 50,000 core-hours" in errors[f"request-{ids['cpu']}"]
    assert "not offered" in errors["request-424242"]
    assert snapshot(app, ids["proposal"]) == before


def test_eligibility_is_checked_on_submission(app, make_user):
    pi = make_user(Role.PI)
    with app.app_context():
        cpu, gpu = make_site()
        call = make_call(cpu, gpu, countries=["PL"])
        set_country(pi[0], "US")
        proposal = ops.create_proposal(call, db.session.get(User, pi[0]), PROPOSAL_TEXT, {cpu.id: 10})
        with pytest.raises(ops.Problems, match="open to organisations in PL; your organisation's country is US"):
            ops.submit_proposal(proposal, proposal.pi)
        assert proposal.state is ProposalState.DRAFT


def test_the_right_to_reply_closes_with_its_window(app, make_user):
    pi = make_user(Role.PI)
    with app.app_context():
        cpu, gpu = make_site()
        proposal = ops.create_proposal(make_call(cpu, gpu), db.session.get(User, pi[0]), PROPOSAL_TEXT, {cpu.id: 10})
        proposal.state = ProposalState.REVIEWED
        proposal.reply_deadline = utcnow() - timedelta(minutes=1)
        with pytest.raises(ops.Problems, match="window has closed"):
            ops.reply_to_reviews(proposal, proposal.pi, "Too late")
        assert proposal.reply == ""
