"""Loading job templates from folders and rendering them into sbatch scripts.

A template is two files: ``NAME.json`` (title, parameters) and ``NAME.sh.j2`` (the script
body). The portal writes the ``#!`` line, every ``#SBATCH`` line and one first command
(``export PORTAL_TEMPLATE=NAME``) itself, from validated values. sbatch reads directives only
until the first command, so nothing in the body, whatever staff or users write, can add one;
:func:`sbatch_directives` reads a script the way sbatch does and every render is checked
with it. A body may therefore hold ``#!/bin/bash`` in a heredoc or ``#SBATCH`` in a comment
further down; only leading comment lines that look like directives are refused, because
they would mislead the reader.

Syntax: Jinja with ``{{ value }}`` and ``{% block %}`` as usual, but comments are
``{## ... ##}``. Jinja's default ``{# ... #}`` collides with bash (``${#arr[@]}``, ``$#``);
``{##`` and ``##}`` do not occur in ordinary bash. ``{{`` and ``{%`` do not either outside
quoted strings (where a template needs them literally, ``{% raw %}`` still works). Line
statements are off.

Quoting: every ``{{ ... }}`` prints one shell-quoted word (``shlex.quote``), which is only a
single word where bash reads plain code. A value inside a double- or single-quoted string, a
heredoc, a comment, backticks, ``${...}`` or arithmetic would not be (``"$(id)"`` inside
double quotes runs). So a template whose values land anywhere but in plain code is refused
at load time with the file and line (see :mod:`portal.jobs.shellcontext`), and every render
is checked again on the rendered text. Put the value outside the quotes
(``echo "note: "{{ p.note }}``) or in a variable first (``note={{ p.note }}``, then
``"$note"``).
"""
from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from portal.jobs.schema import SBATCH_FEEDS, Param, SchemaError, param_from_schema
from portal.jobs.shellcontext import landings
from portal.shipped import shipped_folder

log = logging.getLogger(__name__)

SHIPPED_DIR = shipped_folder("slurm_templates")
KINDS = ("cpu", "gpu")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_LOOKS_LIKE_DIRECTIVE = re.compile(r"\s*#\s*(SBATCH|!)", re.I)
_HEADER_VALUE = re.compile(r"[A-Za-z0-9_.,:%/=+@&|-]+")
MARK = "\0"  # put before every printed value while rendering; values never hold NUL
# Block tags that rewrite rendered text (and could strip a value's quotes) are not allowed.
_REFUSED_NODES = (nodes.FilterBlock, nodes.Macro, nodes.CallBlock, nodes.AssignBlock)


class Quoted(str):
    """Text already made safe for the shell; printed as it is."""


def shell_quote(value: Any) -> Quoted:
    if isinstance(value, Quoted):
        return value
    if isinstance(value, bool):
        return Quoted("true" if value else "false")
    return Quoted(shlex.quote(str(value)))


def _marked(value: Any) -> str:
    return MARK + shell_quote(value)


# Every expression a template prints goes through shell_quote: a template that forgets
# the ``sh`` filter is still safe, and ``sh`` documents the intent where it is used.
_ENV = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined, finalize=_marked,
                                     keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                                     comment_start_string="{##", comment_end_string="##}")
_ENV.filters["sh"] = shell_quote


@dataclass(frozen=True)
class JobTemplate:
    name: str
    title: str
    description: str
    kind: str  # "cpu" or "gpu": which partitions it is offered on
    params: dict[str, Param]
    fixed: dict[str, int]  # #SBATCH options the template pins, e.g. {"--gpus": 1}
    source: str  # the schema file, for messages
    body: Any = field(repr=False)  # the compiled Jinja template


@dataclass(frozen=True)
class TemplateProblem:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}" if self.line else f"{self.path}: {self.message}"


def load_templates(folders: list[Path]) -> tuple[dict[str, JobTemplate], list[TemplateProblem]]:
    """Templates from each folder in turn (a later folder's template replaces an earlier one's)."""
    templates: dict[str, JobTemplate] = {}
    problems: list[TemplateProblem] = []
    for folder in folders:
        if not folder.is_dir():
            if str(folder):
                problems.append(TemplateProblem(str(folder), None, "not a folder"))
            continue
        for schema_path in sorted(folder.glob("*.json")):
            try:
                template = load_template(schema_path)
            except SchemaError as exc:
                problems.append(TemplateProblem(str(getattr(exc, "path", schema_path)), exc.line, str(exc)))
                log.warning("job template refused %s:%s: %s", schema_path, exc.line, exc)
                continue
            templates[template.name] = template
    return templates, problems


