from flask import Blueprint, jsonify, render_template
from flask_login import current_user
from sqlalchemy import text

from portal.extensions import db
from portal.identity.access import public
from portal.projects.operations import projects_visible_to

bp = Blueprint("web", __name__)


@bp.route("/")
def index():
    return render_template("index.html", projects=projects_visible_to(current_user))


@bp.route("/healthz")
@public
def health():
    """Liveness for load balancers: the app answers and reaches its database."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")
