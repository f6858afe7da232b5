"""Shared set-up for the calls, proposals and review tests: a site, calls, filled-in proposals."""
from __future__ import annotations

import re
from datetime import date, timedelta

from portal.calls.models import ReviewWorkflow
from portal.calls.operations import create_call, seed_access_modes
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import User
from portal.proposals import operations as ops
from portal.sites.models import Partition, ResourceKind
from portal.sites.operations import create_site

PROPOSAL_TEXT = {
    "title": "Łódź–Vilnius language models",
    "abstract": "Dostrajanie modeli językowych dla języka polskiego i lietuvių kalbos.",
    "field_of_science": "Computational linguistics",
    "track": "scientific",
    "justification": "Training runs of 7B models need 4 nodes for 3 weeks.",
    "code_description": "PyTorch with FSDP; runs on 32 GPUs at the Łukasiewicz centre.",
    "scaling_evidence": "8 GPUs: 1.0x, 16: 1.9x, 32: 3.7x",
    "storage_tib": "2.5",
}


def make_site(tmp_path=None) -> tuple[Partition, Partition]:
    """A site with a CPU and a GPU partition, without a Slurm cluster (not needed here)."""
    site = create_site("Żywiec AI Factory", "zywiec",
                       slurm_conf=str(tmp_path / "missing.conf") if tmp_path else None)
    cpu = Partition(name="cpu", resource_kind=ResourceKind.CPU, total_nodes=10, cpus_per_node=128)
    gpu = Partition(name="gpu", resource_kind=ResourceKind.GPU, total_nodes=4, gpus_per_node=4)
    site.partitions.extend([cpu, gpu])
    db.session.flush()
    return cpu, gpu


def make_call(cpu: Partition, gpu: Partition, *, code: str = "reg-2027-1", workflow=ReviewWorkflow.FULL,
              closes_in: timedelta | None = timedelta(days=30), countries=(), min_reviewers: int = 2,
              offered=(100_000, 10_000), most=(50_000, 6_000)):
    modes = {m.name: m for m in seed_access_modes()}
    now = utcnow()
    return create_call(
        code=code, title=f"Call {code}", access_mode=modes["Regular" if workflow is ReviewWorkflow.FULL else "Development"],
        review_workflow=workflow, tracks=["scientific", "industry"], eligible_countries=list(countries),
        opens_at=now - timedelta(days=1), closes_at=now + closes_in if closes_in else None,
        allocation_start=date(2027, 1, 1), allocation_end=date(2028, 1, 1), min_reviewers=min_reviewers,
        offers={cpu.id: (offered[0], most[0]), gpu.id: (offered[1], most[1])})


def set_country(user_id: int, country: str) -> None:
    db.session.get(User, user_id).country = country


def move_cut_off_to_the_past(call) -> None:
    """Time passes: the cut-off is now behind us (as if the clock had moved on)."""
    call.opens_at = utcnow() - timedelta(days=10)
    call.closes_at = utcnow() - timedelta(minutes=1)
    db.session.flush()


def review_world(pi_id: int, staff_id: int, reviewer_id: int, invitee_email: str,
                 conflicted_reviewer_id: int | None = None) -> dict:
    """A full-review call with the PI's proposal in peer review, a pending invitation for
    ``invitee_email``, an evidence file, and the reviewer assigned (not yet declared).

    Returns the ids the routes take: call_id, proposal_id, assignment_id, token.
    """
    from portal.projects.models import ProjectRole
    from portal.proposals import decisions
    from portal.reviews.operations import assign_reviewer, declare_conflict

    cpu, gpu = make_site()
    call = make_call(cpu, gpu, code="acc-2027", min_reviewers=1)
    pi, staff = db.session.get(User, pi_id), db.session.get(User, staff_id)
    proposal = ops.create_proposal(call, pi, PROPOSAL_TEXT, {gpu.id: 100})
    ops.attach_evidence(proposal, pi, "scaling.csv", "text/csv", b"gpus,speedup\n8,1.0\n16,1.9\n")
    invitation = ops.invite_member(proposal, pi, invitee_email, ProjectRole.CO_PI)
    ops.submit_proposal(proposal, pi)
    call.closes_at = call.opens_at + timedelta(hours=1)  # the cut-off has passed: the proposal is locked
    decisions.check_admissibility(proposal, staff, True)
    decisions.assess_technically(proposal, staff, True)
    assignment = assign_reviewer(proposal, staff, db.session.get(User, reviewer_id))
    ids = {"call_id": call.id, "proposal_id": proposal.id, "assignment_id": assignment.id,
           "token": ops._serializer().dumps(invitation.nonce)}
    if conflicted_reviewer_id is not None:
        conflicted = assign_reviewer(proposal, staff, db.session.get(User, conflicted_reviewer_id))
        declare_conflict(conflicted, True)
        ids["conflicted_assignment_id"] = conflicted.id
    return ids


def field_error(html: str, field: str) -> str:
    match = re.search(rf'<span class="field-error" data-field="{re.escape(field)}">([^<]+)</span>', html)
    assert match, f"no message next to {field}"
    return match.group(1)
