"""Extension and top-up requests (the PI asks, staff decide) and final reports."""
from __future__ import annotations

from datetime import date, timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload

from portal.clock import utcnow
from portal.extensions import db
from portal.grants.models import FinalReport, Grant, GrantRequest, GrantStatus, RequestStatus
from portal.grants.operations import GrantConflict, GrantError, _audit, add_minutes, extend_grant, hours_to_minutes
from portal.identity.models import User
from portal.mail import queue_mail_to
from portal.sites.models import Partition

REPORT_DUE_AFTER = timedelta(days=61)  # "within two months of the end"
MAX_REPORT_BYTES = 20 * 1024 * 1024


def can_manage(grant: Grant, user: User) -> bool:
    return grant.project.can_manage_team(user)


def ask_for_change(grant: Grant, user: User, *, reason: str, hours: float = 0, partition: Partition | None = None,
                   new_end_date: date | None = None) -> GrantRequest:
    """A PI asks for more hours on one partition and/or a later end; flushes."""
    reason = (reason or "").strip()
    if not reason:
        raise GrantError(_("Say why the grant needs the change."))
    if not hours and new_end_date is None:
        raise GrantError(_("Ask for more hours, a later end date, or both."))
    if hours and (partition is None or grant.allocation_for(partition) is None):
        raise GrantError(_("Choose a partition of this grant for the extra hours."))
    if new_end_date is not None and new_end_date <= grant.end_date:
        raise GrantError(_("The new end date must be after %(end)s.", end=grant.end_date.isoformat()))
    request = GrantRequest(grant=grant, requested_by_id=user.id, partition_id=partition.id if hours and partition else None,
                           extra_minutes=hours_to_minutes(hours or 0), new_end_date=new_end_date, reason=reason)
    db.session.add(request)
    db.session.flush()
    _audit("grant.change_requested", grant, user, {"request": request.id, "minutes": request.extra_minutes,
                                                   "end": new_end_date.isoformat() if new_end_date else None})
    return request


def decide_request(request: GrantRequest, staff: User, *, approve: bool) -> GrantRequest:
    """Staff approve (the allocation and/or end change; Slurm follows) or refuse; flushes.

    Of two staff deciding the same request at once, exactly one decision takes effect; the
    other gets :class:`GrantConflict` and changes nothing.
    """
    status = RequestStatus.APPROVED if approve else RequestStatus.REFUSED
    # Compare-and-set before the top-up or extension: the UPDATE finds the request open in one
    # transaction only (a concurrent one waits for the row, then finds it decided). Works the
    # same on SQLite and PostgreSQL; the status loaded earlier is never trusted.
    claimed = db.session.execute(
        update(GrantRequest).where(GrantRequest.id == request.id, GrantRequest.status == RequestStatus.OPEN)
        .values(status=status, decided_by_id=staff.id, decided_at=utcnow())
        .execution_options(synchronize_session=False)).rowcount
    db.session.refresh(request)
    if claimed != 1:
        raise GrantConflict(_("Request %(id)d was already %(status)s; nothing was changed.",
                              id=request.id, status=_(request.status.value)))
    grant = request.grant
    if approve:
        if request.extra_minutes and request.partition_id:
            allocation = next(a for a in grant.allocations if a.partition_id == request.partition_id)
            add_minutes(allocation, request.extra_minutes, staff)
        if request.new_end_date:
            extend_grant(grant, request.new_end_date, staff)
    _audit("grant.change_decided", grant, staff, {"request": request.id, "status": request.status.value})
    if request.requested_by is not None:
        queue_mail_to(request.requested_by.email, lambda: (  # in the requester's language
            _("Your request for grant \"%(title)s\" was %(status)s", title=grant.title, status=_(request.status.value)),
            _("Staff %(status)s your request: %(reason)s", status=_(request.status.value), reason=request.reason)))
    return request


def open_requests() -> list[GrantRequest]:
    return list(db.session.scalars(select(GrantRequest).where(GrantRequest.status == RequestStatus.OPEN)
                                   .options(joinedload(GrantRequest.grant).joinedload(Grant.project))
                                   .order_by(GrantRequest.created_at)))


def requests_of(grant: Grant) -> list[GrantRequest]:
    return list(db.session.scalars(select(GrantRequest).where(GrantRequest.grant_id == grant.id)
                                   .order_by(GrantRequest.created_at.desc())))


def report_due(grant: Grant) -> date:
    return grant.end_date + REPORT_DUE_AFTER


def upload_final_report(grant: Grant, user: User, *, filename: str, content_type: str, content: bytes) -> FinalReport:
    """Store (or replace) the final report; a grant past its end is then closed. Flushes."""
    if not content:
        raise GrantError(_("The file is empty."))
    if len(content) > MAX_REPORT_BYTES:
        raise GrantError(_("The file is larger than 20 MB."))
    report = db.session.scalar(select(FinalReport).where(FinalReport.grant_id == grant.id))
    if report is None:
        report = FinalReport(grant_id=grant.id)
        db.session.add(report)
    report.uploaded_by_id, report.filename = user.id, (filename or "report")[-255:]
    report.content_type, report.content, report.uploaded_at = (content_type or "application/octet-stream")[:100], content, utcnow()
    if grant.status is GrantStatus.EXPIRED:
        grant.status = GrantStatus.CLOSED
    db.session.flush()
    _audit("grant.report_uploaded", grant, user, {"file": report.filename, "bytes": len(content)})
    return report


def final_report_of(grant: Grant) -> FinalReport | None:
    return db.session.scalar(select(FinalReport).where(FinalReport.grant_id == grant.id))


def reports_overview(today: date | None = None) -> list[tuple[Grant, date, FinalReport | None, bool]]:
    """Every ended grant: (grant, due date, report or None, late?) — the late ones first."""
    today = today or utcnow().date()
    reports = {r.grant_id: r for r in db.session.scalars(select(FinalReport))}
    rows = []
    for grant in db.session.scalars(select(Grant).where(Grant.end_date <= today).order_by(Grant.end_date)):
        report = reports.get(grant.id)
        rows.append((grant, report_due(grant), report, report is None and today > report_due(grant)))
    return sorted(rows, key=lambda row: (not row[3], row[1]))

