from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf import FlaskForm

from portal.clock import utcnow
from portal.projects import listing
from portal.projects.models import ProjectRole
from portal.projects.operations import TeamError, add_member_by_email, remove_member, visible_project
from portal.web.listing import csv_response, page_request, paginate

bp = Blueprint("projects", __name__, url_prefix="/projects")


@bp.route("/")
def index():
    """Projects the signed-in person may see, a page at a time, searchable and filterable."""
    page = page_request(listing.FILTERS, listing.SORTS)
    projects = paginate(listing.ordered(listing.filtered(current_user, page), page), page)
    return render_template("projects/index.html", projects=projects, page=page, choices=listing.filter_choices())


@bp.route("/export.csv")
def export():
    """What the list's filter shows, as CSV."""
    page = page_request(listing.FILTERS, listing.SORTS)
    return csv_response(f"projects-{utcnow().date().isoformat()}.csv", [_(h) for h in listing.CSV_HEADER],
                        listing.ordered(listing.filtered(current_user, page), page), listing.csv_row)


@bp.route("/<int:project_id>")
def detail(project_id: int, status: int = 200):
    # 404, not 403, so the ids of other people's projects reveal nothing.
    project = visible_project(current_user, project_id) or abort(404)
    return render_template("projects/detail.html", project=project, form=FlaskForm(),
                           may_manage=project.can_manage_team(current_user)), status


def _managed_project(project_id: int):
    project = visible_project(current_user, project_id) or abort(404)
    if not project.can_manage_team(current_user):
        abort(403)
    if not FlaskForm().validate_on_submit():
        abort(400)
    return project


@bp.route("/<int:project_id>/members", methods=["POST"])
def add_member(project_id: int):
    project = _managed_project(project_id)
    role = ProjectRole.CO_PI if request.form.get("role") == ProjectRole.CO_PI.value else ProjectRole.MEMBER
    try:
        membership = add_member_by_email(project, current_user, request.form.get("email", ""), role)
    except TeamError as exc:
        flash(str(exc), "error")
        return detail(project_id, status=422)
    flash(_("%(name)s is on the team; Slurm follows in a moment.", name=membership.user.name), "info")
    return redirect(url_for("projects.detail", project_id=project.id))


@bp.route("/<int:project_id>/members/<int:user_id>/remove", methods=["POST"])
def remove(project_id: int, user_id: int):
    project = _managed_project(project_id)
    try:
        remove_member(project, current_user, user_id)
    except TeamError as exc:
        flash(str(exc), "error")
        return detail(project_id, status=409)
    flash(_("Removed from the team; Slurm follows in a moment."), "info")
    return redirect(url_for("projects.detail", project_id=project.id))
