"""What each role's dashboard shows: the queries, aggregated in SQL and limited.

Every list is one query (a window ``count(*) OVER ()`` gives the full count beside the first
rows), so the dashboard runs the same number of queries for a facility of ten projects or ten
thousand. Nothing here changes data.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import format_timedelta
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import Select, and_, case, exists, func, or_, select
from sqlalchemy.orm import joinedload

from portal.benchmarks.models import BenchmarkRun
from portal.calls.models import Call, ReviewWorkflow
from portal.clock import utcnow
from portal.extensions import db
from portal.grants.charts import burn_down_chart
from portal.grants.models import FinalReport, Grant, GrantAllocation, GrantRequest, GrantStatus, JobUsage, RequestStatus
from portal.grants.requests import REPORT_DUE_AFTER
from portal.grants.status import OutboxStatus, SiteStatus, outbox_status, site_statuses
from portal.grants.summary import UNITS, ResourceTotal, pools_of
from portal.identity.models import Role, User
from portal.jobs.models import SubmittedJob
from portal.projects.models import Membership, Project, ProjectRole
from portal.proposals.models import Invitation, Proposal, ProposalState
from portal.reviews.models import ReviewAssignment
from portal.sites.models import Partition, ResourceKind, Site

#: A review is due this long after the assignment (the call gives no date of its own); staff
#: see it as overdue afterwards.
REVIEW_PERIOD = timedelta(days=21)
#: Rows per list; the link under each list leads to the full page.
LIST_LIMIT = 5
GRANT_LIMIT = 4
POOL_LIMIT = 20


@dataclass
class Listing:
    """The first rows of a list and how many there are in all."""
    total: int
    rows: list[Any]


def _listed(query: Select, limit: int = LIST_LIMIT) -> Listing:
    rows = db.session.execute(query.add_columns(func.count().over().label("total")).limit(limit)).all()
    return Listing(rows[0].total if rows else 0, list(rows))


@dataclass
class GrantCard:
    grant: Grant
    pools: list[ResourceTotal]
    charts: list[Markup]


@dataclass
class QueueEntry:
    """One kind of staff work: how many wait, the oldest few, where to do it."""
    key: str
    label: str
    listing: Listing
    endpoint: str  # the page of one row; takes the row's ``id`` under ``argument``
    argument: str


@dataclass
class Dashboard:
    now: datetime
    today: date
    open_calls: Listing | None = None
    proposals: Listing | None = None
    grants: list[GrantCard] = field(default_factory=list)
    grants_total: int = 0
    requests: Listing | None = None
    late_reports: Listing | None = None
    pools: Listing | None = None
    jobs: Listing | None = None
    reviews: Listing | None = None
    queue: list[QueueEntry] = field(default_factory=list)
    rankings: Listing | None = None
    benchmarks: Listing | None = None
    sites: list[SiteStatus] = field(default_factory=list)
    outbox: OutboxStatus | None = None

    def review_due(self, assigned_at: datetime) -> datetime:
        return assigned_at + REVIEW_PERIOD

    def is_overdue(self, assigned_at: datetime) -> bool:
        return assigned_at + REVIEW_PERIOD < self.now

    def countdown(self, moment: datetime) -> str:
        """'in 3 weeks' / '2 days ago', in the reader's language."""
        return format_timedelta(moment - self.now, add_direction=True)

    def report_due(self, end_date: date) -> date:
        return end_date + REPORT_DUE_AFTER

    def unit(self, kind: ResourceKind) -> str:
        return str(UNITS[kind])


def build_dashboard(user: User, now: datetime | None = None) -> Dashboard:
    now = (now or utcnow()).replace(tzinfo=None)
    board = Dashboard(now=now, today=now.date())
    # Staff and reviewers apply or run jobs only when they also hold the PI or member role.
    plain = not user.is_staff and not user.has_role(Role.REVIEWER)
    if plain or user.has_role(Role.PI):
        _applicant(board, user)
    if plain or user.has_role(Role.MEMBER, Role.PI):
        _member(board, user)
    if user.has_role(Role.REVIEWER):
        board.reviews = reviews_waiting(user, now)
    if user.is_staff:
        board.queue = staff_queue(now)
        board.rankings = calls_in_review()
        board.benchmarks = recent_benchmarks()
        board.sites = site_statuses()
        board.outbox = outbox_status()
    return board


