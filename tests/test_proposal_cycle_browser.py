"""The full-review cycle through the web pages in headless Chromium, with screenshots kept."""
from __future__ import annotations

import re

import pytest

from portal.extensions import db
from portal.grants.models import Grant
from portal.identity.models import Role, User
from portal.proposals.models import Proposal, ProposalState
from portal.reviews.operations import reviews_of
from tests.browser import chromium_page, live_server, screenshot, sign_in_in_browser
from tests.proposal_support import PROPOSAL_TEXT, make_call, make_site, move_cut_off_to_the_past, set_country

pytestmark = pytest.mark.browser


def as_user(page, base, user):
    page.context.clear_cookies()
    sign_in_in_browser(page, base, user[1], user[2])


def send_form(page, button: str, confirmation: str, fields: dict[str, str] | None = None) -> None:
    """Fills `fields` (selector -> value; a <select> gets the option), presses `button` and waits
    until the page says `confirmation`."""
    for selector, value in (fields or {}).items():
        if selector.startswith("select"):
            page.select_option(selector, value)
        else:
            page.fill(selector, value)
    page.click(button)
    page.wait_for_selector(f"text={confirmation}")


@pytest.mark.slow
def test_full_review_cycle_in_chromium(app, make_user, smtp_server):
    pi = make_user(Role.PI, name="Agnieszka Wiśniewska", email="agnieszka@example.org")
    co_pi = make_user(Role.MEMBER, name="Jonas Petraitis", email="jonas@example.org")
    staff = make_user(Role.STAFF, name="Rūta Kazlauskienė")
    reviewers = [make_user(Role.REVIEWER, name=name) for name in ("Łukasz Żółkiewski", "Eglė Šimkutė", "Ода Ярова")]
    with app.app_context():
        cpu, gpu = make_site()
        call = make_call(cpu, gpu, countries=["PL"], min_reviewers=2)
        set_country(pi[0], "PL")
        db.session.commit()
        call_id, gpu_id = call.id, gpu.id

    with live_server(app) as base, chromium_page() as page:
        # The PI drafts, invites a co-PI and submits.
        as_user(page, base, pi)
        page.click("text=Calls")
        page.click("text=Call reg-2027-1")
        page.click("text=Write a proposal")
        for name, value in PROPOSAL_TEXT.items():
            if name == "track":
                page.select_option("select[name=track]", value)
            else:
                page.fill(f"[name={name}]", value)
        page.fill(f"input[name=request-{gpu_id}]", "7000")  # more than the call allows
        page.click("text=Save draft")
        assert "At most 6,000 GPU-hours" in page.inner_text(f"[data-field=request-{gpu_id}]")
        screenshot(page, "proposal-refused-request")
        page.fill(f"input[name=request-{gpu_id}]", "6000")
        page.click("text=Save draft")
        page.wait_for_selector("text=Draft saved.")
        proposal_id = int(page.url.rsplit("/", 1)[1])
        send_form(page, "button:has-text('Invite')", "Invitation sent",
                  {"input[name=email]": "jonas@example.org", "select[name=role]": "co_pi"})
        send_form(page, "button:has-text('Submit proposal')", "Proposal submitted.")
        screenshot(page, "proposal-submitted")

        link = re.search(r"https?://[^/\s]+(/proposals/invitations/\S+)",
                         smtp_server.wait_for(1) and smtp_server.to("jonas@example.org")[0].get_content()).group(1)
        as_user(page, base, co_pi)
        page.goto(base + link)
        send_form(page, "text=Accept the invitation", "You joined the proposal.")

        with app.app_context():
            move_cut_off_to_the_past(db.session.get(Proposal, proposal_id).call)
            db.session.commit()

        # Staff: admissible, feasible, three reviewers.
        as_user(page, base, staff)
        page.goto(f"{base}/proposals/{proposal_id}")
        send_form(page, "#admissibility button", "Admissibility recorded.")
        send_form(page, "#technical button", "Technical assessment recorded.", {f"#recommend-{gpu_id}": "5000"})
        for reviewer in reviewers:
            send_form(page, "#assign button", "Reviewer assigned.", {"select[name=reviewer]": str(reviewer[0])})
        assignments = {r[0]: None for r in reviewers}
        with app.app_context():
            for a in reviews_of(db.session.get(Proposal, proposal_id)):
                assignments[a.reviewer_id] = a.id

        # One reviewer has a conflict and loses access; two score.
        as_user(page, base, reviewers[2])
        page.click("text=My reviews")
        page.click(f"text={PROPOSAL_TEXT['title']}")
        send_form(page, "button:has-text('Declare')", "You no longer have access", {"select[name=conflict]": "conflict"})
        assert page.goto(f"{base}/reviews/{assignments[reviewers[2][0]]}").status == 404
        for reviewer, score in ((reviewers[0], "5"), (reviewers[1], "4")):
            as_user(page, base, reviewer)
            page.goto(f"{base}/reviews/{assignments[reviewer[0]]}")
            send_form(page, "button:has-text('Declare')", "No conflict declared", {"select[name=conflict]": "none"})
            send_form(page, "button:has-text('Submit review')", "Review submitted.", {
                **{f"select[name=score_{criterion}]": score for criterion in ("excellence", "impact", "implementation")},
                "textarea[name=comment_applicant]": f"Solidny plan, ocena {score}.",
                "textarea[name=comment_committee]": "Committee only."})
        screenshot(page, "review-submitted")

        as_user(page, base, staff)
        page.goto(f"{base}/proposals/{proposal_id}")
        send_form(page, "button:has-text('Release reviews')", "Reviews released")

        # The PI reads the reviews (no names) and replies.
        as_user(page, base, pi)
        page.goto(f"{base}/proposals/{proposal_id}")
        text = page.inner_text("main")
        assert "Solidny plan, ocena 5." in text and "Committee only." not in text
        assert not any(name in text for name in ("Łukasz Żółkiewski", "Eglė Šimkutė", "Ода Ярова"))
        send_form(page, "text=Send reply", "Reply sent.", {"textarea[name=reply]": "Dziękujemy za recenzje."})
        screenshot(page, "proposal-replied")

        # Committee and award.
        as_user(page, base, staff)
        page.goto(f"{base}/calls/{call_id}/committee")
        assert page.inner_text("#ranking td.score") == "4.50"
        screenshot(page, "committee-ranking")
        page.goto(f"{base}/proposals/{proposal_id}")
        send_form(page, "#award button", "Awarded: the grant is created.",
                  {"#award input[name=start_date]": "2027-01-01", "#award input[name=end_date]": "2027-12-31"})
        assert "Awarded" in page.inner_text("#state")
        screenshot(page, "proposal-awarded")

    with app.app_context():
        proposal = db.session.get(Proposal, proposal_id)
        assert proposal.state is ProposalState.AWARDED
        grant = db.session.get(Grant, proposal.grant_id)
        assert [(a.partition_id, a.awarded_minutes) for a in grant.allocations] == [(gpu_id, 5000 * 60)]
        assert db.session.get(User, co_pi[0]) in [m.user for m in grant.project.memberships]
