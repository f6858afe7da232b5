from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice

SCORES = [SelectChoice("", "—")] + [SelectChoice(str(n), str(n)) for n in range(1, 6)]


class ConflictForm(FlaskForm):
    conflict = SelectField(_l("Conflict of interest"),
                           choices=[SelectChoice("none", _l("I have no conflict of interest with this proposal")),
                                    SelectChoice("conflict", _l("I have a conflict of interest"))])
    note = TextAreaField(_l("Note for staff (optional)"))


class ReviewForm(FlaskForm):
    score_excellence = SelectField(_l("Excellence (1-5)"), choices=SCORES)
    score_impact = SelectField(_l("Impact (1-5)"), choices=SCORES)
    score_implementation = SelectField(_l("Implementation (1-5)"), choices=SCORES)
    comment_applicant = TextAreaField(_l("Comments for the applicants"))
    comment_committee = TextAreaField(_l("Comments for the committee only"))
