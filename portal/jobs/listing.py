"""The jobs list: a page at a time, searched and filtered in SQL (web page, CSV and ``GET /api/jobs``).

States are the ones stored by the reconciler (``last_state``): no list asks Slurm.
Who sees which jobs is the rule of :func:`portal.jobs.operations.jobs_visible_to`: staff all,
everyone else the jobs of the projects they belong to.
"""
from __future__ import annotations

from datetime import datetime, time, timedelta

from sqlalchemy import Select, exists, or_, select
from sqlalchemy.orm import joinedload, lazyload

from portal.extensions import db
from portal.identity.models import User
from portal.jobs.models import SubmittedJob
from portal.projects.models import Membership, Project
from portal.sites.models import Partition
from portal.slurm.types import JobState
from portal.web.listing import PageRequest, matches_any, parse_day

FILTERS = ("state", "project", "partition", "submitted_after", "submitted_before")
SORTS = ("newest", "oldest", "state", "project")


def _visible(query: Select, viewer: User) -> Select:
    if viewer.is_staff:
        return query
    return query.where(exists(select(Membership.id).where(Membership.project_id == SubmittedJob.project_id,
                                                          Membership.user_id == viewer.id)))


def filtered(viewer: User, page: PageRequest) -> Select:
    """Jobs ``viewer`` may see that match the page's search and filters (unordered)."""
    query = _visible(select(SubmittedJob), viewer)
    if page.search:
        user_matches = exists(select(User.id).where(User.id == SubmittedJob.user_id,
                                                    matches_any(page.search, User.name, User.email)))
        query = query.where(or_(matches_any(page.search, SubmittedJob.job_name, SubmittedJob.slurm_job_id,
                                            SubmittedJob.unix_user), user_matches))
    f = page.filters
    if f.get("state"):
        query = query.where(SubmittedJob.last_state == f["state"].upper())
    if f.get("project"):
        query = query.where(SubmittedJob.project_id.in_(select(Project.id).where(Project.code == f["project"])))
    if f.get("partition"):
        query = query.where(SubmittedJob.partition_id.in_(select(Partition.id).where(Partition.name == f["partition"])))
    after, before = parse_day(f.get("submitted_after", "")), parse_day(f.get("submitted_before", ""))
    if after:
        query = query.where(SubmittedJob.submitted_at >= datetime.combine(after, time.min))
    if before:  # the whole day named
        query = query.where(SubmittedJob.submitted_at < datetime.combine(before + timedelta(days=1), time.min))
    return query


def ordered(query: Select, page: PageRequest) -> Select:
    """The page's order, made stable by the job id, with what a row shows loaded in the same query."""
    order = {"newest": (SubmittedJob.id.desc(),), "oldest": (SubmittedJob.id,),
             "state": (SubmittedJob.last_state, SubmittedJob.id.desc()),
             "project": (Project.code, SubmittedJob.id.desc())}[page.sort]
    if page.sort == "project":
        query = query.join(Project, Project.id == SubmittedJob.project_id)
    return query.options(joinedload(SubmittedJob.project), joinedload(SubmittedJob.user),
                         joinedload(SubmittedJob.partition).joinedload(Partition.site),
                         lazyload(SubmittedJob.efficiency)).order_by(*order, SubmittedJob.id.desc())


def filter_choices(viewer: User) -> dict[str, list[str]]:
    """Values offered in the filter menus: the viewer's projects with jobs, partitions (two queries)."""
    with_jobs = _visible(select(SubmittedJob.id).where(SubmittedJob.project_id == Project.id), viewer)
    return {"state": [s.value for s in JobState],
            "project": list(db.session.scalars(select(Project.code).where(exists(with_jobs)).order_by(Project.code))),
            "partition": list(db.session.scalars(select(Partition.name).distinct().order_by(Partition.name)))}


CSV_HEADER = ("Job", "Name", "Template", "Project", "Site", "Partition", "Submitted by", "Unix user", "Account",
              "State", "Reason", "Submitted", "Largest cost (minutes)")


def csv_row(job: SubmittedJob) -> tuple:
    return (job.slurm_job_id, job.job_name, job.template, job.project.code, job.partition.site.name,
            job.partition.name, job.user.name, job.unix_user, job.account, job.last_state, job.last_reason or "",
            job.submitted_at.replace(microsecond=0).isoformat(sep=" "), job.max_cost_minutes)
