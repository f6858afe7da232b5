"""Job template parameters: what each one is, and turning a submitted value into a safe one.

A parameter's value ends up in a shell script or on an ``#SBATCH`` line, so every value is
checked here before rendering: by type, range and a strict ASCII pattern. Text that only
looks like ASCII (fullwidth ``－－uid``, other look-alikes) is refused with its own message
rather than silently normalised, so what a person typed is what runs or nothing runs.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from flask_babel import lazy_gettext as _l

from portal.problems import Problems

# "script": lines of bash the user writes (their own command); "path": a folder relative to
# the user's job folder, one or more plain names joined by "/" (no "..", nothing absolute).
TYPES = ("int", "str", "choice", "bool", "duration", "script", "path")
# The #SBATCH options a parameter may feed; everything else comes from the portal itself.
# "--array" takes the number of tasks (indices 0..N-1) and "--array-throttle" the %N after it;
# "--output" takes the folder the slurm-%j.out files go to; "--dependency" the ids of the
# user's own jobs this one waits for (afterok); "--mail-type" sends to the portal address.
SBATCH_FEEDS = ("--time", "--nodes", "--ntasks", "--cpus-per-task", "--gpus", "--mem", "--array",
                "--gpus-per-node", "--ntasks-per-node", "--exclusive", "--constraint", "--qos",
                "--dependency", "--mail-type", "--array-throttle", "--chdir", "--output")
FEED_TYPES = {"--exclusive": ("bool",), "--constraint": ("str",), "--qos": ("str", "choice"),
              "--dependency": ("str",), "--mail-type": ("choice",), "--chdir": ("path",), "--output": ("path",)}
NUMBER_TYPES = ("int", "duration")
MAIL_TYPES = {"NONE", "BEGIN", "END", "FAIL", "REQUEUE", "ALL", "TIME_LIMIT", "TIME_LIMIT_90", "ARRAY_TASKS"}
MAX_TEXT = 200  # longest free-text value
MAX_SCRIPT = 20_000  # longest script value (it travels in the job script; argv limits are far above)
_PATH = re.compile(r"(?!.*(^|/)\.\.?(/|$))[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}(/[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}){0,15}")
_INT = re.compile(r"[0-9]{1,9}")
# Minutes, H:MM:SS or D-HH:MM:SS (Slurm's own spellings, without the ambiguous MM:SS).
_DURATION = re.compile(r"(?:(?P<days>[0-9]{1,3})-)?(?P<h>[0-9]{1,4}):(?P<m>[0-5][0-9]):(?P<s>[0-5][0-9])"
                       r"|(?P<minutes>[0-9]{1,6})")
# Free text may not start with '-' (no option injection into the program it is passed to).
DEFAULT_TEXT_PATTERN = r"[A-Za-z0-9_][A-Za-z0-9_.,:+=/-]*"
_TRUE, _FALSE = {"true", "1", "yes", "on", "y"}, {"false", "0", "no", "off", "n", ""}


class ParamError(Problems):
    """A value was refused; the message names the parameter and why."""


class SchemaError(ValueError):
    """A template's schema file is wrong; ``line`` is where, when known."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    label: str
    help: str = ""
    default: Any = None
    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None
    max_length: int = MAX_TEXT
    feeds: str = "var"  # "var", "env:NAME" or an #SBATCH option from SBATCH_FEEDS
    required: bool = True  # False: an empty value is None (the option is left out)
    _compiled: re.Pattern | None = field(default=None, compare=False, repr=False)

    @property
    def sbatch_option(self) -> str | None:
        return self.feeds if self.feeds.startswith("--") else None

    @property
    def env_var(self) -> str | None:
        return self.feeds[4:] if self.feeds.startswith("env:") else None

    def clean(self, raw: Any) -> Any:
        """The value as the script will get it (int, bool or str), or ParamError."""
        if raw is None or raw == "":
            if not self.required and self.default is None:
                return None
            if self.default is None:
                raise ParamError(_l("%(name)s: a value is required", name=self.name))
            raw = self.default
        if self.type == "bool":
            return _clean_bool(self.name, raw)
        if self.type == "script":
            return _clean_script(self.name, raw, self.max_length)
        text = _plain_ascii(self.name, raw, self.max_length if self.type in ("str", "path") else 32)
        if self.type == "int":
            return self._in_range(_clean_int(self.name, text))
        if self.type == "duration":
            return self._in_range(duration_minutes(self.name, text))
        if self.type == "choice":
            if text not in self.choices:
                raise ParamError(_l("%(name)s: %(value)s is not one of %(choices)s",
                                    name=self.name, value=text, choices=", ".join(self.choices)))
            return text
        if self.type == "path":
            if not _PATH.fullmatch(text):
                raise ParamError(_l("%(name)s: %(value)s is not a folder inside your job folder (names of letters,"
                                    " digits and _.+- joined by /; no .., nothing absolute)",
                                    name=self.name, value=text))
            return text
        if not (self._compiled or re.compile(DEFAULT_TEXT_PATTERN)).fullmatch(text):
            raise ParamError(_l("%(name)s: use letters, digits and _.,:+=/- (not starting with -)",
                                name=self.name))
        return text

    def _in_range(self, value: int) -> int:
        unit = " min" if self.type == "duration" else ""
        if self.min is not None and value < self.min:
            raise ParamError(_l("%(name)s: %(value)s%(unit)s is below the template's minimum of %(limit)s%(unit)s",
                                name=self.name, value=value, unit=unit, limit=self.min))
        if self.max is not None and value > self.max:
            raise ParamError(_l("%(name)s: %(value)s%(unit)s exceeds the template's maximum of %(limit)s%(unit)s",
                                name=self.name, value=value, unit=unit, limit=self.max))
        return value


