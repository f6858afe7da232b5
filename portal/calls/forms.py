from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DateTimeLocalField, IntegerField, SelectField, SelectMultipleField, StringField, TextAreaField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from portal.calls.models import ReviewWorkflow, Track


class CallForm(FlaskForm):
    """Field types only: the rules (and their messages) are in :func:`portal.calls.operations.create_call`."""

    code = StringField(_l("Code"), description=_l("Prefix of the project codes, e.g. “reg-2027-1”."))
    title = StringField(_l("Title"))
    description = TextAreaField(_l("Description"))
    access_mode = SelectField(_l("Access mode"), coerce=int, choices=[])
    review_workflow = SelectField(_l("Review"), choices=[SelectChoice("", _l("The access mode's default"))]
                                  + [SelectChoice(w.value, w.label) for w in ReviewWorkflow])
    tracks = SelectMultipleField(_l("Tracks"), choices=[SelectChoice(t.value, t.label) for t in Track],
                                 option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False))
    eligible_countries = StringField(_l("Eligible countries"),
                                     description=_l("ISO codes separated by commas, e.g. “PL, LT”; empty: any."))
    opens_at = DateTimeLocalField(_l("Opens (UTC)"), format="%Y-%m-%dT%H:%M", validators=[Optional()])
    closes_at = DateTimeLocalField(_l("Cut-off (UTC)"), format="%Y-%m-%dT%H:%M", validators=[Optional()],
                                   description=_l("Leave empty for a continuous call."))
    allocation_start = DateField(_l("Allocation starts"), validators=[Optional()])
    allocation_end = DateField(_l("Allocation ends"), validators=[Optional()])
    min_reviewers = IntegerField(_l("Reviewers per proposal"), default=2, validators=[Optional()])
