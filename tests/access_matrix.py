"""Who may use every route and API endpoint: the table the access tests check the app against.

The table must name every endpoint the app has: a new route fails tests/test_access.py until
someone decides who may use it.
"""
from __future__ import annotations

from portal.identity.models import Role

PUBLIC = "public"


SIGNED_IN = "signed-in"


STAFF = "staff"


ADMIN = "admin"


PROJECT_MEMBER = "project member"  # members of the project in the URL, and staff


TOKEN_OWNER = "token owner"  # only the user whose API token is in the URL


SIGN_IN_FLOW = "sign-in flow"  # public; the provider in the URL is unknown here (404), see test_oidc


PUBLIC_FORM = "public form"  # anyone, signed in or not, posting the page's CSRF token (the language switch)


PI_ROLE = "PI role"  # anyone holding the PI role


PROPOSAL_TEAM = "proposal team"  # the proposal's PI and accepted team, and staff; others 404


PROPOSAL_APPLICANT = "proposal applicant"  # the PI (and co-PIs); staff 403; others 404


REVIEWER_ROLE = "reviewer role"


REVIEW_ASSIGNEE = "review assignee"  # only the assigned reviewer without a conflict; others 404


INVITEE = "invitee"  # only the person the invitation in the URL was sent to; others 404


PROJECT_MANAGER = "project manager"  # the project's PI and co-PIs, and staff; members 403; others 404


RUN_TOKEN = "run token"  # only an acceptance run's upload token (tests/test_acceptance.py); sessions 401