def _plain_ascii(name: str, raw: Any, max_length: int) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        raise ParamError(_l("%(name)s: expected text or a number", name=name))
    text = str(raw)
    if len(text) > max_length:
        raise ParamError(_l("%(name)s: %(length)d characters is longer than the limit of %(limit)d",
                            name=name, length=len(text), limit=max_length))
    if any(unicodedata.category(c)[0] == "C" for c in text):
        raise ParamError(_l("%(name)s: line breaks and control characters are not allowed", name=name))
    if unicodedata.normalize("NFKC", text) != text or not text.isascii():
        raise ParamError(_l("%(name)s: use plain ASCII letters and digits (look-alike characters are refused)",
                            name=name))
    return text


def _clean_script(name: str, raw: Any, max_length: int) -> str:
    """Lines of bash: any printable text and tabs, Unix or Windows line ends (made Unix)."""
    if not isinstance(raw, str):
        raise ParamError(_l("%(name)s: expected text", name=name))
    text = raw.replace("\r\n", "\n")
    if len(text) > max_length:
        raise ParamError(_l("%(name)s: %(length)d characters is longer than the limit of %(limit)d",
                            name=name, length=len(text), limit=max_length))
    if any(unicodedata.category(c)[0] == "C" and c not in "\n\t" for c in text):
        raise ParamError(_l("%(name)s: control characters (other than tabs and line breaks) are not allowed",
                            name=name))
    if not text.strip():
        raise ParamError(_l("%(name)s: a value is required", name=name))
    return text


def _clean_int(name: str, text: str) -> int:
    if not _INT.fullmatch(text):
        raise ParamError(_l("%(name)s: %(value)s is not a whole number", name=name, value=text))
    return int(text)


def _clean_bool(name: str, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).lower() if isinstance(raw, str | int) else None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ParamError(_l("%(name)s: expected true or false", name=name))


def duration_minutes(name: str, text: str) -> int:
    """Minutes in a Slurm duration; seconds round up (Slurm counts whole minutes)."""
    match = _DURATION.fullmatch(text)
    if not match:
        raise ParamError(_l("%(name)s: %(value)s is not a duration (minutes, H:MM:SS or D-HH:MM:SS)",
                            name=name, value=text))
    if match["minutes"] is not None:
        return int(match["minutes"])
    seconds = (int(match["days"] or 0) * 86400 + int(match["h"]) * 3600 + int(match["m"]) * 60
               + int(match["s"]))
    return -(-seconds // 60)


def param_from_schema(name: str, spec: Any) -> Param:
    """Build a Param from one entry of a schema file; SchemaError when it is wrong."""
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
        raise SchemaError(f"parameter name {name!r}: use a-z, 0-9 and _")
    if not isinstance(spec, dict):
        raise SchemaError(f"parameter {name}: expected an object")
    unknown = set(spec) - {"type", "label", "help", "default", "min", "max", "choices", "pattern",
                           "max_length", "feeds", "required"}
    if unknown:
        raise SchemaError(f"parameter {name}: unknown keys {sorted(unknown)}")
    kind = spec.get("type")
    if kind not in TYPES:
        raise SchemaError(f"parameter {name}: unknown type {kind!r} (use one of {', '.join(TYPES)})")
    feeds = spec.get("feeds", "var")
    if not (feeds == "var" or feeds in SBATCH_FEEDS or re.fullmatch(r"env:[A-Z_][A-Z0-9_]{0,63}", str(feeds))):
        raise SchemaError(f"parameter {name}: cannot feed {feeds!r} (var, env:NAME or one of {', '.join(SBATCH_FEEDS)})")
    if feeds in SBATCH_FEEDS and kind not in FEED_TYPES.get(feeds, NUMBER_TYPES):
        raise SchemaError(f"parameter {name}: {feeds} needs a {' or '.join(FEED_TYPES.get(feeds, NUMBER_TYPES))}")
    if feeds == "--mail-type" and not all(set(str(c).split(",")) <= MAIL_TYPES for c in spec.get("choices", ())):
        raise SchemaError(f"parameter {name}: --mail-type choices are lists of {', '.join(sorted(MAIL_TYPES))}")
    pattern = spec.get("pattern")
    try:
        compiled = re.compile(pattern, re.ASCII) if pattern else None
    except re.error as exc:
        raise SchemaError(f"parameter {name}: bad pattern: {exc}") from None
    choices = tuple(str(c) for c in spec.get("choices", ()))
    if kind == "choice" and not choices:
        raise SchemaError(f"parameter {name}: a choice needs choices")
    param = Param(name=name, type=kind, label=str(spec.get("label", name)), help=str(spec.get("help", "")),
                  default=spec.get("default"), min=spec.get("min"), max=spec.get("max"), choices=choices,
                  pattern=pattern, feeds=feeds, required=bool(spec.get("required", True)),
                  max_length=int(spec.get("max_length", MAX_SCRIPT if kind == "script" else MAX_TEXT)),
                  _compiled=compiled)
    if param.default is not None:
        try:
            param.clean(param.default)
        except ParamError as exc:
            raise SchemaError(f"parameter {name}: default is not valid: {exc}") from None
    return param
