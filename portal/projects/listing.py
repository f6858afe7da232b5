"""The projects list: a page at a time, searched and filtered in SQL (web page, CSV and API)."""
from __future__ import annotations

from sqlalchemy import Select, exists, func, or_, select
from sqlalchemy.orm import selectinload

from portal.calls.models import Call
from portal.extensions import db
from portal.grants.models import Grant, GrantAllocation
from portal.identity.models import User
from portal.projects.models import Membership, Project, ProjectRole, ProjectStatus
from portal.proposals.models import Proposal
from portal.sites.models import Partition, Site
from portal.web.listing import PageRequest, like_pattern

FILTERS = ("status", "site", "call")
SORTS = ("code", "newest", "title")


def filtered(viewer: User, page: PageRequest) -> Select:
    """Projects ``viewer`` may see (staff: all; others: their own) matching the search and filters."""
    query = select(Project)
    if not viewer.is_staff:
        query = query.where(exists(select(Membership.id).where(Membership.project_id == Project.id,
                                                               Membership.user_id == viewer.id)))
    if page.search:
        pattern = like_pattern(page.search.lower())
        pi_matches = exists(select(Membership.id).join(User, User.id == Membership.user_id).where(
            Membership.project_id == Project.id, Membership.role == ProjectRole.PI,
            or_(func.lower(User.name).like(pattern, escape="\\"), func.lower(User.email).like(pattern, escape="\\"))))
        query = query.where(or_(func.lower(Project.code).like(pattern, escape="\\"),
                                func.lower(Project.title).like(pattern, escape="\\"),
                                func.lower(Project.slurm_account).like(pattern, escape="\\"), pi_matches))
    f = page.filters
    if f.get("status") in {s.value for s in ProjectStatus}:
        query = query.where(Project.status == ProjectStatus(f["status"]))
    if f.get("site"):
        query = query.where(exists(select(Grant.id).join(GrantAllocation, GrantAllocation.grant_id == Grant.id)
                                   .join(Partition, Partition.id == GrantAllocation.partition_id)
                                   .join(Site, Site.id == Partition.site_id)
                                   .where(Grant.project_id == Project.id, Site.name == f["site"])))
    if f.get("call"):
        query = query.where(exists(select(Proposal.id).join(Call, Call.id == Proposal.call_id).where(
            Proposal.project_id == Project.id, Call.code == f["call"])))
    return query


def ordered(query: Select, page: PageRequest) -> Select:
    """The page's order, made stable by the id.

    A list shows each project's PI, so only the PI's membership is loaded (``project.pi``
    works; ``project.memberships`` of a listed project holds the PI alone): loading every
    team with its people and their roles was most of the page's time.
    """
    order = {"code": (Project.code,), "newest": (Project.created_at.desc(),), "title": (Project.title,)}[page.sort]
    pi_only = selectinload(Project.memberships.and_(Membership.role == ProjectRole.PI))
    return query.options(pi_only.joinedload(Membership.user).lazyload(User.role_grants)).order_by(*order, Project.id)


def filter_choices() -> dict[str, list[str]]:
    return {"status": [s.value for s in ProjectStatus],
            "site": list(db.session.scalars(select(Site.name).order_by(Site.name))),
            "call": list(db.session.scalars(select(Call.code).order_by(Call.code)))}


def csv_row(project: Project) -> tuple:
    pi = project.pi
    return (project.code, project.title, pi.name if pi else "", pi.email if pi else "", project.status.value,
            project.slurm_account or "", len(project.memberships), project.created_at.date())


CSV_HEADER = ("Code", "Title", "PI", "PI e-mail", "Status", "Slurm account", "People", "Created")
