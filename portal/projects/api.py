from flask_login import current_user
from flask_smorest import Blueprint, abort

from portal.api.schemas import ProjectSchema
from portal.projects.operations import projects_visible_to, visible_project

blp = Blueprint("api_projects", __name__, description="Projects the caller may see")


@blp.route("")
@blp.response(200, ProjectSchema(many=True))
def list_projects():
    """Projects the caller belongs to (staff: all projects)."""
    return projects_visible_to(current_user)


@blp.route("/<int:project_id>")
@blp.response(200, ProjectSchema)
def get_project(project_id: int):
    return visible_project(current_user, project_id) or abort(404)
