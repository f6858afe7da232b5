"""The job form: the project, the partition, a job name, then one field per template parameter.

Every parameter field is plain text (a text area for a script, a select, a checkbox): the values are checked by the
template's schema in :func:`portal.jobs.operations.plan_job`, so the web page, the API and
the command line refuse exactly the same things with the same messages.
"""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice

from portal.jobs.templates import JobTemplate
from portal.projects.models import Project
from portal.sites.models import Partition

PREFIX = "p_"  # parameter fields are p_<name>: no parameter can shadow project, partition, ...


class JobFormBase(FlaskForm):
    project = SelectField(_l("Project"), coerce=int)
    partition = SelectField(_l("Partition"), coerce=int)
    job_name = StringField(_l("Job name"))

    def param_fields(self):
        return [field for field in self if field.name.startswith(PREFIX)]

    def raw_values(self) -> dict:
        return {f.name[len(PREFIX):]: f.data for f in self.param_fields()}

    def attach_errors(self, errors: dict[str, list[str]]) -> list[str]:
        """Put each message next to its field; returns those that belong to no field."""
        rest = []
        for where, messages in errors.items():
            field = self._fields.get(PREFIX + where) or self._fields.get(where)
            if field is None:
                rest.extend(messages)
            else:
                field.errors = list(field.errors or []) + messages
        return rest


def job_form(template: JobTemplate, projects: list[Project], partitions: list[Partition], **kwargs) -> JobFormBase:
    fields = {}
    for param in template.params.values():
        description = param.help
        if param.type == "choice":
            fields[PREFIX + param.name] = SelectField(param.label, choices=[SelectChoice(c, c) for c in param.choices],
                                                      default=param.default, description=description)
        elif param.type == "bool":
            fields[PREFIX + param.name] = BooleanField(param.label, default=bool(param.default),
                                                       description=description)
        elif param.type == "script":
            fields[PREFIX + param.name] = TextAreaField(param.label, default=param.default, description=description,
                                                        render_kw={"rows": 6, "cols": 72, "spellcheck": "false"})
        else:
            fields[PREFIX + param.name] = StringField(param.label, default=None if param.default is None
                                                      else str(param.default), description=description)
    form_class = type(f"JobForm_{template.name}", (JobFormBase,), fields)
    form = form_class(**kwargs)
    form.project.choices = [SelectChoice(p.id, f"{p.code} — {p.title}") for p in projects]
    form.partition.choices = [SelectChoice(p.id, p.label) for p in partitions]
    if not form.job_name.data:
        form.job_name.data = template.name
    return form
