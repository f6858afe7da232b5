"""Forms of the proposal pages. They check types and CSRF; the rules live in the operations."""
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, DateField, EmailField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Optional

from portal.projects.models import ProjectRole


class ProposalForm(FlaskForm):
    title = StringField(_l("Title"))
    abstract = TextAreaField(_l("Abstract"))
    field_of_science = StringField(_l("Field of science"))
    track = SelectField(_l("Track"), choices=[])
    justification = TextAreaField(_l("Justification of the resources"))
    code_description = TextAreaField(_l("Code and technical readiness"),
                                     description=_l("Which codes, how they are parallelised, where they ran."))
    scaling_evidence = TextAreaField(_l("Scaling evidence"),
                                     description=_l("Nodes or GPUs against time or speed-up, or upload a file."))
    storage_tib = StringField(_l("Storage (TiB)"))
    evidence = FileField(_l("Scaling evidence file"),
                         description=_l("PDF, CSV, text, JSON, PNG or JPEG; at most 10 MiB."))


class InviteForm(FlaskForm):
    email = EmailField(_l("E-mail"))
    role = SelectField(_l("Role"), choices=[SelectChoice(ProjectRole.CO_PI.value, _l("Co-PI")),
                                            SelectChoice(ProjectRole.MEMBER.value, _l("Member"))])


class ActionForm(FlaskForm):
    """A button: CSRF only."""


YES_NO = [SelectChoice("yes", _l("Yes")), SelectChoice("no", _l("No"))]


class AdmissibilityForm(FlaskForm):
    admissible = SelectField(_l("Admissible"), choices=YES_NO)
    comment = TextAreaField(_l("Comment"))


class TechnicalForm(FlaskForm):
    feasible = SelectField(_l("Technically feasible"), choices=YES_NO)
    comment = TextAreaField(_l("Comment"))


class AssignForm(FlaskForm):
    reviewer = SelectField(_l("Reviewer"), coerce=int, choices=[])


class ReplyForm(FlaskForm):
    reply = TextAreaField(_l("Your reply to the reviews"))


class AwardForm(FlaskForm):
    start_date = DateField(_l("Start"), validators=[Optional()])
    end_date = DateField(_l("End"), validators=[Optional()])
    confirm_over_award = BooleanField(_l("Award even beyond what the call offers (over-award)"))


class RejectForm(FlaskForm):
    feedback = TextAreaField(_l("Feedback to the applicants"))
