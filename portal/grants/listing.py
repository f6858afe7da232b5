"""The grants list: thousands of grants filtered, sorted by risk and totalled in SQL.

Used by the grants page, its CSV export and ``GET /api/grants``. Risk (how far the grant is off
a steady pace) comes from the usage summaries kept on grants and allocations
(:func:`portal.grants.summary.refresh_usage_summaries`), so no list reads the usage ledger.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Integer, Select, and_, cast, exists, func, literal, null, or_, select, union_all
from sqlalchemy.orm import joinedload, selectinload

from portal.calls.models import Call
from portal.extensions import db
from portal.grants import summary
from portal.grants.models import Grant, GrantAllocation, GrantStatus
from portal.identity.models import User
from portal.projects.models import Membership, Project, ProjectRole
from portal.proposals.models import Proposal
from portal.sites.models import Partition, ResourceKind, Site
from portal.web.listing import PageRequest, like_pattern, parse_day

FILTERS = ("status", "site", "partition", "call", "ends_after", "ends_before")
SORTS = ("risk", "end", "project", "start")


def _search(text: str):
    pattern = like_pattern(text.lower())
    pi_matches = exists(select(Membership.id).join(User, User.id == Membership.user_id).where(
        Membership.project_id == Grant.project_id, Membership.role == ProjectRole.PI,
        or_(func.lower(User.name).like(pattern, escape="\\"), func.lower(User.email).like(pattern, escape="\\"))))
    return or_(func.lower(Project.code).like(pattern, escape="\\"), func.lower(Grant.title).like(pattern, escape="\\"),
               func.lower(Project.title).like(pattern, escape="\\"), pi_matches)


def _on_partitions(condition):
    return exists(select(GrantAllocation.id).join(Partition, Partition.id == GrantAllocation.partition_id)
                  .where(GrantAllocation.grant_id == Grant.id, condition))


def filtered(viewer: User, page: PageRequest) -> Select:
    """Grants ``viewer`` may see that match the page's search and filters (unordered)."""
    query = select(Grant)
    if page.search or page.sort == "project":
        # Joined only where a project column is searched or sorted on: the page count of an
        # unfiltered list then reads one index of grants instead of joining 10,000 projects.
        query = query.join(Project, Project.id == Grant.project_id)
    if not viewer.is_staff:
        query = query.where(exists(select(Membership.id).where(Membership.project_id == Grant.project_id,
                                                               Membership.user_id == viewer.id)))
    if page.search:
        query = query.where(_search(page.search))
    f = page.filters
    if f.get("status") in {s.value for s in GrantStatus}:
        query = query.where(Grant.status == GrantStatus(f["status"]))
    if f.get("site"):
        query = query.where(_on_partitions(Partition.site_id.in_(select(Site.id).where(Site.name == f["site"]))))
    if f.get("partition"):
        query = query.where(_on_partitions(Partition.name == f["partition"]))
    if f.get("call"):
        query = query.where(exists(select(Proposal.id).join(Call, Call.id == Proposal.call_id).where(
            Proposal.grant_id == Grant.id, Call.code == f["call"])))
    if parse_day(f.get("ends_after", "")):
        query = query.where(Grant.end_date >= parse_day(f["ends_after"]))
    if parse_day(f.get("ends_before", "")):
        query = query.where(Grant.end_date <= parse_day(f["ends_before"]))
    return query


def ordered(query: Select, page: PageRequest) -> Select:
    """The page's order, made stable by the grant id; rows are (Grant, risk, PI's name).

    Risk is the stored summary (:func:`portal.grants.summary.refresh_usage_summaries`, at
    least hourly), so the default order, furthest off pace first, is read off an index
    (both columns descending, so one backward scan) instead of computed over every grant.
    The PI's name comes as a column: loading every project's team to find its PI made up
    most of a page's time.
    """
    pi_name = (select(User.name).join(Membership, Membership.user_id == User.id)
               .where(Membership.project_id == Grant.project_id, Membership.role == ProjectRole.PI)
               .order_by(Membership.id).limit(1).scalar_subquery())
    query = query.add_columns(Grant.risk_percent.label("risk"), pi_name.label("pi_name")).options(
        joinedload(Grant.project).lazyload(Project.memberships), selectinload(Grant.allocations))
    order = {"risk": (Grant.risk_magnitude.desc(), Grant.id.desc()), "end": (Grant.end_date, Grant.id),
             "start": (Grant.start_date.desc(), Grant.id), "project": (Project.code, Grant.id)}[page.sort]
    return query.order_by(*order)