# ---- PI ----------------------------------------------------------------------------------------
def open_calls(now: datetime) -> Listing:
    """Calls taking proposals now, the nearest cut-off first (continuous calls last)."""
    return _listed(select(Call.id, Call.code, Call.title, Call.closes_at)
                   .where(Call.opens_at <= now, or_(Call.closes_at.is_(None), Call.closes_at > now))
                   .order_by(Call.closes_at.is_(None), Call.closes_at, Call.id))


def _team_proposals(user: User):
    accepted = select(Invitation.proposal_id).where(Invitation.accepted_by_id == user.id)
    return or_(Proposal.pi_id == user.id, Proposal.id.in_(accepted))


def my_proposals(user: User) -> Listing:
    return _listed(select(Proposal.id, Proposal.title, Proposal.state, Proposal.reply_deadline, Call.id.label("call_id"),
                          Call.code.label("call_code"), Call.closes_at)
                   .join(Call, Call.id == Proposal.call_id).where(_team_proposals(user))
                   .order_by(Proposal.updated_at.desc(), Proposal.id.desc()), limit=8)


def _managed(user: User):
    """Projects the user leads (PI or co-PI): they ask for top-ups and write the final report."""
    return select(Membership.project_id).where(Membership.user_id == user.id,
                                               Membership.role.in_((ProjectRole.PI, ProjectRole.CO_PI)))


def daily_use_of(allocation_ids: list[int]) -> dict[tuple[int, ResourceKind], dict[date, float]]:
    """Hours per day and allocation (by the day a job started, as the grant page counts), in one query."""
    if not allocation_ids:
        return {}
    day = func.date(func.coalesce(JobUsage.start_time, JobUsage.end_time))
    rows = db.session.execute(
        select(JobUsage.allocation_id, day.label("day"), func.sum(JobUsage.cpu_seconds), func.sum(JobUsage.gpu_seconds))
        .where(JobUsage.allocation_id.in_(allocation_ids)).group_by(JobUsage.allocation_id, day))
    use: dict[tuple[int, ResourceKind], dict[date, float]] = {}
    for allocation_id, when, cpu, gpu in rows:
        if when is None:
            continue
        when = date.fromisoformat(when) if isinstance(when, str) else when  # SQLite answers text
        for kind, seconds in ((ResourceKind.CPU, cpu), (ResourceKind.GPU, gpu)):
            per_day = use.setdefault((allocation_id, kind), {})
            per_day[when] = per_day.get(when, 0.0) + int(seconds or 0) / 3600  # PostgreSQL sums to Decimal
    return use


def grant_cards(user: User, today: date) -> tuple[list[GrantCard], int]:
    """The active grants of projects the user leads, the soonest to end first, with hours left
    per pool (the summaries ingestion keeps) and a burn-down drawn from the usage ledger."""
    rows = db.session.execute(
        select(Grant, func.count().over()).options(joinedload(Grant.project))
        .where(Grant.project_id.in_(_managed(user)), Grant.status == GrantStatus.ACTIVE)
        .order_by(Grant.end_date, Grant.id).limit(GRANT_LIMIT)).unique().all()
    grants = [grant for grant, _ in rows]
    use = daily_use_of([a.id for g in grants for a in g.allocations])
    cards = []
    for grant in grants:
        pools, charts = [], []
        for (_pool, kind), allocations in pools_of(grant).items():
            total = ResourceTotal(kind, sum(a.awarded_minutes for a in allocations) / 60,
                                  sum(a.used_seconds for a in allocations) / 3600, tuple(a.id for a in allocations),
                                  tuple(a.partition.name for a in allocations), allocations[0].slurm_account)
            days: dict[date, float] = {}
            for allocation in allocations:
                for day, hours in use.get((allocation.id, kind), {}).items():
                    days[day] = days.get(day, 0.0) + hours
            pools.append(total)
            charts.append(burn_down_chart(grant, total, today, sorted(days.items())))
        cards.append(GrantCard(grant, pools, charts))
    return cards, (rows[0][1] if rows else 0)


def waiting_requests(user: User) -> Listing:
    """The user's top-up and extension requests staff have not decided yet."""
    return _listed(select(GrantRequest.id, GrantRequest.grant_id, GrantRequest.extra_minutes, GrantRequest.new_end_date,
                          GrantRequest.created_at, Grant.title)
                   .join(Grant, Grant.id == GrantRequest.grant_id)
                   .where(GrantRequest.status == RequestStatus.OPEN, Grant.project_id.in_(_managed(user)))
                   .order_by(GrantRequest.created_at))


