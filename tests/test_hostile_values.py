"""Hostile values on every parameter of every template: none may add a line, a directive or a command.

Parametrised over the templates the portal actually loads, so a new template is covered
the day it is dropped in.
"""
from __future__ import annotations

import shlex
import subprocess

import pytest

from portal.jobs.operations import plan_job
from portal.jobs.templates import SHIPPED_DIR, load_templates, sbatch_directives
from tests.hostile import HOSTILE

TEMPLATES, _PROBLEMS = load_templates([SHIPPED_DIR])
CASES = [(t.name, p.name) for t in TEMPLATES.values() for p in t.params.values()]


def assert_bash_parses(script: str) -> None:
    """bash -n: the script parses (and nothing runs while it is checked)."""
    checked = subprocess.run(["bash", "-n"], input=script, capture_output=True, text=True, timeout=10, check=False)
    assert checked.returncode == 0, checked.stderr


def _partition_for(template) -> str:
    return "gpu" if template.kind == "gpu" else "cpu"


@pytest.mark.parametrize("template_name, param_name", CASES)
def test_hostile_values_on_every_parameter(app_ctx, job_world, template_name, param_name):
    template = TEMPLATES[template_name]
    args = (job_world.user(), template, job_world.project(), job_world.partition(_partition_for(template)))
    baseline = plan_job(*args, {})
    assert baseline.ok, baseline.errors
    assert_bash_parses(baseline.script)
    base_directives = sbatch_directives(baseline.script)
    option = template.params[param_name].sbatch_option or "no option"
    for value in HOSTILE:
        plan = plan_job(*args, {param_name: value})
        if plan.errors:
            assert plan.errors.get(param_name), (value, plan.errors)  # refused at the field, with a reason
        if plan.script is None:
            continue
        # Rendered (the value is harmless for this parameter, or it is the user's own code in a
        # script parameter): sbatch reads the same directives, but for the one this parameter
        # feeds; the value is one shell-quoted word; bash parses the script (bash -n runs nothing).
        directives = sbatch_directives(plan.script)
        assert _without(directives, option) == _without(base_directives, option), value
        assert len([d for d in directives if d.startswith(f"#SBATCH {option}=")]) <= 1
        if template.params[param_name].type != "script":
            assert [line for line in plan.script.splitlines() if line.startswith("#SBATCH")] == directives, value
            assert "\n" not in value and value.isascii() and value.isprintable()
        if not template.params[param_name].sbatch_option:
            assert shlex.quote(value.replace("\r\n", "\n")) in plan.script, value
        assert_bash_parses(plan.script)


def _without(directives: list[str], option: str) -> list[str]:
    return [d for d in directives if not d.startswith((f"#SBATCH {option}=", f"#SBATCH {option}\n"))
            and d != f"#SBATCH {option}"]


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


STAFF_BASH = r'''arr=(a "b c" d)
echo "${#arr[@]} items, last ${arr[${#arr[@]}-1]}, args $#"
{## a template comment ##}
cat > job-note.sh <<'END_NOTE'
#!/bin/bash
#SBATCH --uid=0
echo "a heredoc: $HOME"
END_NOTE
note={{ p.note }}
echo "note: $note"
# #SBATCH --partition=nonexistent  (after the first command: sbatch ignores it)
#SBATCH --partition=nonexistent
if (( ${#arr[@]} > 2 )); then echo "$(printf '%s' "$note")" >/dev/null; fi
'''


def staff_template(tmp_path, body: str, name: str = "staff"):
    (tmp_path / f"{name}.json").write_text(
        '{"params": {"time": {"type": "duration", "default": "5", "feeds": "--time"},'
        ' "note": {"type": "script", "default": "hello"}}}')
    (tmp_path / f"{name}.sh.j2").write_text(body)
    return load_templates([tmp_path])


@pytest.mark.parametrize("note", ["$(id)", "`id`", '"; id; "', "'; id; '", "a\nid\n#SBATCH --uid=0", "${HOME}",
                                  "x" * 10_000, "END_NOTE\nid", "\\", "!!"])
