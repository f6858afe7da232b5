"""The staff page that reads and filters the audit log."""
from __future__ import annotations

from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional

from portal.audit.operations import ACTIONS, EventFilter, find_events
from portal.identity.access import staff_required

bp = Blueprint("audit", __name__)

PAGE_SIZE = 100


class AuditFilterForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search form changes nothing

    action = SelectField(_l("Action"), validators=[Optional()])
    actor = StringField(_l("Who"), validators=[Optional(), Length(max=320)])
    since = DateField(_l("From"), validators=[Optional()])
    until = DateField(_l("To"), validators=[Optional()])


@bp.route("/audit")
@staff_required
def index():
    form = AuditFilterForm(request.args)
    form.action.choices = [("", _l("Any"))] + [(key, str(label)) for key, label in ACTIONS.items()]
    page = max(request.args.get("page", 1, type=int), 1)
    events = []
    if form.validate():
        criteria = EventFilter(action=form.action.data or None, actor=(form.actor.data or "").strip() or None,
                               since=form.since.data, until=form.until.data)
        events = find_events(criteria, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    return render_template("audit/index.html", form=form, events=events[:PAGE_SIZE], page=page,
                           has_more=len(events) > PAGE_SIZE, labels=ACTIONS,
                           filters={k: v for k, v in request.args.items() if k != "page"})
