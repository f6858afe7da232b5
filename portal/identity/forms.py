from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, IntegerField, PasswordField, SelectField, SelectMultipleField, StringField, widgets
from wtforms.validators import DataRequired, Email, Length, NumberRange, Optional, Regexp


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[DataRequired(), Email(), Length(max=320)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class UserRolesForm(FlaskForm):
    roles = SelectMultipleField(_l("Roles"), option_widget=widgets.CheckboxInput(),
                                widget=widgets.ListWidget(prefix_label=False))
    unix_username = StringField(
        _l("Unix / Slurm user name"),
        validators=[Optional(), Length(max=32),
                    Regexp(r"^[a-z_][a-z0-9_-]{0,31}$",
                           message=_l("Lower-case letters, digits, '-' and '_', starting with a letter or '_'."))],
    )


class TokenForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)],
                       description=_l("What the token is for, e.g. “laptop CLI”."))
    scope = SelectField(_l("Scope"), choices=[])
    days = IntegerField(_l("Valid for (days)"), default=30, validators=[DataRequired(), NumberRange(min=1, max=365)])
