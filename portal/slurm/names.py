"""Strict validation of everything that ends up in a scheduler command line.

Values travel as separate argv items (never through a shell), but sacctmgr and sbatch parse
their own arguments: a space, comma, '=' or newline inside a value would change its meaning.
So names are checked against narrow patterns before any command runs.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from portal.slurm.errors import InvalidName


def _validator(pattern: str, what: str, rule: str) -> Callable[[object], str]:
    compiled = re.compile(pattern)

    def validate(value: object) -> str:
        if not isinstance(value, str) or not compiled.fullmatch(value):
            raise InvalidName(f"invalid {what} {value!r}: {rule}")
        return value

    validate.__doc__ = f"Return the {what} unchanged, or raise InvalidName ({rule})."
    return validate


# sacctmgr lowercases account names, so an upper-case name would silently become another one.
validate_account_name = _validator(
    r"[a-z][a-z0-9_]{0,31}", "account name",
    "use 1-32 characters a-z, 0-9 and _, starting with a lower-case letter")
validate_user_name = _validator(
    r"[a-z_][a-z0-9_-]{0,31}", "user name",
    "use a Unix user name: 1-32 characters a-z, 0-9, _ and -, not starting with a digit or -")
validate_partition_name = _validator(
    r"[A-Za-z][A-Za-z0-9_-]{0,63}", "partition name", "use letters, digits, _ and -")
validate_job_name = _validator(r"[A-Za-z0-9_.+-]{1,128}", "job name",
                               "use letters, digits and _.+-")
validate_job_id = _validator(r"[0-9]+(_[0-9]+)?", "job id",
                             "use digits, or JOBID_TASK for array tasks")
validate_tres_name = _validator(r"[a-z]+(/[a-z0-9_]+)?", "TRES name", "e.g. cpu, mem, gres/gpu")
validate_array_spec = _validator(
    r"[0-9]+(-[0-9]+)?(:[0-9]+)?(,[0-9]+(-[0-9]+)?(:[0-9]+)?)*(%[0-9]+)?", "job array",
    "e.g. 0-15, 1,3,5 or 0-99%10")
validate_env_key = _validator(r"[A-Za-z_][A-Za-z0-9_]*", "environment variable",
                              "use letters, digits and _")


def validate_text(value: object, what: str, max_len: int = 200) -> str:
    """Free text (descriptions): printable, one line, no quotes sacctmgr would eat."""
    if (not isinstance(value, str) or len(value) > max_len or not value.isprintable()
            or any(c in value for c in "'\"\\")):
        raise InvalidName(f"invalid {what} {value!r}: printable text without quotes,"
                          f" at most {max_len} characters")
    return value


def validate_path(value: object, what: str) -> str:
    if (not isinstance(value, str) or not value.startswith("/") or not value.isprintable()
            or len(value) > 4096):
        raise InvalidName(f"invalid {what} {value!r}: must be an absolute printable path")
    return value


def validate_count(value: object, what: str, minimum: int = 0) -> int:
    # bool is an int subclass; True as a CPU count is a bug, not a request.
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidName(f"invalid {what} {value!r}: must be an integer >= {minimum}")
    return value