ENDPOINTS: dict[str, tuple[str, str]] = {
    # endpoint: (who may use it, HTTP method used to probe it)
    "identity.login": (PUBLIC, "GET"),
    "web.health": (PUBLIC, "GET"),
    "api-docs.openapi_json": (PUBLIC, "GET"),
    "web.index": (SIGNED_IN, "GET"),
    "web.caught_mail": (STAFF, "GET"),  # the demo mail sink's messages
    "identity.logout": (SIGNED_IN, "POST"),
    "sites.index": (SIGNED_IN, "GET"),
    "projects.index": (SIGNED_IN, "GET"),
    "projects.export": (SIGNED_IN, "GET"),
    "projects.detail": (PROJECT_MEMBER, "GET"),
    "projects.add_member": (PROJECT_MANAGER, "POST"),
    "projects.remove": (PROJECT_MANAGER, "POST"),
    "sites.sync": (STAFF, "POST"),
    "sites.set_kind": (STAFF, "POST"),
    "people.users": (STAFF, "GET"),
    "people.export": (STAFF, "GET"),
    "people.user": (STAFF, "GET"),  # staff see a person's page; only administrators change it
    "people.link": (ADMIN, "POST"),
    "people.unlink": (ADMIN, "POST"),
    "people.disable": (ADMIN, "POST"),
    "people.enable": (ADMIN, "POST"),
    "people.verify": (ADMIN, "POST"),
    "api_me.me": (SIGNED_IN, "GET"),
    "api_sites.list_sites": (SIGNED_IN, "GET"),
    "api_sites.get_site": (SIGNED_IN, "GET"),
    "api_sites.sync_site": (STAFF, "POST"),
    "api_projects.list_projects": (SIGNED_IN, "GET"),
    "api_projects.get_project": (PROJECT_MEMBER, "GET"),
    "benchmarks.index": (SIGNED_IN, "GET"),
    "benchmarks.export": (SIGNED_IN, "GET"),
    "benchmarks.run": (SIGNED_IN, "GET"),
    "benchmarks.history": (SIGNED_IN, "GET"),
    "benchmarks.upload": (STAFF, "POST"),
    "api_benchmarks.list_runs": (SIGNED_IN, "GET"),
    "api_benchmarks.upload_run": (STAFF, "POST"),
    "api_benchmarks.get_run": (SIGNED_IN, "GET"),
    "api_benchmarks.history": (SIGNED_IN, "GET"),
    "benchmarks.acceptance": (SIGNED_IN, "GET"),
    "benchmarks.acceptance_run": (SIGNED_IN, "GET"),
    "benchmarks.start_acceptance": (STAFF, "POST"),
    "benchmarks.references": (STAFF, "GET"),
    "benchmarks.adopt": (STAFF, "POST"),
    "benchmarks.reference": (STAFF, "GET"),
    "api_acceptance.post_result": (RUN_TOKEN, "POST"),
    "identity.oidc_login": (SIGN_IN_FLOW, "GET"),
    "identity.oidc_callback": (SIGN_IN_FLOW, "GET"),
    "account.tokens": (SIGNED_IN, "GET"),
    "account.profile": (SIGNED_IN, "GET"),
    "account.language": (PUBLIC_FORM, "POST"),
    "account.revoke": (TOKEN_OWNER, "POST"),
    "audit.index": (STAFF, "GET"),
    "audit.export": (STAFF, "GET"),
    "slurm_status.status_page": (STAFF, "GET"),
    # Open to the configured networks (the test client is 127.0.0.1), a bearer token and staff;
    # tests/test_slurm_service.py checks that other addresses are refused.
    "slurm_status.metrics": (PUBLIC, "GET"),
    "api_tokens.list_tokens": (SIGNED_IN, "GET"),
    "api_tokens.create": (SIGNED_IN, "POST"),
    "api_tokens.revoke": (TOKEN_OWNER, "DELETE"),
    # Calls, proposals and peer review (see also tests/test_authorisation_proposals.py)
    "calls.index": (SIGNED_IN, "GET"),
    "calls.export": (SIGNED_IN, "GET"),
    "calls.detail": (SIGNED_IN, "GET"),
    "calls.new": (STAFF, "GET"),
    "calls.committee": (STAFF, "GET"),
    "proposals.index": (SIGNED_IN, "GET"),
    "proposals.export": (SIGNED_IN, "GET"),
    "proposals.new": (PI_ROLE, "GET"),
    "proposals.detail": (PROPOSAL_TEAM, "GET"),
    "proposals.evidence": (PROPOSAL_TEAM, "GET"),
    "proposals.edit": (PROPOSAL_APPLICANT, "GET"),
    "proposals.submit": (PROPOSAL_APPLICANT, "POST"),
    "proposals.invite": (PROPOSAL_APPLICANT, "POST"),
    "proposals.reply": (PROPOSAL_APPLICANT, "POST"),
    "proposals.invitation": (INVITEE, "GET"),
    "proposals.admissibility": (STAFF, "POST"),
    "proposals.technical": (STAFF, "POST"),
    "proposals.assign": (STAFF, "POST"),
    "proposals.release": (STAFF, "POST"),
    "proposals.award": (STAFF, "POST"),
    "proposals.reject": (STAFF, "POST"),
    "reviews.index": (REVIEWER_ROLE, "GET"),
    "reviews.export": (REVIEWER_ROLE, "GET"),
    "reviews.detail": (REVIEW_ASSIGNEE, "GET"),
    "reviews.conflict": (REVIEW_ASSIGNEE, "POST"),
    "reviews.score": (REVIEW_ASSIGNEE, "POST"),
    "api_calls.list_calls": (SIGNED_IN, "GET"),
    "api_calls.list_access_modes": (SIGNED_IN, "GET"),
    "api_calls.get_call": (SIGNED_IN, "GET"),
    "api_calls.create": (STAFF, "POST"),
    "api_calls.committee": (STAFF, "GET"),
    "api_proposals.list_proposals": (SIGNED_IN, "GET"),
    "api_proposals.create": (PI_ROLE, "POST"),
    "api_proposals.get_proposal": (PROPOSAL_TEAM, "GET"),
    "api_proposals.history": (PROPOSAL_TEAM, "GET"),
    "api_proposals.update": (PROPOSAL_APPLICANT, "PATCH"),
    "api_proposals.upload_evidence": (PROPOSAL_APPLICANT, "POST"),
    "api_proposals.submit": (PROPOSAL_APPLICANT, "POST"),
    "api_proposals.invite": (PROPOSAL_APPLICANT, "POST"),
    "api_proposals.reply": (PROPOSAL_APPLICANT, "POST"),
    "api_proposals.accept_invitation": (SIGNED_IN, "POST"),  # the token is in the body; see test_authorisation_proposals
    "api_proposals.admissibility": (STAFF, "POST"),
    "api_proposals.technical": (STAFF, "POST"),
    "api_proposals.assign": (STAFF, "POST"),
    "api_proposals.release": (STAFF, "POST"),
    "api_proposals.award": (STAFF, "POST"),
    "api_proposals.reject": (STAFF, "POST"),
    "api_reviews.list_assignments": (REVIEWER_ROLE, "GET"),
    "api_reviews.get_assignment": (REVIEW_ASSIGNEE, "GET"),
    "api_reviews.conflict": (REVIEW_ASSIGNEE, "POST"),
    "api_reviews.score": (REVIEW_ASSIGNEE, "POST"),
    # Grants (see tests/test_grant_pages.py)
    "grants.index": (SIGNED_IN, "GET"),
    "grants.export": (SIGNED_IN, "GET"),
    "grants.detail": (PROJECT_MEMBER, "GET"),
    "grants.request_change": (PROJECT_MANAGER, "POST"),
    "grants.decide": (STAFF, "POST"),
    "grants.upload_report": (PROJECT_MANAGER, "POST"),
    "grants.download_report": (PROJECT_MEMBER, "GET"),
    "grants.reports": (STAFF, "GET"),
    "api_grants.list_grants": (SIGNED_IN, "GET"),
    "api_grants.get_grant": (PROJECT_MEMBER, "GET"),
    "api_grants.decide": (STAFF, "POST"),
    # Job templates and jobs (see tests/test_jobs_web.py)
    "jobs.index": (SIGNED_IN, "GET"),
    "jobs.export": (SIGNED_IN, "GET"),
    "jobs.new": (SIGNED_IN, "GET"),
    "jobs.detail": (PROJECT_MEMBER, "GET"),
    "jobs.cancel": (PROJECT_MEMBER, "POST"),
    "jobs.problems": (STAFF, "GET"),
    "api_jobs.list_templates": (SIGNED_IN, "GET"),
    "api_jobs.get_template": (SIGNED_IN, "GET"),
    "api_jobs.preview": (SIGNED_IN, "POST"),
    "api_jobs.submit": (SIGNED_IN, "POST"),
    "api_jobs.list_jobs": (SIGNED_IN, "GET"),
    "api_jobs.get_job": (PROJECT_MEMBER, "GET"),
    "api_jobs.cancel": (PROJECT_MEMBER, "POST"),
    "api_jobs.preview_resubmission": (PROJECT_MEMBER, "POST"),
    "api_jobs.resubmit": (PROJECT_MEMBER, "POST"),
}


