"""Demo calls in each state and proposals at every stage, made by the portal's own operations
(the same the pages call), so each proposal's history, e-mails and audit entries are real.

One call per state; a call that exists is left alone, so a second seed changes nothing.
"""
from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import select

from portal.calls.models import Call
from portal.calls.operations import create_call, seed_access_modes
from portal.clock import utcnow
from portal.extensions import db
from portal.identity.models import User
from portal.projects.models import ProjectRole
from portal.projects.operations import add_member
from portal.proposals import decisions
from portal.proposals import operations as proposals
from portal.proposals.models import Proposal
from portal.reviews.operations import assign_reviewer, declare_conflict, submit_review
from portal.sites.models import Partition, ResourceKind, Site
from portal.transactions import commit

TEXT = {
    "field_of_science": "Computational linguistics",
    "track": "scientific",
    "justification": "Fine-tuning runs of 7B models on 8 GPUs for two weeks, then evaluation on CPUs.",
    "code_description": "PyTorch with FSDP; data preparation in Python on CPU nodes.",
    "scaling_evidence": "1 GPU: 1.0x, 4 GPUs: 3.8x, 8 GPUs: 7.4x",
    "storage_tib": "1",
}


def _call(code: str, title: str, mode: str, partitions: list[Partition], *, opened_days_ago: int,
          min_reviewers: int = 1, start: date, end: date) -> Call:
    """A call open now (proposals are submitted while it is open); ``_close`` moves its cut-off."""
    modes = {m.name: m for m in seed_access_modes()}
    return create_call(code=code, title=title, access_mode=modes[mode], tracks=["scientific", "industry"],
                       eligible_countries=[], opens_at=utcnow() - timedelta(days=opened_days_ago),
                       closes_at=utcnow() + timedelta(days=1), allocation_start=start, allocation_end=end,
                       min_reviewers=min_reviewers, description=f"Demo call: {title}.",
                       # Less than the in-review call's proposals ask together: the ranking shows oversubscription.
                       offers={p.id: (1_000, 1_000) if p.resource_kind is ResourceKind.GPU else (2_500, 2_500)
                               for p in partitions})


def _close(call: Call, days_ago: int) -> None:
    call.closes_at = utcnow() - timedelta(days=days_ago)
    db.session.flush()


def _proposal(call: Call, pi: User, title: str, abstract: str, hours: dict[int, float], *, submit: bool = True) -> Proposal:
    proposal = proposals.create_proposal(call, pi, {**TEXT, "title": title, "abstract": abstract}, hours)
    if submit:
        proposals.submit_proposal(proposal, pi)
    return proposal


def _assessed(proposal: Proposal, staff: User) -> Proposal:
    decisions.check_admissibility(proposal, staff, True, "Complete and within the call's scope.")
    decisions.assess_technically(proposal, staff, True, "The code scales as shown; the request fits the partitions.")
    return proposal


def _reviewed(proposal: Proposal, staff: User, reviewer: User, scores: tuple[int, int, int], comment: str) -> None:
    assignment = assign_reviewer(proposal, staff, reviewer)
    declare_conflict(assignment, False)
    submit_review(assignment, dict(zip(("excellence", "impact", "implementation"), scores)), comment,
                  "Fund if capacity allows.")