def load_template(schema_path: Path) -> JobTemplate:
    name = schema_path.name.removesuffix(".json")
    if not _NAME.fullmatch(name):
        raise SchemaError(f"template name {name!r}: use a-z, 0-9, _ and -")
    text = schema_path.read_text(encoding="utf-8")
    try:
        spec = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SchemaError(f"not valid JSON: {exc.msg}", exc.lineno) from None
    if not isinstance(spec, dict):
        raise SchemaError("expected a JSON object")
    unknown = set(spec) - {"title", "description", "kind", "params", "fixed"}
    if unknown:
        raise SchemaError(f"unknown keys {sorted(unknown)}")
    params: dict[str, Param] = {}
    for param_name, param_spec in (spec.get("params") or {}).items():
        try:
            params[param_name] = param_from_schema(param_name, param_spec)
        except SchemaError as exc:
            raise SchemaError(str(exc), exc.line or _line_of(text, f'"{param_name}"')) from None
    feeds = [p.sbatch_option for p in params.values() if p.sbatch_option]
    if "--time" not in feeds or len(feeds) != len(set(feeds)):
        raise SchemaError("exactly one parameter must feed --time, and each #SBATCH option at most one")
    fixed = spec.get("fixed") or {}
    if not all(k in SBATCH_FEEDS and k not in feeds and isinstance(v, int) and v >= 1 for k, v in fixed.items()):
        raise SchemaError(f"fixed: give #SBATCH options from {', '.join(SBATCH_FEEDS)} not fed by a parameter, "
                          "with whole numbers >= 1", _line_of(text, '"fixed"'))
    kind = spec.get("kind", "cpu")
    if kind not in KINDS:
        raise SchemaError(f"kind {kind!r}: use cpu or gpu", _line_of(text, '"kind"'))
    body_path = schema_path.with_name(f"{name}.sh.j2")
    body = _compile_body(body_path)
    return JobTemplate(name=name, title=str(spec.get("title", name)), description=str(spec.get("description", "")),
                       kind=kind, params=params, fixed=dict(fixed), source=str(schema_path), body=body)


def _compile_body(path: Path) -> Any:
    try:
        source = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _at(SchemaError(f"script body missing: {exc.strerror}"), path) from None
    if MARK in source:
        raise _at(SchemaError("the body contains a NUL byte"), path)
    line = _leading_directive(source)
    if line:
        raise _at(SchemaError("the portal writes #! and #SBATCH lines; remove them from the body", line), path)
    try:
        tree = _ENV.parse(source)
        refused = next(iter(tree.find_all(_REFUSED_NODES)), None)
        if refused is not None:
            raise _at(SchemaError(f"{type(refused).__name__} blocks are not allowed in job templates "
                                  "(they could change a value's quoting)", refused.lineno), path)
        for line, context in _unsafe_value_lines(source):
            raise _at(SchemaError(f"a {{{{ }}}} value sits inside {context}, where a quoted word is not safe;"
                                  " put it outside the quotes or in a variable first (x={{{{ p.x }}}}, then \"$x\")",
                                  line), path)
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise _at(SchemaError(f"Jinja syntax error: {exc.message}", exc.lineno), path) from None


def _leading_directive(source: str) -> int | None:
    """The line of a #! or #SBATCH-like line before the body's first command, if any."""
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and not stripped.startswith("{##"):
            return None
        if _LOOKS_LIKE_DIRECTIVE.match(line):
            return number
    return None


def _unsafe_value_lines(source: str) -> list[tuple[int, str]]:
    """(line, context) of every {{ }} of the source that would land outside plain code.

    Reads the template's text as if every branch were taken, which is what a reader sees;
    the exact rendered text is checked again at every render.
    """
    text, lines = [], []
    for lineno, token, value in _ENV.lex(source):
        if token == "data":
            text.append(value)
        elif token == "variable_begin":
            text.append(MARK)
            lines.append(lineno)
    found = landings("".join(text), MARK)
    return [(line, landing.context) for line, landing in zip(lines, found) if not landing.safe]


def _at(exc: SchemaError, path: Path) -> SchemaError:
    exc.path = path  # type: ignore[attr-defined]
    return exc


def _line_of(text: str, needle: str) -> int | None:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else None


def render_script(template: JobTemplate, header: list[tuple[str, str | None]], values: dict[str, Any],
                  context: dict[str, Any]) -> str:
    """The whole script: ``#!``, the given #SBATCH options, the portal's first command, env
    exports, then the body.

    ``header`` values are already validated numbers and names; they are checked again for
    anything that could end a line, so a bug upstream cannot add a directive. The rendered
    script is read back as sbatch reads it and must carry exactly ``header``.
    """
    lines = ["#!/bin/bash"]
    for option, value in header:
        if value is None:
            lines.append(f"#SBATCH {option}")
        elif _HEADER_VALUE.fullmatch(value):
            lines.append(f"#SBATCH {option}={value}")
        else:
            raise ValueError(f"refusing #SBATCH {option} value {value!r}")
    lines.append(f"export PORTAL_TEMPLATE={template.name}")  # the first command: no directive after it
    for param in template.params.values():
        if param.env_var and values[param.name] is not None:
            lines.append(f"export {param.env_var}={shell_quote(values[param.name])}")
    body = template.body.render(p=values, **context)
    unsafe = [landing.context for landing in landings(body, MARK) if not landing.safe]
    if unsafe:
        raise ValueError(f"template {template.name}: a value landed inside {unsafe[0]}")
    script = "\n".join(lines) + "\n\n" + body.replace(MARK, "")
    if sbatch_directives(script) != lines[1:1 + len(header)]:
        raise ValueError("the rendered script's #SBATCH directives differ from the portal's header")
    return script


def sbatch_directives(script: str) -> list[str]:
    """The #SBATCH lines sbatch would read: those before the first line that is neither
    blank nor a comment (Slurm's ``_get_next_line`` loop in sbatch/opt.c)."""
    found = []
    for line in script.split("\n")[1:]:
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            break
        if line.startswith("#SBATCH"):
            found.append(line)
    return found