def test_staff_bash_with_array_lengths_heredocs_and_quoted_values(app_ctx, job_world, tmp_path, note):
    templates, problems = staff_template(tmp_path, STAFF_BASH)
    assert problems == []
    plan = plan_job(job_world.user(), templates["staff"], job_world.project(), job_world.partition("cpu"),
                    {"note": note})
    assert plan.ok, plan.errors
    header = [line for line in plan.script.split("\nexport PORTAL_TEMPLATE=")[0].splitlines() if line.startswith("#SBATCH")]
    assert sbatch_directives(plan.script) == header and "--uid" not in "".join(header)
    assert_bash_parses(plan.script)
    # Run the body with a harmless PATH: the value is printed, never run.
    ran = subprocess.run(["bash", "-c", plan.script.split("\n\n", 1)[1]], capture_output=True, text=True,
                         cwd=tmp_path, timeout=10, check=False, env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})
    assert ran.returncode == 0, ran.stderr
    assert f"note: {note}" in ran.stdout and "uid=0(" not in ran.stdout and "gid=" not in ran.stdout
    assert ran.stdout.startswith("3 items, last d, args 0\n")


@pytest.mark.parametrize("body, context", [
    ('echo "note: {{ p.note }}"\n', "a double-quoted string"),
    ("echo 'note: {{ p.note }}'\n", "a single-quoted string"),
    ("cat <<EOF\n{{ p.note }}\nEOF\n", "a heredoc"),
    ("echo `{{ p.note }}`\n", "backticks"),
    ("echo ${x:-{{ p.note }}}\n", "a ${...} expansion"),
    ("echo $(( {{ p.note }} ))\n", "an arithmetic expression"),
    ("echo ok # {{ p.note }}\n", "a comment"),
    ("echo ${{ p.note }}\n", "right after a $"),
])
def test_values_anywhere_but_plain_code_are_refused_with_file_and_line(tmp_path, body, context):
    _templates, problems = staff_template(tmp_path, "echo first\n" + body)
    assert [(p.line, context in p.message) for p in problems] == [(2 + body.startswith("cat"), True)]
    assert problems[0].path.endswith("staff.sh.j2")


def test_a_value_moved_into_quotes_by_a_branch_is_caught_when_rendered(app_ctx, job_world, tmp_path):
    templates, problems = staff_template(tmp_path, '{% if p.note %}"{% else %}"{% endif %}{{ p.note }}"\n')
    assert problems == []  # read as a whole, the quotes balance; the rendered text says otherwise
    with pytest.raises(ValueError, match="landed inside a double-quoted string"):
        plan_job(job_world.user(), templates["staff"], job_world.project(), job_world.partition("cpu"), {})


def test_blocks_that_rewrite_output_are_refused(tmp_path):
    _templates, problems = staff_template(tmp_path, "{% filter replace(\"'\", '') %}{{ p.note }}{% endfilter %}\n")
    assert "FilterBlock blocks are not allowed" in problems[0].message


def test_the_sandbox_refuses_reaching_into_python(app_ctx, job_world, tmp_path):
    (tmp_path / "escape.json").write_text('{"params": {"time": {"type": "duration", "default": "5", "feeds": "--time"}}}')
    (tmp_path / "escape.sh.j2").write_text("{{ p.__class__.__init__.__globals__ }}\n")
    escape, _ = load_templates([tmp_path])
    from jinja2.exceptions import SecurityError, UndefinedError

    with pytest.raises((SecurityError, UndefinedError)):
        plan_job(job_world.user(), escape["escape"], job_world.project(), job_world.partition("cpu"), {})


@pytest.mark.parametrize("text, contexts", [
    ("echo \0", ["code"]),
    ('echo "a $(printf %s \0) b"', ["command substitution"]),
    ("n=${#arr[@]}; echo $# \0", ["code"]),
    ("cat <<END-X\nEND\n\0\nEND-X\n\0", ["a heredoc", "code"]),  # the delimiter is the whole word
    ("cat <<E\"O\"F\n\0\nEOF\n\0", ["a heredoc", "code"]),  # bash removes the delimiter's quotes
    ("cat <<-EOF\n\t\0\n\tEOF\n\0", ["a heredoc", "code"]),
    ("cat <<A <<B\n\0\nA\n\0\nB\n\0", ["a heredoc", "a heredoc", "code"]),
    ("cat <<\0\nx\n", ["a heredoc delimiter"]),
    ("echo a <<< \0", ["code"]),
    ("echo $'it\\'s \0'", ["a $'...' string"]),
    ("if (( n > \0 )); then :; fi", ["an arithmetic expression"]),
    ("echo it\\'s \0 'a # b' \0 # \0", ["code", "code", "a comment"]),
])
def test_where_a_value_lands_in_bash(text, contexts):
    from portal.jobs.shellcontext import landings

    assert [landing.context for landing in landings(text, "\0")] == contexts