@dataclass(frozen=True)
class KindTotal:
    kind: ResourceKind
    awarded_hours: float
    used_hours: float


def count_and_totals(query: Select, viewer: User, page: PageRequest) -> tuple[int, list[KindTotal]]:
    """How many grants ``query`` matches, and their awarded and used hours per resource kind.

    Staff with no search or filter see every grant: the count and the sums are the facility
    totals that triggers keep (:func:`portal.grants.summary.facility_totals`), a few rows
    instead of 20,000 allocations. Otherwise the search
    (LIKE over codes, titles and the PI's name) is worked out once, in a CTE that both the
    count and the sums read in one statement; counting and summing separately ran it twice
    over every grant.
    """
    if viewer.is_staff and not page.search and not any(page.filters.values()):
        facility = summary.facility_totals()
        count = facility.get("grants", 0)
        rows = [(kind, facility.get(f"{kind.value}.awarded_minutes", 0), facility.get(f"{kind.value}.used_seconds", 0))
                for kind in ResourceKind]
        rows = [(kind, minutes, seconds) for kind, minutes, seconds in rows if minutes or seconds]
    else:
        sums = select(GrantAllocation.resource_kind, func.sum(GrantAllocation.awarded_minutes),
                      func.sum(GrantAllocation.used_seconds))
        matched = query.with_only_columns(Grant.id).order_by(None).cte("matched")
        # The sums come first in the UNION so that its kind column is read as a ResourceKind;
        # the count is the row whose kind is NULL.
        summed = sums.add_columns(cast(null(), Integer)).where(GrantAllocation.grant_id.in_(select(matched.c.id))) \
            .group_by(GrantAllocation.resource_kind)
        counted = select(null(), null(), null(), func.count()).select_from(matched)
        result = list(db.session.execute(union_all(summed, counted)))
        count = next(n for kind, _, _, n in result if kind is None)
        rows = [(kind, minutes, seconds) for kind, minutes, seconds, _ in result if kind is not None]
    totals = sorted((KindTotal(kind, (minutes or 0) / 60, (seconds or 0) / 3600) for kind, minutes, seconds in rows),
                    key=lambda t: t.kind.value)
    return count, totals


@dataclass(frozen=True)
class PoolUse:
    kind: ResourceKind
    partitions: tuple[str, ...]
    awarded_hours: float
    used_hours: float

    @property
    def percent_used(self) -> float:
        return 100 * self.used_hours / self.awarded_hours if self.awarded_hours else 0.0


def pools_of(grant: Grant) -> list[PoolUse]:
    """The grant's pools from its (already loaded) allocations' summaries: no query."""
    return [PoolUse(kind, tuple(a.partition.name for a in allocations),
                    sum(a.awarded_minutes for a in allocations) / 60,
                    sum(a.used_seconds for a in allocations) / 3600)
            for (_, kind), allocations in summary.pools_of(grant).items()]


def hours_of(grant: Grant, kind: ResourceKind) -> tuple[float, float]:
    allocations = [a for a in grant.allocations if a.resource_kind is kind]
    return (sum(a.awarded_minutes for a in allocations) / 60, sum(a.used_seconds for a in allocations) / 3600)


def filter_choices() -> dict[str, list[str]]:
    """Values offered in the filter menus (sites, partitions, calls), in one round trip."""
    menus = union_all(
        select(literal("site").label("menu"), Site.name.label("value")),
        select(literal("partition"), Partition.name).distinct(),
        select(literal("call"), Call.code).where(exists(select(Proposal.id).where(
            and_(Proposal.call_id == Call.id, Proposal.grant_id.is_not(None)))))).subquery()
    choices: dict[str, list[str]] = {"status": [s.value for s in GrantStatus], "site": [], "partition": [], "call": []}
    for menu, value in db.session.execute(select(menus.c.menu, menus.c.value).order_by(menus.c.menu, menus.c.value)):
        choices[menu].append(value)
    return choices