def _reports_due(today: date):
    """Grants whose final report is late: ended more than two months ago, none uploaded."""
    return and_(Grant.end_date < today - REPORT_DUE_AFTER,
                ~exists().where(FinalReport.grant_id == Grant.id))


def _late_reports(today: date, user: User | None = None) -> Listing:
    query = (select(Grant.id, Grant.title, Grant.end_date, Project.code).join(Project, Project.id == Grant.project_id)
             .where(_reports_due(today)).order_by(Grant.end_date, Grant.id))
    if user is not None:
        query = query.where(Grant.project_id.in_(_managed(user)))
    return _listed(query)


def _applicant(board: Dashboard, user: User) -> None:
    board.open_calls = open_calls(board.now)
    board.proposals = my_proposals(user)
    board.grants, board.grants_total = grant_cards(user, board.today)
    board.requests = waiting_requests(user)
    board.late_reports = _late_reports(board.today, user)


# ---- member --------------------------------------------------------------------------------------
def usable_pools(user: User, today: date) -> Listing:
    """Where the user can run jobs today: each partition of an active grant of their projects,
    with the account to charge and the hours left."""
    member_of = select(Membership.project_id).where(Membership.user_id == user.id)
    return _listed(select(GrantAllocation.id, GrantAllocation.slurm_account, GrantAllocation.awarded_minutes,
                          GrantAllocation.used_seconds, GrantAllocation.resource_kind, Partition.name.label("partition"),
                          Site.name.label("site"), Project.id.label("project_id"), Project.code.label("project"),
                          Grant.id.label("grant_id"), Grant.end_date)
                   .join(Grant, Grant.id == GrantAllocation.grant_id).join(Project, Project.id == Grant.project_id)
                   .join(Partition, Partition.id == GrantAllocation.partition_id).join(Site, Site.id == Partition.site_id)
                   .where(Grant.project_id.in_(member_of), Grant.status == GrantStatus.ACTIVE,
                          Grant.start_date <= today, Grant.end_date > today)
                   .order_by(Project.code, Partition.name, GrantAllocation.id), limit=POOL_LIMIT)


def recent_jobs(user: User) -> Listing:
    return _listed(select(SubmittedJob.id, SubmittedJob.job_name, SubmittedJob.slurm_job_id, SubmittedJob.last_state,
                          SubmittedJob.submitted_at, Partition.name.label("partition"), Project.code.label("project"))
                   .join(Partition, Partition.id == SubmittedJob.partition_id)
                   .join(Project, Project.id == SubmittedJob.project_id)
                   .where(SubmittedJob.user_id == user.id).order_by(SubmittedJob.id.desc()))


def _member(board: Dashboard, user: User) -> None:
    board.pools = usable_pools(user, board.today)
    board.jobs = recent_jobs(user)


# ---- reviewer ------------------------------------------------------------------------------------
def reviews_waiting(user: User, now: datetime) -> Listing:
    """Reviews the reviewer still owes, the oldest assignment (earliest due date) first."""
    return _listed(select(ReviewAssignment.id, ReviewAssignment.assigned_at, ReviewAssignment.has_conflict,
                          Proposal.title, Call.code.label("call_code"))
                   .join(Proposal, Proposal.id == ReviewAssignment.proposal_id).join(Call, Call.id == Proposal.call_id)
                   .where(ReviewAssignment.reviewer_id == user.id, ReviewAssignment.has_conflict.is_not(True),
                          ReviewAssignment.submitted_at.is_(None), Proposal.state == ProposalState.IN_REVIEW)
                   .order_by(ReviewAssignment.assigned_at, ReviewAssignment.id), limit=10)


# ---- staff ---------------------------------------------------------------------------------------
def calls_in_review() -> Listing:
    """Calls whose proposals are in peer review: the committee ranking is the next look."""
    reviewing = (ProposalState.IN_REVIEW, ProposalState.REVIEWED, ProposalState.REPLIED)
    return _listed(select(Call.id, Call.code, Call.title, func.count(Proposal.id).label("proposals"))
                   .join(Proposal, Proposal.call_id == Call.id).where(Proposal.state.in_(reviewing))
                   .group_by(Call.id, Call.code, Call.title).order_by(Call.code))


