from flask import Blueprint, jsonify, render_template
from flask_login import current_user
from sqlalchemy import text

from portal.dashboard.operations import build_dashboard
from portal.extensions import db
from portal.identity.access import public, staff_required
from portal.mailsink.operations import caught_messages, mailbox_exists
from portal.projects import listing as project_listing
from portal.web.listing import PageRequest, paginate

bp = Blueprint("web", __name__)


#: Projects on the dashboard; the projects page lists them all, a page at a time.
DASHBOARD_PROJECTS = 10


@bp.route("/")
def index():
    newest = PageRequest(number=1, size=DASHBOARD_PROJECTS, search="", sort="newest", filters={})
    projects = paginate(project_listing.ordered(project_listing.filtered(current_user, newest), newest), newest)
    return render_template("index.html", projects=projects, board=build_dashboard(current_user),
                           mail_sink_enabled=current_user.is_staff and mailbox_exists())


@bp.route("/mail/caught")
@staff_required
def caught_mail():
    """What the demo's local SMTP sink received (staff only: mail carries people's business)."""
    total, messages = caught_messages()
    return render_template("mailsink/index.html", total=total, messages=messages)


@bp.route("/healthz")
@public
def health():
    """Liveness for load balancers: the app answers and reaches its database."""
    db.session.execute(text("SELECT 1"))
    return jsonify(status="ok")