PERSONAS = {
    "pi": (Role.PI, Role.MEMBER),
    "member": (Role.MEMBER,),
    "reviewer": (Role.REVIEWER,),
    "staff": (Role.STAFF,),
    "admin": (Role.ADMIN,),
    "other_pi": (Role.PI,),  # a PI who is not in the project
}


def expected_allowed(rule: str, persona: str) -> bool:
    if rule in (PUBLIC, SIGNED_IN, SIGN_IN_FLOW, PUBLIC_FORM):
        return True
    if rule == TOKEN_OWNER:
        return persona == "member"
    if rule == STAFF:
        return persona in ("staff", "admin")
    if rule == ADMIN:
        return persona == "admin"
    if rule == PROJECT_MEMBER:
        return persona in ("pi", "member", "staff", "admin")
    if rule == PI_ROLE:
        return persona in ("pi", "other_pi")
    if rule == PROPOSAL_TEAM:
        return persona in ("pi", "staff", "admin")
    if rule == PROPOSAL_APPLICANT:
        return persona == "pi"
    if rule in (REVIEWER_ROLE, REVIEW_ASSIGNEE):
        return persona == "reviewer"
    if rule == INVITEE:
        return persona == "member"
    if rule == PROJECT_MANAGER:
        return persona in ("pi", "staff", "admin")
    if rule == RUN_TOKEN:
        return False
    raise AssertionError(rule)


#: Rules under which a refused caller gets 404 (the ids reveal nothing), except the personas listed (403).
HIDDEN = {PROJECT_MEMBER: (), TOKEN_OWNER: (), PROPOSAL_TEAM: (), PROPOSAL_APPLICANT: ("staff", "admin"),
          REVIEW_ASSIGNEE: (), INVITEE: (), PROJECT_MANAGER: ("member",)}


def url_for_rule(app, endpoint: str, ids: dict[str, int]) -> str:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    with app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **{arg: ids[arg] for arg in rule.arguments})


def probe(client, method: str, url: str, token: str | None):
    if method == "GET":
        return client.get(url)
    headers = {"X-CSRFToken": token} if token else {}
    if method == "DELETE":
        return client.delete(url, headers=headers)
    if method == "PATCH":
        return client.patch(url, json={}, headers=headers)
    data = {"csrf_token": token} if token and not url.startswith("/api/") else None
    return client.post(url, data=data, headers=headers)
