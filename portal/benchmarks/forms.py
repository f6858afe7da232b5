"""Forms of the benchmarks pages: upload a result, start acceptance runs, derive a reference."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DecimalField, IntegerField, SelectField, SelectMultipleField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget


class UploadForm(FlaskForm):
    result = FileField(validators=[FileRequired()])


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def chosen(form, field) -> None:
    """At least one box ticked. (DataRequired would mark every checkbox required in the browser,
    which then refuses the form until all of them are ticked.)"""
    if not field.data:
        raise ValidationError(_l("Choose at least one."))


class StartRunForm(FlaskForm):
    """Choices are filled by the view: the UP partitions of every system, the template's benchmarks."""
    partitions = CheckboxesField(_l("Partitions"), coerce=int, validators=[chosen])
    benchmarks = SelectField(_l("Benchmarks"))
    size = SelectField(_l("Size"), choices=[SelectChoice("quick", _l("quick: up to 64 KiB, few iterations")),
                                            SelectChoice("full", _l("full: 1 B to 16 MiB, full iteration counts"))])
    ntasks = IntegerField(_l("MPI ranks"), default=2, validators=[NumberRange(min=2, max=4096)])
    time_minutes = IntegerField(_l("Time limit (minutes)"), default=10, validators=[NumberRange(min=1, max=1440)])


class DeriveForm(FlaskForm):
    """Runs chosen from the history of one system and partition, and how to band them."""
    class Meta:
        csrf = False  # a GET form that changes nothing: the proposal is only shown

    runs = CheckboxesField(_l("Runs"), coerce=int, validators=[chosen])
    percentile = DecimalField(_l("Band percentile"), default=5, places=None,
                              validators=[Optional(), NumberRange(min=0, max=50)])
    slack = DecimalField(_l("Slack (%)"), default=5, places=None, validators=[Optional(), NumberRange(min=0, max=100)])


class AdoptForm(FlaskForm):
    """The proposal shown, adopted: the same runs and band, derived again on the server."""
    runs = SelectMultipleField(coerce=int, validate_choice=False, validators=[DataRequired()])
    percentile = DecimalField(places=None, validators=[NumberRange(min=0, max=50)])
    slack = DecimalField(places=None, validators=[NumberRange(min=0, max=100)])
    note = TextAreaField(_l("Note (why this reference)"))
