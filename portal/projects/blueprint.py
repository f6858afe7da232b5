from flask import Blueprint, abort, render_template
from flask_login import current_user

from portal.projects.operations import projects_visible_to, visible_project

bp = Blueprint("projects", __name__, url_prefix="/projects")


@bp.route("/")
def index():
    return render_template("projects/index.html", projects=projects_visible_to(current_user))


@bp.route("/<int:project_id>")
def detail(project_id: int):
    # 404, not 403, so the ids of other people's projects reveal nothing.
    project = visible_project(current_user, project_id) or abort(404)
    return render_template("projects/detail.html", project=project)
