"""Hostile values on every parameter of every template: none may add a line, a directive or a command.

Parametrised over the templates the portal actually loads, so a new template is covered
the day it is dropped in.
"""
from __future__ import annotations

import shlex

import pytest

from portal.jobs.operations import plan_job
from portal.jobs.templates import SHIPPED_DIR, load_templates
from tests.test_jobs_fixtures import job_world  # noqa: F401  (fixture)

HOSTILE = [
    "1\n#SBATCH --uid=0",
    "x\nrm -rf ~",
    "5\r\nid",
    "$(id)",
    "`id`",
    "a;id",
    "a && id",
    "a|id",
    "--uid=0",
    "-1",
    "x" * 5000,
    "9" * 40,
    "－－uid=0",  # fullwidth hyphen-minus look-alikes
    "１０",  # fullwidth digits: int() would accept them
    "ｓｔａｔｉｃ",  # a fullwidth spelling of a valid choice
    "stаtic",  # Cyrillic а inside a valid choice
    "a\x00b",
    "a\x1bb",
    "tab\there",
    "\u202eevil",  # right-to-left override
    "static ",
    "true; id",
    "5 --uid=0",
    "'; id; '",
    '"; id; "',
    "${HOME}",
    "~root",
    "../../etc/passwd",
]
TEMPLATES, _PROBLEMS = load_templates([SHIPPED_DIR])
CASES = [(t.name, p.name) for t in TEMPLATES.values() for p in t.params.values()]


def _partition_for(template) -> str:
    return "gpu" if template.kind == "gpu" else "cpu"


@pytest.mark.parametrize("template_name, param_name", CASES)
def test_hostile_values_on_every_parameter(app_ctx, job_world, template_name, param_name):
    template = TEMPLATES[template_name]
    args = (job_world.user(), template, job_world.project(), job_world.partition(_partition_for(template)))
    baseline = plan_job(*args, {})
    assert baseline.ok, baseline.errors
    base_lines = baseline.script.splitlines()
    base_header = [line for line in base_lines if line.startswith("#")]
    for value in HOSTILE:
        plan = plan_job(*args, {param_name: value})
        if plan.errors:
            assert plan.errors.get(param_name), (value, plan.errors)  # refused at the field, with a reason
            assert plan.script is None
            continue
        # Accepted (a harmless value for this parameter): same lines, same directives,
        # and the value appears only in its shell-quoted form.
        lines = plan.script.splitlines()
        assert len(lines) == len(base_lines), value
        assert [line for line in lines if line.startswith("#")] == base_header, value
        assert "\n" not in value and value.isascii() and value.isprintable()
        assert value in plan.script and shlex.quote(value) in plan.script, value


@pytest.mark.parametrize("value", [v for v in HOSTILE if v != "9" * 40])  # 40 digits is a fine name
def test_hostile_job_names_are_refused(app_ctx, job_world, value):
    plan = plan_job(job_world.user(), TEMPLATES["serial"], job_world.project(), job_world.partition("cpu"), {}, value)
    assert plan.errors.get("job_name") == ["job name: 1-64 letters, digits and _.+-, not starting with . + or -"]
    assert all("#SBATCH --job-name=serial" == line for line in plan.script.splitlines() if "--job-name" in line)


def test_a_template_that_forgets_to_quote_still_quotes(app_ctx, job_world, tmp_path):
    (tmp_path / "careless.json").write_text(
        '{"params": {"time": {"type": "duration", "default": "5", "feeds": "--time"},'
        ' "word": {"type": "str", "default": "a", "pattern": "[A-Za-z;$() ]+"}}}')
    (tmp_path / "careless.sh.j2").write_text("echo {{ p.word }}\n")
    careless, problems = load_templates([tmp_path])
    assert problems == []
    plan = plan_job(job_world.user(), careless["careless"], job_world.project(), job_world.partition("cpu"),
                    {"word": "a; $(id)"})
    assert plan.ok
    assert plan.script.endswith("\necho 'a; $(id)'\n")


def test_the_sandbox_refuses_reaching_into_python(app_ctx, job_world, tmp_path):
    (tmp_path / "escape.json").write_text('{"params": {"time": {"type": "duration", "default": "5", "feeds": "--time"}}}')
    (tmp_path / "escape.sh.j2").write_text("{{ p.__class__.__init__.__globals__ }}\n")
    escape, _ = load_templates([tmp_path])
    from jinja2.exceptions import SecurityError, UndefinedError

    with pytest.raises((SecurityError, UndefinedError)):
        plan_job(job_world.user(), escape["escape"], job_world.project(), job_world.partition("cpu"), {})
