from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, HiddenField, IntegerField, PasswordField, SelectField, SelectMultipleField, StringField, widgets
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


class LinkIdentityForm(FlaskForm):
    provider = SelectField(_l("Identity provider"), choices=[], validators=[DataRequired()])
    subject = StringField(_l("Subject"), validators=[DataRequired(), Length(max=255)],
                          description=_l("The provider's identifier of the person (the “sub” claim)."))


class UnlinkIdentityForm(FlaskForm):
    link_id = HiddenField(validators=[DataRequired()])
    force = BooleanField(_l("Even if it is the last way to sign in"))


class DisableUserForm(FlaskForm):
    reason = StringField(_l("Reason"), validators=[DataRequired(), Length(max=500)])


class ConfirmForm(FlaskForm):
    """A button and its CSRF token."""


class ProfileForm(FlaskForm):
    affiliation = StringField(_l("Organisation"), validators=[Length(max=300)])
    country = SelectField(_l("Country of the organisation"), choices=[], validate_choice=False)
    orcid = StringField(_l("ORCID iD"), validators=[Length(max=60)], description=_l("e.g. 0000-0002-1825-0097"))