def seed_proposal_cycle(site: Site, cpu: Partition, gpu: Partition, people: dict[str, User], report) -> None:
    staff, pi = people["staff"], people["pi"]
    today = utcnow().date()
    if db.session.scalar(select(Call.id).where(Call.code == "demo-2025")) is None:
        # Decided a year ago; its grant ended three months ago and the final report is late.
        call = _call("demo-2025", "Development access 2025 (demo)", "Development", [cpu, gpu], opened_days_ago=430,
                     start=today - timedelta(days=400), end=today - timedelta(days=100))
        pilot = _proposal(call, pi, "Pilot: tokenisers for Baltic languages",
                          "Tokeniser experiments for Polish and Lithuanian.", {cpu.id: 300})
        _close(call, 410)
        _assessed(pilot, staff)
        decisions.award_proposal(pilot, staff, start_date=today - timedelta(days=400),
                                 end_date=today - timedelta(days=100), hours={cpu.id: 300})
        from portal.grants.operations import expire_due_grants

        expire_due_grants(today)
        commit()
        report.done.append("call demo-2025 (decided): a grant that ended 100 days ago, final report overdue")
    if db.session.scalar(select(Call.id).where(Call.code == "demo-2026")) is None:
        call = _call("demo-2026", "AI Factory Fast Lane 2026 (demo)", "AI Factory Fast Lane", [cpu, gpu],
                     opened_days_ago=80, start=today - timedelta(days=42), end=today + timedelta(days=140))
        main = _proposal(call, pi, "Fine-tuning Baltic language models",
                         "Polish and Lithuanian adaptation of open 7B language models.", {cpu.id: 200, gpu.id: 40})
        refused = _proposal(call, people["tomasz.zielinski"], "Crawling the whole web again",
                            "A general web crawl without a research question.", {cpu.id: 900})
        _close(call, 50)
        _assessed(main, staff)
        decisions.award_proposal(main, staff, start_date=today - timedelta(days=42), end_date=today + timedelta(days=140),
                                 hours={cpu.id: 200, gpu.id: 40})
        add_member(main.project, people["user"], ProjectRole.MEMBER)
        decisions.check_admissibility(refused, staff, True)
        decisions.reject_proposal(refused, staff, "The proposal does not say what question the crawl answers.")
        commit()
        report.done.append(f"call demo-2026 (decided): project {main.project.code} awarded 200 core-hours on cpu "
                           "and 40 GPU-hours on gpu, Jonas Petraitis a member; one proposal rejected")
    if db.session.scalar(select(Call.id).where(Call.code == "demo-regular")) is None:
        _in_review(cpu, gpu, people, today)
        report.done.append("call demo-regular (in peer review): four proposals scored for the committee ranking, "
                           "the PI's reviews released for reply, two reviews owed by the demo reviewer")
    if db.session.scalar(select(Call.id).where(Call.code == "demo-spring")) is None:
        call = _call("demo-spring", "Development access spring (demo)", "Development", [cpu, gpu], opened_days_ago=40,
                     start=today + timedelta(days=30), end=today + timedelta(days=210))
        _proposal(call, people["egle.jankauskaite"], "Speech corpora for Samogitian", "Dialect speech recognition.",
                  {gpu.id: 30})
        admissible = _proposal(call, people["marek.nowak"], "Protein language models on CPUs",
                               "Small protein models trained on CPU nodes.", {cpu.id: 400})
        assessed = _proposal(call, people["ieva.kazlauskaite"], "Downscaling climate projections",
                             "Regional climate downscaling for the Baltic Sea.", {cpu.id: 250, gpu.id: 10})
        _close(call, 3)
        decisions.check_admissibility(admissible, staff, True)
        _assessed(assessed, staff)
        commit()
        report.done.append("call demo-spring (past its cut-off): proposals awaiting the admissibility check, "
                           "the technical assessment and a decision")
    open_call = db.session.scalar(select(Call).where(Call.code == "demo-fast"))
    if open_call is not None and not db.session.scalar(select(Proposal.id).where(Proposal.call_id == open_call.id)):
        _proposal(open_call, pi, "Speech recognition for Lithuanian dialects", "Draft: dialect ASR.",
                  {gpu.id: 20}, submit=False)
        _proposal(open_call, pi, "Retrieval over Polish legal texts", "Dense retrieval for Polish law.", {cpu.id: 150})
        commit()
        report.done.append("call demo-fast (open): the PI's draft and a submitted proposal (editable until the cut-off)")


def _in_review(cpu: Partition, gpu: Partition, people: dict[str, User], today: date) -> None:
    staff, reviewer, second = people["staff"], people["reviewer"], people["dovile.vaitkute"]
    call = _call("demo-regular", "Regular access 2027 (demo)", "Regular", [cpu, gpu], opened_days_ago=60,
                 start=today + timedelta(days=60), end=today + timedelta(days=425))
    entries = [
        (people["pi"], "Evaluating Baltic LLMs at scale", {cpu.id: 300, gpu.id: 60}, (5, 4, 4)),
        (people["egle.jankauskaite"], "Lithuanian morphology with transformers", {cpu.id: 500}, (4, 4, 3)),
        (people["marek.nowak"], "Graph networks for power grids", {cpu.id: 2_000, gpu.id: 400}, (3, 4, 3)),
        (people["tomasz.zielinski"], "Medical imaging foundation model", {gpu.id: 800}, (4, 3, 2)),
    ]
    made = [(_proposal(call, pi, title, f"{title}: demo proposal.", hours), scores)
            for pi, title, hours, scores in entries]
    _close(call, 20)
    for proposal, scores in made:
        _assessed(proposal, staff)
        _reviewed(proposal, staff, second, scores, "Clear plan; the scaling evidence supports the request.")
    # The demo reviewer owes two reviews; one assigned weeks ago (back-dated) is overdue.
    for index, (proposal, _scores) in enumerate(made[2:]):
        assignment = assign_reviewer(proposal, staff, reviewer)
        if index == 0:
            assignment.assigned_at = utcnow().replace(tzinfo=None) - timedelta(days=25)
    decisions.release_reviews(made[0][0], staff)
    commit()