def recent_benchmarks() -> Listing:
    """The newest acceptance results; each run's page plots every metric's history."""
    return _listed(select(BenchmarkRun.id, BenchmarkRun.system, BenchmarkRun.partition, BenchmarkRun.measured_at,
                          BenchmarkRun.verdict).order_by(BenchmarkRun.measured_at.desc(), BenchmarkRun.id.desc()),
                   limit=3)


def _proposals_in(*conditions) -> Select:
    return (select(Proposal.id, Proposal.title, Proposal.submitted_at.label("since"), Call.code.label("call_code"))
            .join(Call, Call.id == Proposal.call_id).where(*conditions)
            .order_by(Proposal.submitted_at.is_(None), Proposal.submitted_at, Proposal.id))


def _assignments(proposal_id, *conditions):
    return (select(func.count()).select_from(ReviewAssignment)
            .where(ReviewAssignment.proposal_id == proposal_id, *conditions).scalar_subquery())


def staff_queue(now: datetime) -> list[QueueEntry]:
    """The peer-review office's and the grant desk's work, each kind with its count and oldest rows."""
    today = now.date()
    needed = case((Call.min_reviewers > 1, Call.min_reviewers), else_=1)
    assigned = _assignments(Proposal.id, ReviewAssignment.has_conflict.is_not(True))
    submitted = _assignments(Proposal.id, ReviewAssignment.submitted_at.is_not(None))
    peer = Call.review_workflow == ReviewWorkflow.FULL
    entries = [
        ("admissibility", _l("Awaiting the admissibility check"),
         _proposals_in(Proposal.state == ProposalState.SUBMITTED, or_(Call.closes_at.is_(None), Call.closes_at <= now))),
        ("technical", _l("Awaiting the technical assessment"), _proposals_in(Proposal.state == ProposalState.ADMISSIBLE)),
        ("reviewers", _l("Reviewers to assign"),
         _proposals_in(Proposal.state.in_((ProposalState.TECHNICALLY_ASSESSED, ProposalState.IN_REVIEW)), peer,
                       assigned < Call.min_reviewers)),
        ("release", _l("Reviews in: release them to the applicants"),
         _proposals_in(Proposal.state == ProposalState.IN_REVIEW, submitted >= needed)),
        ("decisions", _l("Awaiting a decision"),
         _proposals_in(or_(Proposal.state == ProposalState.REPLIED,
                           and_(Proposal.state == ProposalState.REVIEWED, Proposal.reply_deadline <= now),
                           and_(Proposal.state == ProposalState.TECHNICALLY_ASSESSED, ~peer)))),
    ]
    queue = [QueueEntry(key, label, _listed(query), "proposals.detail", "proposal_id") for key, label, query in entries]
    overdue = (select(Proposal.id, Proposal.title, ReviewAssignment.assigned_at.label("since"), User.name.label("who"))
               .join(Proposal, Proposal.id == ReviewAssignment.proposal_id).join(User, User.id == ReviewAssignment.reviewer_id)
               .where(Proposal.state == ProposalState.IN_REVIEW, ReviewAssignment.submitted_at.is_(None),
                      ReviewAssignment.has_conflict.is_not(True), ReviewAssignment.assigned_at < now - REVIEW_PERIOD)
               .order_by(ReviewAssignment.assigned_at, ReviewAssignment.id))
    queue.insert(3, QueueEntry("overdue", _l("Overdue reviews"), _listed(overdue), "proposals.detail", "proposal_id"))
    requests = (select(Grant.id, Grant.title, GrantRequest.created_at.label("since"), Project.code.label("who"),
                       GrantRequest.extra_minutes, GrantRequest.new_end_date)
                .join(Grant, Grant.id == GrantRequest.grant_id).join(Project, Project.id == Grant.project_id)
                .where(GrantRequest.status == RequestStatus.OPEN).order_by(GrantRequest.created_at, GrantRequest.id))
    queue.append(QueueEntry("requests", _l("Top-up and extension requests"), _listed(requests), "grants.detail",
                            "grant_id"))
    late = (select(Grant.id, Grant.title, Grant.end_date.label("since"), Project.code.label("who"))
            .join(Project, Project.id == Grant.project_id).where(_reports_due(today)).order_by(Grant.end_date, Grant.id))
    queue.append(QueueEntry("reports", _l("Late final reports"), _listed(late), "grants.detail", "grant_id"))
    return queue
