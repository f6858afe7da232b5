"""Loading job templates from folders and rendering them into sbatch scripts.

A template is two files: ``NAME.json`` (title, parameters) and ``NAME.sh.j2`` (the script
body). The portal writes the ``#!`` line and every ``#SBATCH`` line itself from validated
numbers, so a template body may contain neither; parameter values reach the body only
through a sandboxed Jinja environment that shell-quotes every ``{{ ... }}`` it prints.
"""
from __future__ import annotations

import json
import logging
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from portal.jobs.schema import SBATCH_FEEDS, Param, SchemaError, param_from_schema

log = logging.getLogger(__name__)

SHIPPED_DIR = Path(__file__).resolve().parent.parent.parent / "slurm_templates"
KINDS = ("cpu", "gpu")
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_FORBIDDEN_IN_BODY = re.compile(r"^\s*#\s*(SBATCH|!)", re.M | re.I)


class Quoted(str):
    """Text already made safe for the shell; printed as it is."""


def shell_quote(value: Any) -> Quoted:
    if isinstance(value, Quoted):
        return value
    if isinstance(value, bool):
        return Quoted("true" if value else "false")
    return Quoted(shlex.quote(str(value)))


# Every expression a template prints goes through shell_quote: a template that forgets
# the ``sh`` filter is still safe, and ``sh`` documents the intent where it is used.
_ENV = ImmutableSandboxedEnvironment(autoescape=False, undefined=StrictUndefined, finalize=shell_quote,
                                     keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)
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
    forbidden = _FORBIDDEN_IN_BODY.search(source)
    if forbidden:
        line = source.count("\n", 0, forbidden.start()) + 1
        raise _at(SchemaError("the portal writes #! and #SBATCH lines; remove them from the body", line), path)
    try:
        return _ENV.from_string(source)
    except TemplateSyntaxError as exc:
        raise _at(SchemaError(f"Jinja syntax error: {exc.message}", exc.lineno), path) from None


def _at(exc: SchemaError, path: Path) -> SchemaError:
    exc.path = path  # type: ignore[attr-defined]
    return exc


def _line_of(text: str, needle: str) -> int | None:
    index = text.find(needle)
    return text.count("\n", 0, index) + 1 if index >= 0 else None


def render_script(template: JobTemplate, header: list[tuple[str, str]], values: dict[str, Any],
                  context: dict[str, Any]) -> str:
    """The whole script: ``#!``, the given #SBATCH options, env exports, then the body.

    ``header`` values are already validated numbers and names; they are checked again for
    anything that could end a line, so a bug upstream cannot add a directive.
    """
    lines = ["#!/bin/bash"]
    for option, value in header:
        if not re.fullmatch(r"[A-Za-z0-9_.,:%/=+-]+", value):
            raise ValueError(f"refusing #SBATCH {option} value {value!r}")
        lines.append(f"#SBATCH {option}={value}")
    for param in template.params.values():
        if param.env_var:
            lines.append(f"export {param.env_var}={shell_quote(values[param.name])}")
    body = template.body.render(p=values, **context)
    script = "\n".join(lines) + "\n\n" + body
    if _FORBIDDEN_IN_BODY.search(body) or script.count("#SBATCH") != len(header):
        raise ValueError("the rendered body contains #SBATCH or #! lines")
    return script
